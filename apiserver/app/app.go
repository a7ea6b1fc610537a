// Package app assembles the apiserver process: etcd (embedded or external),
// one watch cache per kind, the API service on gRPC, and the bootstrap
// namespaces. Tests start it in-process; main.go only parses flags.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/skiff-dev/skiff/apiserver/server"
	"github.com/skiff-dev/skiff/apiserver/storage"
	"github.com/skiff-dev/skiff/apiserver/watchcache"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// Config is the apiserver's configuration, filled from flags.
type Config struct {
	// Listen is the gRPC address ("127.0.0.1:6443"; port 0 picks one).
	Listen string
	// DataDir holds the embedded etcd's data.
	DataDir string
	// EtcdServers, when set, replaces the embedded etcd by a cluster.
	EtcdServers []string
	// EtcdCAFile, EtcdCertFile and EtcdKeyFile secure the connection to
	// an external etcd cluster.
	EtcdCAFile, EtcdCertFile, EtcdKeyFile string
	// EtcdListenClient is a client URL for the embedded etcd to listen on,
	// for etcdctl and backups (default: none; the apiserver itself reaches
	// its embedded etcd in-process).
	EtcdListenClient string
	// EtcdPrefix is where objects live in etcd.
	EtcdPrefix       string
	ServiceCIDR      string
	NodePortRange    string
	BookmarkInterval time.Duration
	WatchCache       watchcache.Options
	// Security is TLS, authentication, authorization, audit and rate
	// limits; Security.Insecure turns all of it off.
	Security        Security
	MaxRequestBytes int
}

// Defaults returns the configuration of a single-node control plane.
func Defaults() Config {
	return Config{
		Listen: "127.0.0.1:6443", DataDir: "/var/lib/skiff/etcd", EtcdPrefix: "/registry",
		ServiceCIDR: "10.96.0.0/12", NodePortRange: "30000-32767", BookmarkInterval: 5 * time.Second,
		MaxRequestBytes: 3 << 20,
	}
}

// APIServer is a running apiserver.
type APIServer struct {
	Addr   string
	Store  *storage.Store
	ready  chan struct{}
	done   chan struct{}
	err    error
	cancel context.CancelFunc
}

// Ready is closed once every cache is filled and the API serves.
func (a *APIServer) Ready() <-chan struct{} { return a.ready }

// Stop shuts the server down and waits for it.
func (a *APIServer) Stop() error {
	a.cancel()
	<-a.done
	return a.err
}

// Done is closed when the server has stopped; Err says why.
func (a *APIServer) Done() <-chan struct{} { return a.done }

// Err is the reason the server stopped, once Done is closed.
func (a *APIServer) Err() error { return a.err }

func parsePortRange(s string) (int, int, error) {
	var first, last int
	if _, err := fmt.Sscanf(s, "%d-%d", &first, &last); err != nil || first < 1 || last > 65535 || first > last {
		return 0, 0, fmt.Errorf("--service-node-port-range %q: want FIRST-LAST within 1-65535", s)
	}
	return first, last, nil
}

// Start brings the apiserver up and returns once it listens; Ready tells
// when it serves.
func Start(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*APIServer, error) {
	cidr, err := netip.ParsePrefix(cfg.ServiceCIDR)
	if err != nil || !cidr.Addr().Is4() {
		return nil, fmt.Errorf("--service-cluster-ip-range %q: want an IPv4 CIDR", cfg.ServiceCIDR)
	}
	first, last, err := parsePortRange(cfg.NodePortRange)
	if err != nil {
		return nil, err
	}
	if err := cfg.Security.validate(); err != nil {
		return nil, err
	}
	dialer, err := cfg.Security.kubeletDialer()
	if err != nil {
		return nil, err
	}
	var creds credentials.TransportCredentials
	if !cfg.Security.Insecure {
		if creds, err = cfg.Security.serverCreds(); err != nil {
			return nil, err
		}
	} else {
		log.Warn("serving the API without TLS, authentication or authorization (--insecure)")
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	backend, err := startEtcd(ctx, cfg, log)
	if err != nil {
		cancel()
		ln.Close()
		return nil, err
	}
	store := storage.New(backend.client, cfg.EtcdPrefix)
	if backend.untrustedProgress {
		cfg.WatchCache.IgnoreProgressNotify = true
		cfg.WatchCache.FreshTimeout = 20 * time.Millisecond
	}
	caches := map[string]*watchcache.Cache{}
	for _, info := range kinds.All() {
		caches[info.Resource] = watchcache.New(info, backend.client, store.ResourcePrefix(info.Resource), cfg.WatchCache, log)
	}
	alloc := server.DefaultServiceAllocator()
	alloc.CIDR, alloc.NodePortFirst, alloc.NodePortLast = cidr, first, last
	svc := server.New(store, caches, server.Config{Services: alloc, BookmarkInterval: cfg.BookmarkInterval, KubeletDialer: dialer, Logger: log})
	metrics := newRequestMetrics(reg)
	unary := []grpc.UnaryServerInterceptor{metrics.unary}
	streams := []grpc.StreamServerInterceptor{metrics.stream}
	closeAudit := func() {}
	if !cfg.Security.Insecure {
		gate, closer, err := cfg.Security.gate(store, caches, log)
		if err != nil {
			cancel()
			ln.Close()
			backend.Close()
			return nil, err
		}
		closeAudit = closer
		unary = append(unary, gate.Unary)
		streams = append(streams, gate.Stream)
	}
	opts := []grpc.ServerOption{
		grpc.ForceServerCodecV2(server.Codec()),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(streams...),
		grpc.MaxRecvMsgSize(cfg.MaxRequestBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	}
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	grpcServer := grpc.NewServer(opts...)
	api.RegisterAPIServer(grpcServer, svc)

	a := &APIServer{Addr: ln.Addr().String(), Store: store, ready: make(chan struct{}), done: make(chan struct{}), cancel: cancel}
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range caches {
		g.Go(func() error { return c.Run(gctx) })
	}
	g.Go(func() error {
		for _, c := range caches {
			select {
			case <-c.Ready():
			case <-gctx.Done():
				return nil
			}
		}
		if err := bootstrap(gctx, svc); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		close(a.ready)
		log.Info("apiserver serving", "addr", a.Addr)
		return nil
	})
	g.Go(func() error {
		if err := grpcServer.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("serve gRPC: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		stopped := make(chan struct{})
		go func() { grpcServer.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			grpcServer.Stop()
		}
		return nil
	})
	go func() {
		a.err = g.Wait()
		backend.Close()
		closeAudit()
		close(a.done)
	}()
	return a, nil
}

// bootstrap creates the namespaces that always exist.
func bootstrap(ctx context.Context, svc *server.Server) error {
	for _, name := range []string{server.DefaultNamespace, server.SystemNamespace} {
		if err := svc.EnsureNamespace(ctx, name); err != nil {
			return err
		}
	}
	return nil
}
