// Command controller-manager runs Skiff's controllers (deployment,
// replicaset, garbage collector, node lifecycle and IPAM, endpoints,
// namespace) against the apiserver, behind leader election.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/controller-manager/app"
	"github.com/skiff-dev/skiff/internal/clientconfig"
	"github.com/skiff-dev/skiff/internal/daemon"
	"github.com/skiff-dev/skiff/internal/events"
)

const component = "controller-manager"

func main() { daemon.Main(newCommand()) }

func newCommand() *cobra.Command {
	cfg := app.Defaults()
	var clientConfig string
	var cc *clientconfig.Config
	var host string
	cmd := daemon.Command{
		Name:  component,
		Short: "Run Skiff's controllers: deployments, replicasets, garbage collection, nodes, endpoints, namespaces",
		Flags: &daemon.Flags{HTTPAddr: "127.0.0.1:10257"},
		Prepare: func(*cobra.Command) error {
			var err error
			if host, err = os.Hostname(); err != nil {
				return fmt.Errorf("hostname: %w", err)
			}
			if cfg.Identity == "" {
				cfg.Identity = fmt.Sprintf("%s_%d", host, os.Getpid())
			}
			cc, err = clientconfig.Load(clientConfig)
			return err
		},
		Serve: func(ctx context.Context, d *daemon.Daemon) error {
			c, err := cc.Dial(ctx)
			if err != nil {
				return fmt.Errorf("connect to the apiserver: %w", err)
			}
			rec := events.NewRecorder(c, component, host, events.WithLogger(d.Logger))
			m, err := app.New(cfg, c, rec, d.Registry, d.Logger)
			if err != nil {
				return err
			}
			d.AddReadyCheck("controllers", m.Ready)
			err = rec.RunDuring(ctx, m.Run)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}.Cobra()
	fs := cmd.Flags()
	clientconfig.AddFlag(fs, &clientConfig)
	fs.StringVar(&cfg.ClusterCIDR, "cluster-cidr", cfg.ClusterCIDR, "CIDR of pod IPs; each node gets a subnet of it")
	fs.IntVar(&cfg.NodeCIDRMaskSize, "node-cidr-mask-size", cfg.NodeCIDRMaskSize, "prefix length of each node's pod CIDR")
	fs.DurationVar(&cfg.NodeMonitorPeriod, "node-monitor-period", cfg.NodeMonitorPeriod, "how often node heartbeats are checked")
	fs.DurationVar(&cfg.NodeMonitorGracePeriod, "node-monitor-grace-period", cfg.NodeMonitorGracePeriod, "how long a node's Lease may go unrenewed before the node is NotReady")
	fs.DurationVar(&cfg.PodEvictionTimeout, "pod-eviction-timeout", cfg.PodEvictionTimeout, "how long a node may be NotReady before its pods are deleted")
	fs.IntVar(&cfg.ConcurrentDeploymentSyncs, "concurrent-deployment-syncs", cfg.ConcurrentDeploymentSyncs, "deployments synced in parallel")
	fs.IntVar(&cfg.ConcurrentReplicaSetSyncs, "concurrent-replicaset-syncs", cfg.ConcurrentReplicaSetSyncs, "replicasets synced in parallel")
	fs.IntVar(&cfg.ConcurrentGCSyncs, "concurrent-gc-syncs", cfg.ConcurrentGCSyncs, "garbage collector workers")
	fs.IntVar(&cfg.ConcurrentEndpointSyncs, "concurrent-endpoint-syncs", cfg.ConcurrentEndpointSyncs, "services synced in parallel")
	fs.IntVar(&cfg.ConcurrentNamespaceSyncs, "concurrent-namespace-syncs", cfg.ConcurrentNamespaceSyncs, "namespaces deleted in parallel")
	fs.DurationVar(&cfg.ResyncPeriod, "min-resync-period", cfg.ResyncPeriod, "how often every cached object is replayed to the controllers")
	fs.BoolVar(&cfg.LeaderElect, "leader-elect", cfg.LeaderElect, "elect a leader among controller-managers through a Lease in skiff-system; only the leader runs controllers")
	fs.StringVar(&cfg.Identity, "leader-elect-identity", cfg.Identity, "this candidate's name in the Lease (default hostname_pid)")
	fs.DurationVar(&cfg.LeaseDuration, "leader-elect-lease-duration", cfg.LeaseDuration, "how long a standby waits before taking over from a silent leader")
	fs.DurationVar(&cfg.RenewDeadline, "leader-elect-renew-deadline", cfg.RenewDeadline, "how long the leader retries renewing before it steps down")
	fs.DurationVar(&cfg.RetryPeriod, "leader-elect-retry-period", cfg.RetryPeriod, "time between attempts to acquire or renew the Lease")
	return cmd
}
