package pods

import (
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skiff-dev/skiff/kubelet/runtime"
	"github.com/skiff-dev/skiff/kubelet/status"
	"github.com/skiff-dev/skiff/proto/api"
)

// Init container reasons, as Kubernetes spells them.
const (
	// reasonPodInitializing is the waiting reason of the containers that
	// wait for the init containers (kubectl shows Init:N/M for them).
	reasonPodInitializing = "PodInitializing"
	// reasonContainersNotInitialized is the Initialized condition's reason
	// while an init container has not completed.
	reasonContainersNotInitialized = "ContainersNotInitialized"
)

// initProgress is how far a pod's init containers are. They run one at a
// time, in spec order, each to successful completion, before any app
// container starts.
type initProgress struct {
	// next is the index of the first init container that has not
	// completed for the pod's current sandbox: the one to start, wait for
	// or restart. len(spec.initContainers) once all have completed.
	next int
	// rerun: next's latest run completed, but for an earlier sandbox (the
	// node rebooted and the pod got a new one): it must run again now.
	rerun bool
	// failed: next exited with an error under restartPolicy Never. It
	// will not run again and the pod has failed.
	failed bool
}

// done reports that every init container has completed.
func (p initProgress) done(pod *api.Pod) bool {
	return p.next >= len(pod.GetSpec().GetInitContainers())
}

// nextInit reads the init containers' progress from their runs in
// containerd. A run counts only for the sandbox made at sandboxCreated (or
// later): containerd's labels carry everything needed, so a restarted
// kubelet finds completed init containers completed and does not run them
// again, while a pod whose sandbox was made anew runs them again, as in
// Kubernetes.
func nextInit(pod *api.Pod, runs map[string][]*runtime.Container, sandboxCreated time.Time) initProgress {
	inits := pod.GetSpec().GetInitContainers()
	for i, c := range inits {
		cur, _ := latest(runs[c.GetName()])
		if cur == nil || cur.Status != runtime.StatusExited {
			return initProgress{next: i}
		}
		if !cur.StartedAt.IsZero() && cur.StartedAt.Before(sandboxCreated) {
			return initProgress{next: i, rerun: true}
		}
		if cur.ExitCode != 0 {
			return initProgress{next: i, failed: !status.ShouldRestart(initRestartPolicy(pod), cur.ExitCode)}
		}
	}
	return initProgress{next: len(inits)}
}

// initRestartPolicy is how an init container is restarted: Never under
// restartPolicy Never, else on failure only (a completed init container
// never runs again, even under Always).
func initRestartPolicy(pod *api.Pod) string {
	if pod.GetSpec().GetRestartPolicy() == "Never" {
		return "Never"
	}
	return "OnFailure"
}

// initContainerStatuses are the init containers' statuses: the same
// states, restart counts and last states as app containers (status.Compute
// turns runs into container statuses; only those are kept), waiting with
// PodInitializing until they first run, and ready once completed.
func initContainerStatuses(pod *api.Pod, runs map[string][]*runtime.Container, waiting map[string]*status.Waiting, now time.Time) []*api.ContainerStatus {
	inits := pod.GetSpec().GetInitContainers()
	if len(inits) == 0 {
		return nil
	}
	in := status.Input{Pod: pod, Now: now}
	for _, c := range inits {
		cur, prev := latest(runs[c.GetName()])
		sc := status.Container{Spec: c, Current: cur, Previous: prev, Waiting: waiting[c.GetName()]}
		if cur == nil && sc.Waiting == nil {
			sc.Waiting = &status.Waiting{Reason: reasonPodInitializing}
		}
		in.Containers = append(in.Containers, sc)
	}
	css := status.Compute(in).GetContainerStatuses()
	for _, cs := range css {
		t := cs.GetState().GetTerminated()
		cs.Ready = t != nil && t.GetExitCode() == 0
	}
	return css
}

// applyInit completes a status computed for the app containers with the
// init containers' part: their statuses, the Initialized condition (False
// until all completed, naming those that have not), and phase Failed when
// one failed under restartPolicy Never. The phase is otherwise the app
// containers' (Pending while they wait for initialisation). old is the
// pod's current status, whose lastTransitionTimes stay when unchanged.
func applyInit(st, old *api.PodStatus, pod *api.Pod, p initProgress, statuses []*api.ContainerStatus, now time.Time) {
	st.InitContainerStatuses = statuses
	inits := pod.GetSpec().GetInitContainers()
	if p.done(pod) {
		return
	}
	var incomplete []string
	for _, c := range inits[p.next:] {
		incomplete = append(incomplete, c.GetName())
	}
	for _, c := range st.GetConditions() {
		if c.GetType() == "Initialized" {
			c.Status, c.Reason = "False", reasonContainersNotInitialized
			c.Message = "containers with incomplete status: [" + strings.Join(incomplete, " ") + "]"
			c.LastTransitionTime = transitionTime(old, c, now)
		}
	}
	if p.failed {
		st.Phase = status.PhaseFailed
		for _, c := range st.GetConditions() {
			if c.GetType() == "ContainersReady" || c.GetType() == "Ready" {
				c.Reason, c.Message = status.ReasonPodCompleted, ""
			}
		}
	}
}

// transitionTime keeps a condition's lastTransitionTime from old when its
// status did not change.
func transitionTime(old *api.PodStatus, c *api.Condition, now time.Time) *timestamppb.Timestamp {
	for _, o := range old.GetConditions() {
		if o.GetType() == c.GetType() && o.GetStatus() == c.GetStatus() && o.GetLastTransitionTime() != nil {
			return o.GetLastTransitionTime()
		}
	}
	return timestamppb.New(now)
}
