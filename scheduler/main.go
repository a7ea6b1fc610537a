// Command scheduler assigns pending pods to nodes: it filters the nodes a
// pod can run on, scores them, and binds the pod to the best, behind leader
// election.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/skiff-dev/skiff/internal/clientconfig"
	"github.com/skiff-dev/skiff/internal/daemon"
	"github.com/skiff-dev/skiff/internal/events"
	"github.com/skiff-dev/skiff/scheduler/app"
	"github.com/skiff-dev/skiff/scheduler/config"
)

const component = "scheduler"

func main() { daemon.Main(newCommand()) }

// settings are the parsed command line.
type settings struct {
	flags           daemon.Flags
	opts            app.Options
	clientConfig    string
	schedulerConfig string
	parallelism     int
}

// complete loads --scheduler-config (once the --config file is applied)
// and lets --parallelism override it.
func (s *settings) complete(fs *pflag.FlagSet) error {
	cfg, err := config.Load(s.schedulerConfig)
	if err != nil {
		return err
	}
	if fs.Changed("parallelism") {
		cfg.Parallelism = s.parallelism
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("--parallelism: %w", err)
		}
	}
	s.opts.Config = cfg
	return nil
}

func newCommand() *cobra.Command {
	cmd, _ := command()
	return cmd
}

// command builds the command and the settings its flags fill.
func command() (*cobra.Command, *settings) {
	s := &settings{flags: daemon.Flags{HTTPAddr: "127.0.0.1:10259"}, opts: app.Options{LeaderElect: true}}
	var cc *clientconfig.Config
	var host string
	cmd := daemon.Command{
		Name:  component,
		Short: "Assign pending pods to nodes: filter, score, bind",
		Flags: &s.flags,
		Prepare: func(cmd *cobra.Command) error {
			if err := s.complete(cmd.Flags()); err != nil {
				return err
			}
			var err error
			if host, err = os.Hostname(); err != nil {
				return fmt.Errorf("hostname: %w", err)
			}
			s.opts.Identity = host + "_" + uuid.NewString()
			cc, err = clientconfig.Load(s.clientConfig)
			return err
		},
		Serve: func(ctx context.Context, d *daemon.Daemon) error {
			c, err := cc.Dial(ctx)
			if err != nil {
				return fmt.Errorf("connect to the apiserver: %w", err)
			}
			rec := events.NewRecorder(c, s.opts.Config.SchedulerName, host, events.WithLogger(d.Logger))
			a, err := app.New(s.opts, c, rec, d.Registry, d.Logger)
			if err != nil {
				return err
			}
			d.AddReadyCheck("caches", a.Ready)
			return rec.RunDuring(ctx, a.Run)
		},
	}.Cobra()
	fs := cmd.Flags()
	clientconfig.AddFlag(fs, &s.clientConfig)
	fs.BoolVar(&s.opts.LeaderElect, "leader-elect", s.opts.LeaderElect, "elect a leader among scheduler replicas through the Lease skiff-system/scheduler; only the leader schedules")
	fs.StringVar(&s.schedulerConfig, "scheduler-config", "", "scheduler configuration file (YAML: schedulerName, parallelism, percentageOfNodesToScore, podInitialBackoffSeconds, podMaxBackoffSeconds, podMaxInUnschedulablePodsDuration, bindConcurrency, assumedPodTTL, scoreWeights)")
	fs.IntVar(&s.parallelism, "parallelism", config.Default().Parallelism, "goroutines that filter and score nodes (overrides the scheduler config)")
	return cmd, s
}
