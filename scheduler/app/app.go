// Package app assembles the scheduler daemon: the scheduler with its
// metrics, its caches (run by every replica, so a standby takes over warm)
// and the scheduling loop behind leader election on the Lease "scheduler"
// in skiff-system.
//
// It must never parse flags or dial the apiserver: main does both.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/events"
	"github.com/skiff-dev/skiff/internal/leaderelection"
	"github.com/skiff-dev/skiff/scheduler/config"
	"github.com/skiff-dev/skiff/scheduler/metrics"
	"github.com/skiff-dev/skiff/scheduler/scheduler"
)

// LeaseName is the leader-election Lease the scheduler replicas share.
const (
	LeaseName      = "scheduler"
	LeaseNamespace = "skiff-system"
)

// Options are the daemon's settings beyond the scheduler config.
type Options struct {
	Config      config.Config
	LeaderElect bool
	// Identity names this replica in the Lease.
	Identity string
	// Lease timings; zero takes the leaderelection defaults (15s, 10s, 2s).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// App is a scheduler daemon.
type App struct {
	opts      Options
	client    *client.Client
	log       *slog.Logger
	scheduler *scheduler.Scheduler
}

// New builds the scheduler and registers its metrics on reg.
func New(opts Options, c *client.Client, rec events.EventRecorder, reg prometheus.Registerer, log *slog.Logger) (*App, error) {
	if opts.LeaderElect && opts.Identity == "" {
		return nil, errors.New("leader election needs an identity")
	}
	m := metrics.New()
	s, err := scheduler.New(scheduler.Options{Config: opts.Config, Client: c, Recorder: rec, Metrics: m, Logger: log})
	if err != nil {
		return nil, err
	}
	if reg != nil {
		if err := m.Register(reg, s.Pending); err != nil {
			return nil, err
		}
	}
	return &App{opts: opts, client: c, log: log, scheduler: s}, nil
}

// Ready reports nil once the pod and node caches are synced.
func (a *App) Ready() error { return a.scheduler.Synced() }

// Run runs until ctx ends. With leader election it schedules only while it
// holds the Lease; when leadership is lost (an apiserver outage longer
// than the renew deadline) it stops scheduling and campaigns again, so a
// scheduler with no supervisor never stays idle.
func (a *App) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// Stop the caches before waiting for them.
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Go(func() { a.scheduler.RunCaches(ctx) })
	if !a.opts.LeaderElect {
		a.scheduler.ScheduleLoop(ctx)
		return nil
	}
	for {
		err := leaderelection.Run(ctx, leaderelection.Config{
			Client: a.client, Namespace: LeaseNamespace, Name: LeaseName, Identity: a.opts.Identity,
			LeaseDuration: a.opts.LeaseDuration, RenewDeadline: a.opts.RenewDeadline, RetryPeriod: a.opts.RetryPeriod,
			OnStartedLeading: func(ctx context.Context) {
				a.log.Info("leading: scheduling", "identity", a.opts.Identity)
				a.scheduler.ScheduleLoop(ctx)
			},
			OnStoppedLeading: func() { a.log.Info("stopped leading", "identity", a.opts.Identity) },
			OnNewLeader:      func(id string) { a.log.Info("new leader", "leader", id) },
			Logger:           a.log,
		})
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, leaderelection.ErrLeaderLost) {
			return fmt.Errorf("leader election: %w", err)
		}
		a.log.Warn("leadership lost: campaigning again", "identity", a.opts.Identity)
	}
}
