// Package app wires the proxy together: informers on Services, Endpoints
// and Nodes feed the services tracker and the routes, two bounded-frequency
// runners keep the iptables rules and the routes in step, and the cluster
// DNS server answers from the same tracker.
//
// It must never sync rules before the informers hold a complete list: a
// sync from a half-filled cache would delete the rules of every Service
// not yet seen.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/informer"
	"github.com/skiff-dev/skiff/proto/api"
	"github.com/skiff-dev/skiff/proxy/dns"
	"github.com/skiff-dev/skiff/proxy/iptables"
	"github.com/skiff-dev/skiff/proxy/routes"
	"github.com/skiff-dev/skiff/proxy/runner"
	"github.com/skiff-dev/skiff/proxy/services"
)

// Config is the proxy's configuration; main fills it from flags.
type Config struct {
	NodeName      string
	ClusterCIDR   netip.Prefix
	ServiceCIDR   netip.Prefix
	ClusterDNS    netip.Addr
	ClusterDomain string
	// DNSAddr is where cluster DNS listens; empty serves no DNS. When its
	// host is ClusterDNS, that address is put on lo first.
	DNSAddr   string
	Upstreams []string
	// MinSyncPeriod bounds how often rules are rewritten; SyncPeriod is
	// how often they are at the latest.
	MinSyncPeriod, SyncPeriod time.Duration
	MasqueradeAll             bool
	// IPTablesBackend is "", "legacy" or "nft" (see iptables.Config).
	IPTablesBackend string
	// Routes keeps routes to the other nodes' pod subnets.
	Routes bool
	// InNetNS runs fn where the node's network lives; nil runs it in
	// place. Tests pass a function entering a scratch network namespace.
	InNetNS func(fn func() error) error
	Logger  *slog.Logger
	// Registry receives the metrics; nil registers none.
	Registry prometheus.Registerer
}

// Defaults are the flags' defaults.
func Defaults() Config {
	return Config{
		ClusterCIDR:   netip.MustParsePrefix("10.244.0.0/16"),
		ServiceCIDR:   netip.MustParsePrefix("10.96.0.0/12"),
		ClusterDNS:    netip.MustParseAddr("10.96.0.10"),
		ClusterDomain: "cluster.local",
		MinSyncPeriod: time.Second,
		SyncPeriod:    30 * time.Second,
		Routes:        true,
	}
}

func (c *Config) complete() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.InNetNS == nil {
		c.InNetNS = func(fn func() error) error { return fn() }
	}
}

// Proxy is a running proxy.
type Proxy struct {
	cfg     Config
	client  *client.Client
	log     *slog.Logger
	tracker *services.Tracker
	proxier *iptables.Proxier
	synced  atomic.Bool
	dnsAddr atomic.Value // string
}

