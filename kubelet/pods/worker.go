package pods

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/kubelet/cni"
	"github.com/skiff-dev/skiff/kubelet/probe"
	"github.com/skiff-dev/skiff/kubelet/runtime"
	"github.com/skiff-dev/skiff/kubelet/status"
	"github.com/skiff-dev/skiff/proto/api"
)

// retryPeriod is how soon a failed sync is tried again.
const retryPeriod = time.Second

// worker runs one pod. Only its goroutine touches the fields below mu's
// group; update and poke may be called from anywhere.
type worker struct {
	m   *Manager
	uid string
	log *slog.Logger

	mu    sync.Mutex
	pod   *api.Pod
	gone  bool
	wakeC chan struct{}
	// cancelSync cancels the sync in progress (a long image pull) when the
	// pod is being deleted, so termination does not wait for it.
	cancelSync context.CancelFunc

	// Owned by the worker goroutine.
	// runCtx lives as long as the worker: probes hang off it, not off a
	// single sync.
	runCtx context.Context
	pulls  map[string]*pullState // by container name
	starts map[string]*pullState // create failures, by container name
	probes map[string]*probeRun  // by container id + kind
	// verdicts hold probe results by container id + kind.
	verdictMu sync.Mutex
	verdicts  map[string]bool
	startTime time.Time
	vol       volumeState
}

// pullState is the back-off of a failing image pull or container create.
type pullState struct {
	failures int
	delay    time.Duration
	next     time.Time
	reason   string
	message  string
}

type probeRun struct {
	containerID string
	cancel      context.CancelFunc
	done        chan struct{}
}

func newWorker(m *Manager, uid string) *worker {
	return &worker{
		m: m, uid: uid, log: m.log.With("uid", uid),
		wakeC: make(chan struct{}, 1), pulls: map[string]*pullState{}, starts: map[string]*pullState{},
		probes: map[string]*probeRun{}, verdicts: map[string]bool{},
	}
}

// update stores a newer version of the pod and wakes the worker. Versions
// older than the one held (a status write races the informer) are ignored.
func (w *worker) update(pod *api.Pod, gone bool) {
	w.mu.Lock()
	if w.pod == nil || gone || newer(pod, w.pod) {
		w.pod = pod
	}
	w.gone = w.gone || gone
	if (w.gone || w.pod.GetMetadata().GetDeletionTimestamp() != nil) && w.cancelSync != nil {
		w.cancelSync()
	}
	w.mu.Unlock()
	w.poke()
}

func newer(a, b *api.Pod) bool {
	ra, _ := client.ParseResourceVersion(a.GetMetadata().GetResourceVersion())
	rb, _ := client.ParseResourceVersion(b.GetMetadata().GetResourceVersion())
	return ra >= rb
}

func (w *worker) poke() {
	select {
	case w.wakeC <- struct{}{}:
	default:
	}
}

func (w *worker) snapshot() (*api.Pod, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod, w.gone
}

