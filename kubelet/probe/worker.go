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
)

// Loop probes one run of a container until ctx ends. It waits
// initialDelaySeconds, then probes every periodSeconds, and calls report
// each time the verdict flips after failureThreshold failures or
// successThreshold successes in a row. The verdict starts false for
// readiness and true for liveness, as in Kubernetes.
func Loop(ctx context.Context, p *Prober, kind Kind, pr *api.Probe, t Target, log *slog.Logger, report func(ok bool, message string)) {
	period := time.Duration(max(pr.GetPeriodSeconds(), 1)) * time.Second
	success := int(max(pr.GetSuccessThreshold(), 1))
	failure := int(max(pr.GetFailureThreshold(), 1))
	if pr.GetFailureThreshold() == 0 {
		failure = 3
	}
	verdict := kind == Liveness
	streak := 0 // consecutive results that disagree with the verdict

	timer := time.NewTimer(time.Duration(pr.GetInitialDelaySeconds()) * time.Second)
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
		if ok == verdict {
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
