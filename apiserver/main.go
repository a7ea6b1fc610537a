// Command apiserver serves Skiff's API over gRPC and is the only process
// that talks to etcd.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/apiserver/app"
	"github.com/skiff-dev/skiff/internal/daemon"
	"github.com/skiff-dev/skiff/internal/version"
)

func main() {
	if err := newCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	cfg := app.Defaults()
	flags := daemon.Flags{HTTPAddr: "127.0.0.1:8080"}
	cmd := &cobra.Command{
		Use:           "apiserver",
		Short:         "Serve the Skiff API on gRPC, backed by etcd",
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := flags.ApplyConfigFile(cmd.Flags()); err != nil {
				return err
			}
			return daemon.Run(cmd.Context(), "apiserver", flags, func(ctx context.Context, d *daemon.Daemon) error {
				srv, err := app.Start(ctx, cfg, d.Logger, d.Registry)
				if err != nil {
					return err
				}
				d.AddReadyCheck("api", func() error {
					select {
					case <-srv.Ready():
						return nil
					default:
						return fmt.Errorf("caches not synced")
					}
				})
				<-ctx.Done()
				return srv.Stop()
			})
		},
	}
	fs := cmd.Flags()
	flags.Register(fs)
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "gRPC address to serve the API on")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory of the embedded etcd's data")
	fs.StringSliceVar(&cfg.EtcdServers, "etcd-servers", nil, "external etcd endpoints (http://host:2379,...); empty runs an embedded etcd")
	fs.StringVar(&cfg.EtcdListenClient, "etcd-listen-client", "", "client URL of the embedded etcd (default: a free loopback port)")
	fs.StringVar(&cfg.EtcdPrefix, "etcd-prefix", cfg.EtcdPrefix, "key prefix of every object in etcd")
	fs.StringVar(&cfg.ServiceCIDR, "service-cluster-ip-range", cfg.ServiceCIDR, "CIDR Service ClusterIPs are allocated from")
	fs.StringVar(&cfg.NodePortRange, "service-node-port-range", cfg.NodePortRange, "range NodePorts are allocated from")
	fs.DurationVar(&cfg.BookmarkInterval, "watch-bookmark-interval", cfg.BookmarkInterval, "how often watchers that allow bookmarks get one")
	return cmd
}