// New prepares a proxy; it changes nothing on the node yet.
func New(cfg Config, c *client.Client) (*Proxy, error) {
	cfg.complete()
	if cfg.NodeName == "" && cfg.Routes {
		return nil, errors.New("proxy: the node name is required to keep routes (--node-name)")
	}
	p := &Proxy{cfg: cfg, client: c, log: cfg.Logger}
	err := cfg.InNetNS(func() (err error) {
		p.proxier, err = iptables.New(iptables.Config{
			Options: iptables.Options{ClusterCIDR: cfg.ClusterCIDR, MasqueradeAll: cfg.MasqueradeAll, RandomFully: true},
			Backend: cfg.IPTablesBackend,
			Logger:  cfg.Logger,
			Metrics: iptables.NewMetrics(cfg.Registry),
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Ready reports whether the caches are synced and the first rules written.
func (p *Proxy) Ready() error {
	if !p.synced.Load() {
		return errors.New("rules not yet synced")
	}
	return nil
}

// DNSAddr is the address cluster DNS serves on ("" until it does).
func (p *Proxy) DNSAddr() string {
	s, _ := p.dnsAddr.Load().(string)
	return s
}

// Run keeps rules, routes and DNS in step until ctx ends. The rules stay
// in place on exit, as kube-proxy's do: traffic keeps flowing while the
// proxy restarts. --cleanup removes them.
func (p *Proxy) Run(ctx context.Context) error {
	cfg := p.cfg
	if err := cfg.InNetNS(iptables.EnableForwarding); err != nil {
		return err
	}
	iptRunner := runner.New("iptables", func(ctx context.Context, periodic bool) error {
		if periodic {
			if err := cfg.InNetNS(p.proxier.CheckBase); err != nil {
				return err
			}
		}
		ports := p.tracker.ServicePorts()
		if err := cfg.InNetNS(func() error { return p.proxier.Sync(ctx, ports) }); err != nil {
			return err
		}
		p.synced.Store(true)
		return nil
	}, cfg.MinSyncPeriod, cfg.SyncPeriod, p.log)
	p.tracker = services.NewTracker(iptRunner.Request)

	// DNS listens before anything runs, so a busy address fails the start.
	var dnsSrv *dns.Server
	if cfg.DNSAddr != "" {
		var err error
		if dnsSrv, err = p.listenDNS(); err != nil {
			return err
		}
		p.dnsAddr.Store(dnsSrv.Addr())
	}

	g, ctx := errgroup.WithContext(ctx)
	svcInf := informer.New(p.client.Services(), informer.Options{Logger: p.log})
	svcInf.AddEventHandler(informer.Handler[*api.Service]{
		OnAdd:    p.tracker.SetService,
		OnUpdate: func(_, svc *api.Service) { p.tracker.SetService(svc) },
		OnDelete: func(svc *api.Service) {
			p.tracker.DeleteService(svc.GetMetadata().GetNamespace(), svc.GetMetadata().GetName())
		},
	})
	epInf := informer.New(p.client.Endpoints(), informer.Options{Logger: p.log})
	epInf.AddEventHandler(informer.Handler[*api.Endpoints]{
		OnAdd:    p.tracker.SetEndpoints,
		OnUpdate: func(_, ep *api.Endpoints) { p.tracker.SetEndpoints(ep) },
		OnDelete: func(ep *api.Endpoints) {
			p.tracker.DeleteEndpoints(ep.GetMetadata().GetNamespace(), ep.GetMetadata().GetName())
		},
	})
	g.Go(func() error { svcInf.Run(ctx); return nil })
	g.Go(func() error { epInf.Run(ctx); return nil })

	if cfg.Routes {
		nodeInf := informer.New(p.client.Nodes(), informer.Options{Logger: p.log})
		rm := routes.NewManager(p.log)
		routeRunner := runner.New("routes", func(context.Context, bool) error {
			want := routes.Desired(nodeInf.Lister().List(labels.Everything()), cfg.NodeName)
			return cfg.InNetNS(func() error { return rm.Sync(want) })
		}, cfg.MinSyncPeriod, cfg.SyncPeriod, p.log)
		nodeInf.AddEventHandler(informer.Handler[*api.Node]{
			OnAdd:    func(*api.Node) { routeRunner.Request() },
			OnUpdate: func(_, _ *api.Node) { routeRunner.Request() },
			OnDelete: func(*api.Node) { routeRunner.Request() },
		})
		g.Go(func() error { nodeInf.Run(ctx); return nil })
		g.Go(func() error {
			if !nodeInf.WaitForSync(ctx) {
				return nil
			}
			routeRunner.Run(ctx)
			return nil
		})
	}

	if dnsSrv != nil {
		g.Go(func() error { return dnsSrv.Run(ctx) })
	}

	g.Go(func() error {
		if !svcInf.WaitForSync(ctx) || !epInf.WaitForSync(ctx) {
			return nil
		}
		p.log.Info("caches synced; writing rules")
		iptRunner.Run(ctx)
		return nil
	})
	return g.Wait()
}

func (p *Proxy) listenDNS() (*dns.Server, error) {
	cfg := p.cfg
	host, _, err := net.SplitHostPort(cfg.DNSAddr)
	if err != nil {
		return nil, fmt.Errorf("--dns-addr %q: %w", cfg.DNSAddr, err)
	}
	var srv *dns.Server
	err = cfg.InNetNS(func() error {
		if ip, err := netip.ParseAddr(host); err == nil && ip == cfg.ClusterDNS {
			if err := dns.EnsureLocalAddress(ip); err != nil {
				return err
			}
		}
		// The sockets are made here, inside the node's namespace; serving
		// them may then happen on any thread.
		var err error
		srv, err = dns.Listen(dns.Config{
			Addr: cfg.DNSAddr, ClusterDomain: cfg.ClusterDomain, Upstreams: cfg.Upstreams,
			Services: p.tracker, Logger: p.log,
		})
		return err
	})
	return srv, err
}

// Cleanup removes every rule, route and address the proxy made (--cleanup).
func Cleanup(ctx context.Context, cfg Config) error {
	cfg.complete()
	return cfg.InNetNS(func() error {
		p, err := iptables.New(iptables.Config{Backend: cfg.IPTablesBackend, Logger: cfg.Logger})
		if err != nil {
			return err
		}
		return errors.Join(
			p.Cleanup(ctx),
			routes.NewManager(cfg.Logger).Cleanup(),
			dns.RemoveLocalAddress(cfg.ClusterDNS),
		)
	})
}