func (w *worker) run(ctx context.Context) {
	w.runCtx = ctx
	defer w.stopProbes(nil)
	for {
		pod, gone := w.snapshot()
		w.log = w.m.log.With("pod", pod.GetMetadata().GetNamespace()+"/"+pod.GetMetadata().GetName(), "uid", w.uid)
		var (
			done    bool
			retryAt time.Time
			err     error
		)
		// A worker that knows no pod object (adopted from containerd, or
		// its object deleted) can only tear down.
		if gone || pod == nil || pod.GetMetadata().GetDeletionTimestamp() != nil {
			err = w.terminate(ctx, pod, gone || pod == nil)
			done = err == nil
		} else {
			sctx, cancel := context.WithCancel(ctx)
			w.mu.Lock()
			w.cancelSync = cancel
			w.mu.Unlock()
			retryAt, err = w.sync(sctx, pod)
			w.mu.Lock()
			w.cancelSync = nil
			w.mu.Unlock()
			cancel()
			if sctx.Err() != nil && ctx.Err() == nil {
				continue // deleted meanwhile: terminate now
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.log.Warn("pod sync failed", "err", err)
			retryAt = time.Now().Add(retryPeriod)
		}
		if done {
			w.m.workerDone(w.uid, w)
			return
		}
		var (
			timer <-chan time.Time
			t     *time.Timer
		)
		if !retryAt.IsZero() {
			t = time.NewTimer(time.Until(retryAt))
			timer = t.C
		}
		select {
		case <-ctx.Done():
		case <-w.wakeC:
		case <-timer:
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// sync makes containerd match the pod and reports its status. It returns
// when it wants to run again (a back-off ending), zero for "on change".
func (w *worker) sync(ctx context.Context, pod *api.Pod) (time.Time, error) {
	now := time.Now()
	if w.startTime.IsZero() {
		w.startTime = now
		if st := pod.GetStatus().GetStartTime(); st != nil {
			w.startTime = st.AsTime()
		}
	}
	sb, err := w.sandbox(ctx)
	if err != nil {
		return time.Time{}, err
	}
	runs, err := w.containers(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if finished(pod, runs, sb) {
		return time.Time{}, w.finish(ctx, pod, sb, runs, now)
	}
	if sb == nil || sb.IP == "" || (!pod.GetSpec().GetHostNetwork() && !exists(sb.NetNSPath)) {
		// No sandbox, one whose set-up did not finish, or one whose
		// namespace is gone (the node rebooted): make a fresh one.
		// Say ContainerCreating before the network and pulls take time.
		if err := w.writeStatus(ctx, pod, w.compute(pod, nil, nil, now)); err != nil {
			w.log.Warn("write status", "err", err)
		}
		if sb, err = w.createSandbox(ctx, pod, sb); err != nil {
			return time.Time{}, err
		}
	}
	w.setUpVolumes(ctx, pod)
	if runs, err = w.containers(ctx); err != nil {
		return time.Time{}, err
	}
	var retryAt time.Time
	waiting := map[string]*status.Waiting{}
	running := map[string]bool{}
	// Init containers run one at a time, in order, each to completion;
	// app containers start only once all have completed.
	todo, policy, rerun := pod.GetSpec().GetContainers(), pod.GetSpec().GetRestartPolicy(), false
	if init := nextInit(pod, runs, sb.CreatedAt); !init.Done {
		todo, policy, rerun = pod.GetSpec().GetInitContainers()[init.Next:init.Next+1], status.InitRestartPolicy(policy), init.Rerun
	}
	for _, c := range todo {
		step, err := w.syncContainer(ctx, pod, sb, c, runs[c.GetName()], policy, rerun, now)
		if err != nil {
			return time.Time{}, err
		}
		if step.waiting != nil {
			waiting[c.GetName()] = step.waiting
		}
		if step.running != "" {
			running[step.running] = true
		}
		if !step.retryAt.IsZero() && (retryAt.IsZero() || step.retryAt.Before(retryAt)) {
			retryAt = step.retryAt
		}
	}
	w.stopProbes(running)
	if runs, err = w.containers(ctx); err != nil {
		return time.Time{}, err
	}
	st := w.computeWith(pod, runs, waiting, sb, now)
	if err := w.writeStatus(ctx, pod, st); err != nil {
		return time.Time{}, err
	}
	return retryAt, nil
}

// containerStep is what syncing one container found.
type containerStep struct {
	// waiting is why it is not running, when the status should say more
	// than the runtime can.
	waiting *status.Waiting
	// retryAt is when to sync again (a back-off ending); zero: on change.
	retryAt time.Time
	// running is the id of its running run.
	running string
}

// syncContainer moves one container towards running: it starts its first
// run, redoes a create that never started, applies the startup and
// liveness probes' verdicts to a running run, and restarts an exited run
// under policy (or at once when rerun) after the crash back-off.
func (w *worker) syncContainer(ctx context.Context, pod *api.Pod, sb *runtime.Sandbox, c *api.Container, runs []*runtime.Container, policy string, rerun bool, now time.Time) (containerStep, error) {
	var step containerStep
	cur, _ := latest(runs)
	switch {
	case cur == nil:
		step.waiting, step.retryAt = w.start(ctx, pod, sb, c, 0)
	case cur.Status == runtime.StatusCreated || cur.Status == runtime.StatusUnknown:
		// A create that never started (a crash in between): redo it.
		if err := w.m.rt.RemoveContainer(ctx, cur.ID); err != nil {
			return step, err
		}
		step.waiting, step.retryAt = w.start(ctx, pod, sb, c, cur.RestartCount)
	case cur.Status == runtime.StatusRunning:
		step.running = cur.ID
		w.ensureProbes(pod, sb, c, cur)
		for _, kind := range []probe.Kind{probe.Startup, probe.Liveness} {
			if ok, known := w.verdict(cur.ID, kind); known && !ok {
				w.log.Info(string(kind)+" probe failed, restarting container", "container", c.GetName())
				w.event(pod, "Normal", "Killing", "Container %s failed %s probe, will be restarted", c.GetName(), kind)
				if err := w.m.rt.StopContainer(ctx, cur.ID, gracePeriod(pod)); err != nil {
					return step, err
				}
				w.forget(cur.ID)
				step.retryAt = time.Now()
				break
			}
		}
	case cur.Status == runtime.StatusExited && (rerun || status.ShouldRestart(policy, cur.ExitCode)):
		delay := w.m.cfg.Backoff.RestartDelay(cur.RestartCount, cur.FinishedAt.Sub(cur.StartedAt))
		if at := cur.FinishedAt.Add(delay); now.Before(at) {
			step.waiting = &status.Waiting{Reason: status.ReasonCrashLoopBackOff,
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", delay, c.GetName(),
					pod.GetMetadata().GetName(), pod.GetMetadata().GetNamespace(), w.uid)}
			w.event(pod, "Warning", "BackOff", "Back-off restarting failed container %s in pod %s", c.GetName(), pod.GetMetadata().GetName())
			step.retryAt = at
			return step, nil
		}
		step.waiting, step.retryAt = w.start(ctx, pod, sb, c, cur.RestartCount+1)
		w.pruneRuns(ctx, runs, cur.RestartCount)
	}
	return step, nil
}

// start pulls the image and starts run restart of container c. It returns
// a waiting state and a retry time when it cannot.
func (w *worker) start(ctx context.Context, pod *api.Pod, sb *runtime.Sandbox, c *api.Container, restart int) (*status.Waiting, time.Time) {
	name := c.GetName()
	if wt, at := w.volumesWaiting(); wt != nil {
		return wt, at
	}
	if ps := w.pulls[name]; ps != nil && time.Now().Before(ps.next) {
		// The failure shows as ErrImagePull for the first half of the
		// back-off and as ImagePullBackOff for the rest, as kubectl users
		// expect to see both.
		if half := ps.next.Add(-ps.delay / 2); time.Now().Before(half) {
			return &status.Waiting{Reason: ps.reason, Message: ps.message}, half
		}
		w.event(pod, "Normal", "BackOff", "Back-off pulling image %q", c.GetImage())
		return &status.Waiting{Reason: status.ReasonImagePullBackOff, Message: fmt.Sprintf("Back-off pulling image %q: %s", c.GetImage(), ps.message)}, ps.next
	}
	img, err := w.m.rt.EnsureImage(ctx, c.GetImage(), pullPolicy(c))
	if err != nil {
		ps := w.pulls[name]
		if ps == nil {
			ps = &pullState{}
			w.pulls[name] = ps
		}
		ps.failures++
		ps.message = err.Error()
		ps.delay = w.m.cfg.Backoff.Delay(ps.failures)
		ps.next = time.Now().Add(ps.delay)
		ps.reason = status.ReasonErrImagePull
		if errors.Is(err, runtime.ErrImageNeverPull) {
			ps.reason = status.ReasonErrImageNeverPull
		}
		w.log.Warn("image pull failed", "container", name, "image", c.GetImage(), "err", err)
		w.event(pod, "Warning", "Failed", "Failed to pull image %q: %v", c.GetImage(), err)
		return &status.Waiting{Reason: ps.reason, Message: err.Error()}, ps.next.Add(-ps.delay / 2)
	}
	delete(w.pulls, name)
	if ss := w.starts[name]; ss != nil && time.Now().Before(ss.next) {
		return &status.Waiting{Reason: status.ReasonCreateContainerError, Message: ss.message}, ss.next
	}
	spec, err := w.containerSpec(pod, sb, c, img, restart)
	if err == nil {
		_, err = w.m.rt.CreateContainer(ctx, spec)
	}
	if err != nil {
		ss := w.starts[name]
		if ss == nil {
			ss = &pullState{}
			w.starts[name] = ss
		}
		ss.failures++
		ss.message = err.Error()
		ss.next = time.Now().Add(w.m.cfg.Backoff.Delay(ss.failures))
		w.log.Warn("start container failed", "container", name, "err", err)
		w.event(pod, "Warning", "Failed", "Error: %v", err)
		// Leave nothing half made behind: the next try starts clean. The
		// failure may be ctx's cancellation (the pod deleted meanwhile):
		// clean up on a context of its own.
		cctx, cancel := runtime.CleanupContext(ctx)
		rerr := w.m.rt.RemoveContainer(cctx, runtime.ContainerID(w.uid, name, restart))
		cancel()
		if rerr != nil {
			w.log.Warn("remove failed container", "container", name, "err", rerr)
		}
		return &status.Waiting{Reason: status.ReasonCreateContainerError, Message: err.Error()}, ss.next
	}
	delete(w.starts, name)
	w.log.Info("started container", "container", name, "restartCount", restart)
	w.event(pod, "Normal", "Started", "Started container %s", name)
	return nil, time.Time{}
}

func pullPolicy(c *api.Container) string {
	if p := c.GetImagePullPolicy(); p != "" {
		return p
	}
	ref, err := runtime.NormalizeImage(c.GetImage())
	if err == nil && len(ref) > 7 && ref[len(ref)-7:] == ":latest" {
		return runtime.PullAlways
	}
	return runtime.PullIfNotPresent
}

// pruneRuns removes the runs of a container older than the one before
// current: the previous run stays for `logs --previous` and lastState.
func (w *worker) pruneRuns(ctx context.Context, runs []*runtime.Container, current int) {
	ctx, cancel := runtime.CleanupContext(ctx)
	defer cancel()
	for _, r := range runs {
		if r.RestartCount < current {
			if err := w.m.rt.RemoveContainer(ctx, r.ID); err != nil {
				w.log.Warn("remove old container", "container", r.Name, "restartCount", r.RestartCount, "err", err)
			}
			_ = os.Remove(r.LogPath)
		}
	}
}

// latest returns the current run and the one before it.
func latest(runs []*runtime.Container) (cur, prev *runtime.Container) {
	if n := len(runs); n > 0 {
		cur = runs[n-1]
		if n > 1 {
			prev = runs[n-2]
		}
	}
	return cur, prev
}

// containers groups the pod's container runs by name, oldest first.
func (w *worker) containers(ctx context.Context) (map[string][]*runtime.Container, error) {
	all, err := w.m.rt.PodContainers(ctx, w.uid)
	if err != nil {
		return nil, err
	}
	out := map[string][]*runtime.Container{}
	for _, c := range all {
		out[c.Name] = append(out[c.Name], c)
	}
	return out, nil
}

func (w *worker) compute(pod *api.Pod, runs map[string][]*runtime.Container, sb *runtime.Sandbox, now time.Time) *api.PodStatus {
	return w.computeWith(pod, runs, nil, sb, now)
}

// computeWith is the pod's status from its runs in sandbox sb (nil: none
// yet), what the worker knows better than containerd (waiting) and its
// probes' verdicts. status.Compute has the rules.
func (w *worker) computeWith(pod *api.Pod, runs map[string][]*runtime.Container, waiting map[string]*status.Waiting, sb *runtime.Sandbox, now time.Time) *api.PodStatus {
	in := status.Input{
		Pod:            pod,
		InitContainers: statusContainers(pod.GetSpec().GetInitContainers(), runs, waiting),
		Containers:     statusContainers(pod.GetSpec().GetContainers(), runs, waiting),
		HostIP:         w.m.cfg.NodeIP,
		StartTime:      w.startTime,
		Now:            now,
	}
	if sb != nil {
		in.PodIP, in.SandboxCreated = sb.IP, sb.CreatedAt
	}
	for i := range in.Containers {
		c := &in.Containers[i]
		c.Ready = true
		if c.Current == nil {
			continue
		}
		c.Starting = !w.started(c.Spec, c.Current.ID)
		if !c.Starting && c.Spec.GetReadinessProbe() != nil {
			c.Ready, _ = w.verdict(c.Current.ID, probe.Readiness)
		}
	}
	return status.Compute(in)
}

// writeStatus stores st as the pod's status unless it already is,
// retrying on conflicts with a fresh read.
func (w *worker) writeStatus(ctx context.Context, pod *api.Pod, st *api.PodStatus) error {
	if proto.Equal(pod.GetStatus(), st) {
		return nil
	}
	for attempt := 0; ; attempt++ {
		p := proto.Clone(pod).(*api.Pod)
		p.Status = st
		out, err := w.m.api.UpdateStatus(ctx, p)
		if err == nil {
			w.update(out, false)
			return nil
		}
		if client.IsNotFound(err) {
			return nil // deleted: the informer tells the worker soon
		}
		if !client.IsConflict(err) || attempt >= 3 {
			return fmt.Errorf("update status: %w", err)
		}
		fresh, gerr := w.m.api.Get(ctx, pod.GetMetadata().GetNamespace(), pod.GetMetadata().GetName())
		if gerr != nil {
			return fmt.Errorf("update status: re-read: %w", gerr)
		}
		if fresh.GetMetadata().GetUid() != w.uid {
			return nil
		}
		w.update(fresh, false)
		pod = fresh
		if proto.Equal(pod.GetStatus(), st) {
			return nil
		}
	}
}

func gracePeriod(pod *api.Pod) time.Duration {
	if m := pod.GetMetadata(); m != nil && m.DeletionGracePeriodSeconds != nil {
		return time.Duration(*m.DeletionGracePeriodSeconds) * time.Second
	}
	if s := pod.GetSpec(); s != nil && s.TerminationGracePeriodSeconds != nil {
		return time.Duration(*s.TerminationGracePeriodSeconds) * time.Second
	}
	return 30 * time.Second
}

func (w *worker) hostPorts(pod *api.Pod) []cni.PortMapping {
	var out []cni.PortMapping
	for _, c := range pod.GetSpec().GetContainers() {
		for _, p := range c.GetPorts() {
			if p.GetHostPort() > 0 {
				proto := "tcp"
				if p.GetProtocol() == "UDP" {
					proto = "udp"
				}
				out = append(out, cni.PortMapping{HostPort: p.GetHostPort(), ContainerPort: p.GetContainerPort(), Protocol: proto, HostIP: p.GetHostIp()})
			}
		}
	}
	return out
}

// podLimits are the pod cgroup's limits, as Kubernetes computes them: for
// a resource every container (init containers included) limits, the larger
// of the app containers' sum and the largest init container's limit (init
// containers run alone, before the app containers); else none.
func podLimits(pod *api.Pod) (memory, cpuMilli int64, err error) {
	memOK, cpuOK := true, true
	for _, c := range pod.GetSpec().GetContainers() {
		m, cpu, err := limits(c)
		if err != nil {
			return 0, 0, err
		}
		memory, cpuMilli = memory+m, cpuMilli+cpu
		memOK, cpuOK = memOK && m > 0, cpuOK && cpu > 0
	}
	for _, c := range pod.GetSpec().GetInitContainers() {
		m, cpu, err := limits(c)
		if err != nil {
			return 0, 0, err
		}
		memory, cpuMilli = max(memory, m), max(cpuMilli, cpu)
		memOK, cpuOK = memOK && m > 0, cpuOK && cpu > 0
	}
	if !memOK {
		memory = 0
	}
	if !cpuOK {
		cpuMilli = 0
	}
	return memory, cpuMilli, nil
}

// limits reads resources.limits: memory in bytes, cpu in millicores.
func limits(c *api.Container) (memory, cpuMilli int64, err error) {
	l := c.GetResources().GetLimits()
	if v, ok := l["memory"]; ok {
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return 0, 0, fmt.Errorf("container %s: resources.limits.memory %q: %w", c.GetName(), v, err)
		}
		memory = q.Value()
	}
	if v, ok := l["cpu"]; ok {
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return 0, 0, fmt.Errorf("container %s: resources.limits.cpu %q: %w", c.GetName(), v, err)
		}
		cpuMilli = q.MilliValue()
	}
	return memory, cpuMilli, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// event records an Event on the pod.
func (w *worker) event(pod *api.Pod, typ, reason, format string, args ...any) {
	w.m.cfg.Recorder.Eventf(pod, typ, reason, format, args...)
}

// finished reports a pod whose every container exited for good under the
// restartPolicy (Succeeded or Failed), or whose init container failed
// under restartPolicy Never (Failed: no app container ever runs).
func finished(pod *api.Pod, runs map[string][]*runtime.Container, sb *runtime.Sandbox) bool {
	var sandboxCreated time.Time
	if sb != nil {
		sandboxCreated = sb.CreatedAt
	}
	if nextInit(pod, runs, sandboxCreated).Failed {
		return true
	}
	cs := pod.GetSpec().GetContainers()
	for _, c := range cs {
		cur, _ := latest(runs[c.GetName()])
		if cur == nil || cur.Status != runtime.StatusExited || status.ShouldRestart(pod.GetSpec().GetRestartPolicy(), cur.ExitCode) {
			return false
		}
	}
	return len(cs) > 0
}

// finish gives a finished pod's IP, network namespace and volumes back,
// keeping its containers (for logs) and its sandbox record until the pod
// is deleted, and reports the final status.
func (w *worker) finish(ctx context.Context, pod *api.Pod, sb *runtime.Sandbox, runs map[string][]*runtime.Container, now time.Time) error {
	w.stopProbes(nil)
	ip := ""
	if sb != nil {
		ip = sb.IP
		if sb.NetNSPath != "" {
			// Released in one go, even when the pod is deleted meanwhile.
			cctx, cancel := runtime.CleanupContext(ctx)
			defer cancel()
			if exists(sb.NetNSPath) {
				if err := w.m.net.TearDown(cctx, w.uid, sb.NetNSPath, w.hostPorts(pod), cniLabels(sb.Pod)); err != nil {
					return err
				}
			}
			if err := w.m.net.RemoveNetNS(sb.NetNSPath); err != nil {
				return err
			}
			if err := w.m.rt.ClearSandboxNetNS(cctx, w.uid); err != nil {
				return err
			}
			w.log.Info("pod finished, network released", "ip", ip)
		}
	}
	// Its volumes go too (a memory emptyDir's tmpfs); the logs stay.
	if err := w.m.vols.TearDown(w.uid); err != nil {
		return err
	}
	return w.writeStatus(ctx, pod, w.compute(pod, runs, sb, now))
}
