// Command scheduler assigns pending pods to nodes: it filters the nodes a
// pod can run on, scores them, and binds the pod to the best, behind leader
// election.
package main

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/clientconfig"
	"github.com/skiff-dev/skiff/internal/daemon"
	"github.com/skiff-dev/skiff/internal/events"
	"github.com/skiff-dev/skiff/internal/version"
	"github.com/skiff-dev/skiff/scheduler/app"
	"github.com/skiff-dev/skiff/scheduler/config"
)

const component = "scheduler"

func main() {
	if err := newCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	flags := daemon.Flags{HTTPAddr: "127.0.0.1:10259"}
	opts := app.Options{LeaderElect: true}
	var clientConfig, schedulerConfig string
	var parallelism int
	cmd := &cobra.Command{
		Use:           component,
		Short:         "Assign pending pods to nodes: filter, score, bind",
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := flags.ApplyConfigFile(cmd.Flags()); err != nil {
				return err
			}
			cfg, err := config.Load(schedulerConfig)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("parallelism") {
				cfg.Parallelism = parallelism
				if err := cfg.Validate(); err != nil {
					return fmt.Errorf("--parallelism: %w", err)
				}
			}
			opts.Config = cfg
			host, err := os.Hostname()
			if err != nil {
				return fmt.Errorf("hostname: %w", err)
			}
			opts.Identity = host + "_" + uuid.NewString()
			cc, err := clientconfig.Load(clientConfig)
			if err != nil {
				return err
			}
			return daemon.Run(cmd.Context(), component, flags, func(ctx context.Context, d *daemon.Daemon) error {
				c, err := cc.Dial(ctx)
				if err != nil {
					return fmt.Errorf("connect to the apiserver: %w", err)
				}
				rec := events.NewRecorder(c, cfg.SchedulerName, host, events.WithLogger(d.Logger))
				a, err := app.New(opts, c, rec, d.Registry, d.Logger)
				if err != nil {
					return err
				}
				d.AddReadyCheck("caches", a.Ready)
				var wg sync.WaitGroup
				defer wg.Wait()
				recCtx, stopRec := context.WithCancel(ctx)
				defer stopRec()
				wg.Go(func() { rec.Run(recCtx) })
				return a.Run(ctx)
			})
		},
	}
	fs := cmd.Flags()
	flags.Register(fs)
	clientconfig.AddFlag(fs, &clientConfig)
	fs.BoolVar(&opts.LeaderElect, "leader-elect", opts.LeaderElect, "elect a leader among scheduler replicas through the Lease skiff-system/scheduler; only the leader schedules")
	fs.StringVar(&schedulerConfig, "scheduler-config", "", "scheduler configuration file (YAML: schedulerName, parallelism, percentageOfNodesToScore, podInitialBackoffSeconds, podMaxBackoffSeconds, podMaxInUnschedulablePodsDuration, bindConcurrency, assumedPodTTL, scoreWeights)")
	fs.IntVar(&parallelism, "parallelism", config.Default().Parallelism, "goroutines that filter and score nodes (overrides the scheduler config)")
	return cmd
}
