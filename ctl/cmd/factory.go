package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/clientconfig"
	"github.com/skiff-dev/skiff/proto/api"
)

// Factory holds the global flags and makes what commands need from them:
// the client, the namespace, the clock.
type Factory struct {
	ConfigPath     string
	Namespace      string
	Server         string
	RequestTimeout time.Duration

	// Dial, when set, replaces the client config: tests point ctl at an
	// in-process apiserver with it.
	Dial func(ctx context.Context) (*client.Client, error)
	// Now is the clock ages are printed against; time.Now when nil.
	Now func() time.Time
	// Getenv reads the environment ($EDITOR); os.Getenv when nil.
	Getenv func(string) string
}

// AddFlags registers the global flags.
func (f *Factory) AddFlags(fs *pflag.FlagSet) {
	clientconfig.AddFlag(fs, &f.ConfigPath)
	fs.StringVar(&f.ConfigPath, "kubeconfig", f.ConfigPath, "alias of --client-config")
	fs.StringVarP(&f.Namespace, "namespace", "n", f.Namespace, "If present, the namespace scope for this CLI request")
	fs.StringVarP(&f.Server, "server", "s", f.Server, "The address (host:port) of an apiserver to reach without TLS; overrides the client config")
	fs.DurationVar(&f.RequestTimeout, "request-timeout", f.RequestTimeout, "The length of time to wait before giving up on a single server request (e.g. 1s, 2m); 0 waits forever")
}

func (f *Factory) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// config loads the client config, or builds one for --server.
func (f *Factory) config() (*clientconfig.Config, error) {
	if f.Server != "" {
		return clientconfig.ForAddress(f.Server), nil
	}
	return clientconfig.Load(f.ConfigPath)
}

// Client connects to the cluster; the connection closes when ctx ends.
func (f *Factory) Client(ctx context.Context) (*client.Client, error) {
	var c *client.Client
	var err error
	if f.Dial != nil {
		c, err = f.Dial(ctx)
	} else {
		var cfg *clientconfig.Config
		cfg, err = f.config()
		if err == nil {
			c, err = cfg.Dial(ctx)
		}
	}
	if err != nil {
		return nil, err
	}
	if f.RequestTimeout > 0 {
		c = &client.Client{API: timeoutAPI{APIClient: c.API, timeout: f.RequestTimeout}}
	}
	return c, nil
}

// clientInNamespace is what most commands start with: a client and the
// namespace they act in (-n, else the context's, else "default").
func (f *Factory) clientInNamespace(ctx context.Context) (*client.Client, string, error) {
	cl, err := f.Client(ctx)
	if err != nil {
		return nil, "", err
	}
	ns, _ := f.DefaultNamespace()
	return cl, ns, nil
}

// DefaultNamespace is -n, else the current context's namespace, else
// "default". explicit reports that -n was given.
func (f *Factory) DefaultNamespace() (ns string, explicit bool) {
	if f.Namespace != "" {
		return f.Namespace, true
	}
	if f.Dial == nil {
		if cfg, err := f.config(); err == nil {
			if cur, err := cfg.Current(); err == nil && cur.Namespace != "" {
				return cur.Namespace, false
			}
		}
	}
	return "default", false
}

type anyMsg = anypb.Any

// timeoutAPI bounds every unary request by --request-timeout; streams
// (watch, exec, logs) are not bounded.
type timeoutAPI struct {
	api.APIClient
	timeout time.Duration
}

func bound[Req, Resp any](ctx context.Context, d time.Duration, call func(context.Context, Req, ...grpc.CallOption) (Resp, error), req Req, opts []grpc.CallOption) (Resp, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	resp, err := call(ctx, req, opts...)
	if err != nil && ctx.Err() != nil {
		var zero Resp
		return zero, fmt.Errorf("the request timed out after %s: %w", d, err)
	}
	return resp, err
}

func (t timeoutAPI) Create(ctx context.Context, r *api.CreateRequest, o ...grpc.CallOption) (*anyMsg, error) {
	return bound(ctx, t.timeout, t.APIClient.Create, r, o)
}
func (t timeoutAPI) Get(ctx context.Context, r *api.GetRequest, o ...grpc.CallOption) (*anyMsg, error) {
	return bound(ctx, t.timeout, t.APIClient.Get, r, o)
}
func (t timeoutAPI) List(ctx context.Context, r *api.ListRequest, o ...grpc.CallOption) (*api.ListResponse, error) {
	return bound(ctx, t.timeout, t.APIClient.List, r, o)
}
func (t timeoutAPI) Update(ctx context.Context, r *api.UpdateRequest, o ...grpc.CallOption) (*anyMsg, error) {
	return bound(ctx, t.timeout, t.APIClient.Update, r, o)
}
func (t timeoutAPI) UpdateStatus(ctx context.Context, r *api.UpdateRequest, o ...grpc.CallOption) (*anyMsg, error) {
	return bound(ctx, t.timeout, t.APIClient.UpdateStatus, r, o)
}
func (t timeoutAPI) Delete(ctx context.Context, r *api.DeleteRequest, o ...grpc.CallOption) (*anyMsg, error) {
	return bound(ctx, t.timeout, t.APIClient.Delete, r, o)
}
func (t timeoutAPI) Bind(ctx context.Context, r *api.BindRequest, o ...grpc.CallOption) (*anyMsg, error) {
	return bound(ctx, t.timeout, t.APIClient.Bind, r, o)
}
func (t timeoutAPI) Version(ctx context.Context, r *api.VersionRequest, o ...grpc.CallOption) (*api.VersionInfo, error) {
	return bound(ctx, t.timeout, t.APIClient.Version, r, o)
}
