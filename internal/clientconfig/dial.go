package clientconfig

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/pki"
)

const (
	// maxMessageSize matches the largest object list the apiserver sends.
	maxMessageSize   = 64 << 20
	keepaliveTime    = 15 * time.Second
	keepaliveTimeout = 10 * time.Second
	// maxReconnectDelay caps gRPC's reconnect back-off (default 120 s):
	// after an apiserver outage of a minute, the default would leave
	// kubelets and controllers waiting up to another minute once it is
	// back. With jitter, 1,000 nodes reconnecting every 5 s at most are
	// 200 handshakes a second.
	maxReconnectDelay = 5 * time.Second
)

// Dial connects to the current context's apiservers. The connection closes
// when ctx ends; use Conn to own it explicitly.
func (c *Config) Dial(ctx context.Context) (*client.Client, error) {
	cur, err := c.Current()
	if err != nil {
		return nil, err
	}
	return cur.Dial(ctx)
}

// Dial connects to the context's apiservers; the connection closes when ctx
// ends.
func (c *Context) Dial(ctx context.Context) (*client.Client, error) {
	conn, err := c.Conn()
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, func() { conn.Close() })
	return client.New(conn), nil
}

// Conn opens a gRPC connection to the context's apiservers: TLS when a CA
// is configured, the client certificate when given, the bearer token on
// every RPC. Several servers are balanced round robin so a dead apiserver
// is skipped. It does not block: connecting happens on the first RPC.
func (c *Context) Conn() (*grpc.ClientConn, error) {
	if len(c.Servers) == 0 {
		return nil, fmt.Errorf("context %q: no servers", c.Name)
	}
	opts := []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageSize)),
		// Pings find an apiserver that vanished without closing the
		// connection (a crashed VM), so watches and fail-over do not wait
		// for TCP to give up. The apiserver allows pings every 5s.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: keepaliveTime, Timeout: keepaliveTimeout, PermitWithoutStream: true}),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: reconnectBackoff(), MinConnectTimeout: 20 * time.Second}),
	}
	secure := c.CertificateAuthority != ""
	if secure {
		tc, err := c.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if c.Token != "" {
		if !secure && !allLoopback(c.Servers) {
			return nil, fmt.Errorf("context %q: a token needs a certificateAuthority unless every server is loopback", c.Name)
		}
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: c.Token, secure: secure}))
	}
	addrs := make([]resolver.Address, 0, len(c.Servers))
	for _, s := range c.Servers {
		host, _, err := net.SplitHostPort(s)
		if err != nil {
			return nil, fmt.Errorf("context %q: server %q is not host:port", c.Name, s)
		}
		// ServerName is what the server certificate is checked against.
		addrs = append(addrs, resolver.Address{Addr: s, ServerName: host})
	}
	r := manual.NewBuilderWithScheme("skiff")
	r.InitialState(resolver.State{Addresses: addrs})
	opts = append(opts, grpc.WithResolvers(r),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
	conn, err := grpc.NewClient(r.Scheme()+":///apiserver", opts...)
	if err != nil {
		return nil, fmt.Errorf("context %q: %w", c.Name, err)
	}
	return conn, nil
}

// reconnectBackoff is gRPC's default back-off with its delay capped at
// maxReconnectDelay.
func reconnectBackoff() backoff.Config {
	b := backoff.DefaultConfig
	b.MaxDelay = maxReconnectDelay
	return b
}

func (c *Context) tlsConfig() (*tls.Config, error) {
	pool, err := pki.ReadPool(c.path(c.CertificateAuthority))
	if err != nil {
		return nil, fmt.Errorf("context %q: certificateAuthority: %w", c.Name, err)
	}
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if c.ClientCertificate != "" {
		// Read again when the files change: a renewed certificate is used
		// from the next connection on.
		get, err := pki.ClientCertificate(c.path(c.ClientCertificate), c.path(c.ClientKey))
		if err != nil {
			return nil, fmt.Errorf("context %q: clientCertificate/clientKey: %w", c.Name, err)
		}
		tc.GetClientCertificate = get
	}
	return tc, nil
}

// bearer sends "authorization: Bearer <token>" with every RPC.
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity is false only for loopback plaintext, which
// Validate allows.
func (b bearer) RequireTransportSecurity() bool { return b.secure }
