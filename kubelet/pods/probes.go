package pods

import (
	"context"
	"strings"

	"github.com/skiff-dev/skiff/kubelet/probe"
	"github.com/skiff-dev/skiff/kubelet/runtime"
	"github.com/skiff-dev/skiff/proto/api"
)

func probeKey(containerID string, kind probe.Kind) string { return containerID + "/" + string(kind) }

// ensureProbes starts the readiness and liveness loops of a running
// container run, once.
func (w *worker) ensureProbes(pod *api.Pod, sb *runtime.Sandbox, c *api.Container, run *runtime.Container) {
	for kind, pr := range map[probe.Kind]*api.Probe{probe.Readiness: c.GetReadinessProbe(), probe.Liveness: c.GetLivenessProbe()} {
		key := probeKey(run.ID, kind)
		if pr == nil || w.probes[key] != nil {
			continue
		}
		pctx, cancel := context.WithCancel(w.runCtx)
		pr := &probeRun{containerID: run.ID, cancel: cancel, done: make(chan struct{})}
		w.probes[key] = pr
		target := probe.Target{Container: c, ContainerID: run.ID, PodIP: sb.IP}
		spec := c.GetReadinessProbe()
		if kind == probe.Liveness {
			spec = c.GetLivenessProbe()
		}
		w.log.Debug("starting probe", "probe", string(kind), "container", c.GetName(), "containerID", run.ID)
		go func() {
			defer close(pr.done)
			probe.Loop(pctx, w.m.prober, kind, spec, target, w.log, func(ok bool, msg string) {
				if !ok {
					w.event(pod, "Warning", "Unhealthy", "%s probe failed: %s", strings.ToUpper(string(kind[:1]))+string(kind[1:]), msg)
				}
				w.verdictMu.Lock()
				w.verdicts[key] = ok
				w.verdictMu.Unlock()
				w.poke()
			})
		}()
	}
}

// verdict returns a probe's latest verdict and whether there is one.
func (w *worker) verdict(containerID string, kind probe.Kind) (ok, known bool) {
	w.verdictMu.Lock()
	defer w.verdictMu.Unlock()
	ok, known = w.verdicts[probeKey(containerID, kind)]
	return ok, known
}

// forget drops a run's probes and verdicts.
func (w *worker) forget(containerID string) {
	for _, kind := range []probe.Kind{probe.Readiness, probe.Liveness} {
		key := probeKey(containerID, kind)
		if pr := w.probes[key]; pr != nil {
			pr.cancel()
			<-pr.done
			delete(w.probes, key)
		}
		w.verdictMu.Lock()
		delete(w.verdicts, key)
		w.verdictMu.Unlock()
	}
}

// stopProbes stops the probes of every run not in keep (nil: all).
func (w *worker) stopProbes(keep map[string]bool) {
	for _, pr := range w.probes {
		if !keep[pr.containerID] {
			w.forget(pr.containerID)
		}
	}
}
