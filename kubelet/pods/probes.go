package pods

import (
	"context"
	"strings"

	"github.com/skiff-dev/skiff/kubelet/probe"
	"github.com/skiff-dev/skiff/kubelet/runtime"
	"github.com/skiff-dev/skiff/proto/api"
)

func probeKey(containerID string, kind probe.Kind) string { return containerID + "/" + string(kind) }

// ensureProbes starts the probe loops a running container run needs, once
// each: its startup probe until that succeeds, then its readiness and
// liveness probes. A startup probe that succeeded is never run again for
// that run (its verdict stays).
func (w *worker) ensureProbes(pod *api.Pod, sb *runtime.Sandbox, c *api.Container, run *runtime.Container) {
	if c.GetStartupProbe() != nil {
		w.adoptStarted(pod, c, run.ID)
		if !w.started(c, run.ID) {
			w.startProbe(pod, sb, c, run, probe.Startup, c.GetStartupProbe())
			return
		}
	}
	w.startProbe(pod, sb, c, run, probe.Readiness, c.GetReadinessProbe())
	w.startProbe(pod, sb, c, run, probe.Liveness, c.GetLivenessProbe())
}

// startProbe starts one probe loop of a run unless it has one already (or
// the container has no such probe).
func (w *worker) startProbe(pod *api.Pod, sb *runtime.Sandbox, c *api.Container, run *runtime.Container, kind probe.Kind, spec *api.Probe) {
	key := probeKey(run.ID, kind)
	if spec == nil || w.probes[key] != nil {
		return
	}
	pctx, cancel := context.WithCancel(w.runCtx)
	pr := &probeRun{containerID: run.ID, cancel: cancel, done: make(chan struct{})}
	w.probes[key] = pr
	target := probe.Target{Container: c, ContainerID: run.ID, PodIP: sb.IP, StartedAt: run.StartedAt}
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

// started reports whether a run of c has started: it has no startup
// probe, or its startup probe succeeded.
func (w *worker) started(c *api.Container, containerID string) bool {
	if c.GetStartupProbe() == nil {
		return true
	}
	ok, _ := w.verdict(containerID, probe.Startup)
	return ok
}

// adoptStarted takes a run's startup verdict from the pod's status when the
// worker has none: a restarted kubelet does not probe a container that
// already started for startup again, nor hold its other probes back.
// containerd does not know the verdict; the apiserver does.
func (w *worker) adoptStarted(pod *api.Pod, c *api.Container, containerID string) {
	if _, known := w.verdict(containerID, probe.Startup); known {
		return
	}
	for _, cs := range pod.GetStatus().GetContainerStatuses() {
		if cs.GetName() == c.GetName() && cs.GetContainerId() == "containerd://"+containerID && cs.GetStarted() {
			w.verdictMu.Lock()
			w.verdicts[probeKey(containerID, probe.Startup)] = true
			w.verdictMu.Unlock()
			return
		}
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
	for _, kind := range []probe.Kind{probe.Startup, probe.Readiness, probe.Liveness} {
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
