// Command proxy runs on every node: it writes the iptables rules that make
// Services' ClusterIPs and NodePorts reach their endpoints, answers cluster
// DNS, and routes to the other nodes' pod subnets.
package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/clientconfig"
	"github.com/skiff-dev/skiff/internal/daemon"
	"github.com/skiff-dev/skiff/proxy/app"
	"github.com/skiff-dev/skiff/proxy/dns"
)

func main() { daemon.Main(newCommand()) }

func newCommand() *cobra.Command {
	cfg := app.Defaults()
	flags := &daemon.Flags{HTTPAddr: "127.0.0.1:10249"}
	var (
		clientConfig         string
		clusterCIDR, svcCIDR string
		clusterDNS           string
		upstreamDNS          []string
		cleanup, noRoutes    bool
	)
	hostname, _ := os.Hostname()
	cfg.NodeName = hostname
	cmd := daemon.Command{
		Name:  "proxy",
		Short: "Keep a node's Service rules, cluster DNS and pod routes",
		Flags: flags,
		Prepare: func(cmd *cobra.Command) error {
			var err error
			if cfg.ClusterCIDR, err = netip.ParsePrefix(clusterCIDR); err != nil {
				return fmt.Errorf("--cluster-cidr: %w", err)
			}
			if cfg.ServiceCIDR, err = netip.ParsePrefix(svcCIDR); err != nil {
				return fmt.Errorf("--service-cidr: %w", err)
			}
			if cfg.ClusterDNS, err = netip.ParseAddr(clusterDNS); err != nil {
				return fmt.Errorf("--cluster-dns: %w", err)
			}
			if !cfg.ServiceCIDR.Contains(cfg.ClusterDNS) {
				return fmt.Errorf("--cluster-dns %s is outside --service-cidr %s", cfg.ClusterDNS, cfg.ServiceCIDR)
			}
			if !cmd.Flags().Changed("dns-addr") {
				cfg.DNSAddr = net.JoinHostPort(cfg.ClusterDNS.String(), "53")
			}
			cfg.Routes = !noRoutes
			if cleanup {
				logger, err := daemon.NewLogger(os.Stderr, flags.LogLevel, flags.LogFormat)
				if err != nil {
					return err
				}
				cfg.Logger = logger.With("component", "proxy")
				if err := app.Cleanup(cmd.Context(), cfg); err != nil {
					return err
				}
				return daemon.ErrDone
			}
			cfg.Upstreams = upstreamDNS
			if len(cfg.Upstreams) == 0 && cfg.DNSAddr != "" {
				if cfg.Upstreams, err = dns.UpstreamsFromResolvConf("/etc/resolv.conf"); err != nil {
					return fmt.Errorf("upstream DNS (set --upstream-dns): %w", err)
				}
			}
			return nil
		},
		Serve: func(ctx context.Context, d *daemon.Daemon) error {
			cc, err := clientconfig.Load(clientConfig)
			if err != nil {
				return err
			}
			c, err := cc.Dial(ctx)
			if err != nil {
				return err
			}
			cfg.Logger, cfg.Registry = d.Logger.With("node", cfg.NodeName), d.Registry
			p, err := app.New(cfg, c)
			if err != nil {
				return err
			}
			d.AddReadyCheck("rules", p.Ready)
			return p.Run(ctx)
		},
	}.Cobra()
	fs := cmd.Flags()
	clientconfig.AddFlag(fs, &clientConfig)
	fs.StringVar(&cfg.NodeName, "node-name", cfg.NodeName, "name of this node, as registered by its kubelet")
	fs.StringVar(&clusterCIDR, "cluster-cidr", cfg.ClusterCIDR.String(), "pod network; traffic to ClusterIPs from outside it is masqueraded")
	fs.StringVar(&svcCIDR, "service-cidr", cfg.ServiceCIDR.String(), "Service ClusterIP range")
	fs.StringVar(&clusterDNS, "cluster-dns", cfg.ClusterDNS.String(), "cluster DNS address pods use; the proxy serves it on every node")
	fs.StringVar(&cfg.ClusterDomain, "cluster-domain", cfg.ClusterDomain, "cluster DNS domain")
	fs.StringVar(&cfg.DNSAddr, "dns-addr", "", "address cluster DNS listens on, UDP and TCP (default: --cluster-dns port 53, put on lo; empty with --dns-addr= disables DNS)")
	fs.StringSliceVar(&upstreamDNS, "upstream-dns", nil, "resolvers for names outside the cluster domain, host:port (default: the nameservers of /etc/resolv.conf)")
	fs.DurationVar(&cfg.MinSyncPeriod, "min-sync-period", cfg.MinSyncPeriod, "least time between two rule syncs; changes inside it are coalesced")
	fs.DurationVar(&cfg.SyncPeriod, "sync-period", cfg.SyncPeriod, "most time between two rule syncs")
	fs.BoolVar(&cleanup, "cleanup", false, "remove every rule, route and address the proxy made, and exit")
	fs.BoolVar(&cfg.MasqueradeAll, "masquerade-all", false, "masquerade all traffic to ClusterIPs")
	fs.StringVar(&cfg.IPTablesBackend, "iptables-backend", "", "iptables flavour: legacy or nft (default: the system's iptables)")
	fs.BoolVar(&noRoutes, "no-routes", false, "do not route to the other nodes' pod subnets (another network plugin does)")
	return cmd
}
