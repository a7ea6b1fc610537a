package probe

import (
	"context"
	"log/slog"
	"time"

	"github.com/skiff-dev/skiff/proto/api"
)

// Kind is what a probe decides.
type Kind string

const (
	Readiness Kind = "readiness"
	Liveness  Kind = "liveness"
	// Startup holds the other probes back until the container has started;
	// its failure restarts the container, as liveness does.
	Startup Kind = "startup"
)

// Loop probes one run of a container until ctx ends. It waits until
// initialDelaySeconds after the run started (as in Kubernetes, a loop
// started late, behind a startup probe or by a restarted kubelet, does not
// wait the whole delay again), then probes every periodSeconds, and calls
// report each time the verdict flips after failureThreshold failures or
// successThreshold successes in a row. The verdict starts false for
// readiness and true for liveness, as in Kubernetes.
//
// A startup probe decides once: it reports success after
// successThreshold successes in a row, or failure after failureThreshold
// failures in a row, and stops probing either way. A started container is
// never probed for startup again; a failed one is restarted, and its next
// run gets a loop of its own.
func Loop(ctx context.Context, p *Prober, kind Kind, pr *api.Probe, t Target, log *slog.Logger, report func(ok bool, message string)) {
	period := time.Duration(max(pr.GetPeriodSeconds(), 1)) * time.Second
	success := int(max(pr.GetSuccessThreshold(), 1))
	failure := int(max(pr.GetFailureThreshold(), 1))
	if pr.GetFailureThreshold() == 0 {
		failure = 3
	}
	verdict := kind == Liveness
	streak := 0 // consecutive results that disagree with the verdict
	// A startup probe has no verdict until it decides: its streak counts
	// equal results in a row, of either kind.
	var last bool

	delay := time.Duration(pr.GetInitialDelaySeconds()) * time.Second
	if !t.StartedAt.IsZero() {
		delay = max(delay-time.Since(t.StartedAt), 0)
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		ok, msg := p.Probe(ctx, pr, t)
		log.Debug("probed", "probe", string(kind), "container", t.Container.GetName(), "ok", ok, "message", msg)
		if ctx.Err() != nil {
			return
		}
		if kind == Startup {
			if streak == 0 || ok != last {
				streak = 0
			}
			last = ok
			streak++
			need := failure
			if ok {
				need = success
			}
			if streak >= need {
				log.Info("startup probe decided", "container", t.Container.GetName(), "started", ok, "message", msg)
				report(ok, msg)
				return
			}
		} else if ok == verdict {
			streak = 0
		} else {
			streak++
			need := failure
			if ok {
				need = success
			}
			if streak >= need {
				verdict, streak = ok, 0
				log.Info("probe verdict changed", "probe", string(kind), "container", t.Container.GetName(), "ok", ok, "message", msg)
				report(ok, msg)
			}
		}
		timer.Reset(period)
	}
}
