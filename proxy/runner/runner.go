// Package runner coalesces sync requests, as kube-proxy's
// BoundedFrequencyRunner does: a burst of changes becomes one sync, syncs
// run at most every MinInterval and at least every MaxInterval, and a failed
// sync is retried after MinInterval.
//
// It must never run the sync function concurrently with itself.
package runner

import (
	"context"
	"log/slog"
	"time"
)

// Runner runs one sync function on demand, bounded in frequency.
type Runner struct {
	name     string
	fn       func(ctx context.Context, periodic bool) error
	min, max time.Duration
	log      *slog.Logger
	kick     chan struct{}
}

// New makes a runner for fn. fn learns whether it runs for the periodic
// resync (no change was requested) so it may re-check more than usual.
func New(name string, fn func(ctx context.Context, periodic bool) error, minInterval, maxInterval time.Duration, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{name: name, fn: fn, min: minInterval, max: maxInterval, log: log, kick: make(chan struct{}, 1)}
}

// Request asks for a sync soon. It never blocks; requests made while one
// is pending fold into it.
func (r *Runner) Request() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run syncs until ctx ends: once at start, then on requests (no sooner
// than MinInterval after the previous sync started) and every MaxInterval.
func (r *Runner) Run(ctx context.Context) {
	periodic := time.NewTimer(r.max)
	defer periodic.Stop()
	var last time.Time
	pending, isPeriodic := true, false
	for {
		if pending {
			if wait := r.min - time.Since(last); !last.IsZero() && wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
			// Requests that arrived while waiting are served by this run.
			select {
			case <-r.kick:
			default:
			}
			last = time.Now()
			err := r.fn(ctx, isPeriodic)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				r.log.Error("sync failed; retrying", "runner", r.name, "err", err, "retryIn", r.min)
			}
			periodic.Reset(r.max)
			pending, isPeriodic = err != nil, false
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
			pending = true
		case <-periodic.C:
			pending, isPeriodic = true, true
		}
	}
}
