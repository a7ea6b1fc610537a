// Command local starts and removes a whole Skiff cluster on this machine
// (root): `make up` runs `local up`, `make down` runs `local down`.
//
//	go run ./deploy/local up [--nodes N] [--state-dir DIR] [--bin-dir bin] [--image-dir bin/images]
//	go run ./deploy/local status
//	go run ./deploy/local down
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/localcluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newCommand().ExecuteContext(ctx); err != nil {
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	var (
		cfg   localcluster.Config
		debug bool
	)
	root := &cobra.Command{
		Use:          "local",
		Short:        "Run a Skiff cluster on this machine: nodes are network namespaces on a host bridge",
		SilenceUsage: true,
		PersistentPreRun: func(*cobra.Command, []string) {
			level := slog.LevelInfo
			if debug {
				level = slog.LevelDebug
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
		},
	}
	fs := root.PersistentFlags()
	fs.StringVar(&cfg.Name, "name", localcluster.DefaultName, "prefix of the bridge, namespaces, links and iptables chains (at most 8 characters)")
	fs.StringVar(&cfg.StateDir, "state-dir", localcluster.DefaultStateDir, "PKI, configs, logs, pids and node data")
	fs.IntVar(&cfg.Nodes, "nodes", localcluster.DefaultNodes, "number of nodes")
	fs.BoolVar(&debug, "debug", false, "log every command run")

	up := &cobra.Command{
		Use:   "up",
		Short: "Start the cluster (a running one is left as is)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := localcluster.Up(cmd.Context(), cfg); err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), localcluster.NextSteps(cfg))
			return nil
		},
	}
	up.Flags().StringVar(&cfg.BinDir, "bin-dir", "bin", "directory of the Skiff binaries")
	up.Flags().StringVar(&cfg.ImageDir, "image-dir", "bin/images", "docker-archive tarballs each kubelet imports at start (empty: none)")
	up.Flags().StringVar(&cfg.Subnet, "subnet", localcluster.DefaultSubnet, "host bridge network: host .1, node i .(10+i)")
	up.Flags().StringVar(&cfg.AdminConfig, "admin-config", "", `where to install the admin client config (default ~/.skiff/config; "-": state dir only)`)
	up.Flags().BoolVar(&cfg.Wait, "wait", true, "wait until every node is Ready")
	up.Flags().DurationVar(&cfg.WaitTimeout, "wait-timeout", 0, "how long to wait for Ready nodes (default 3m)")

	down := &cobra.Command{
		Use:   "down",
		Short: "Stop every process and remove every namespace, link, chain, mount and file the cluster made",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return localcluster.Down(cmd.Context(), cfg)
		},
	}

	status := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster's processes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			procs, err := localcluster.Status(cfg)
			if err != nil {
				return err
			}
			if procs == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "no local cluster in %s\n", cfg.StateDir)
				return nil
			}
			return localcluster.PrintStatus(cmd.OutOrStdout(), procs)
		},
	}
	root.AddCommand(up, down, status)
	return root
}
