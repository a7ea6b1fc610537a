package status

import (
	"strings"
	"time"

	"github.com/skiff-dev/skiff/kubelet/runtime"
	"github.com/skiff-dev/skiff/proto/api"
)

// InitProgress is how far a pod's init containers are. They run one at a
// time, in spec order, each to successful completion, before any app
// container starts.
type InitProgress struct {
	// Next is the index of the first init container that has not
	// completed for the pod's current sandbox: the one to start, wait for
	// or restart. The number of init containers once all have completed.
	Next int
	// Done: every init container has completed; the app containers run.
	Done bool
	// Rerun: Next's latest run completed, but for an earlier sandbox (the
	// node rebooted and the pod got a new one): it must run again now.
	Rerun bool
	// Failed: Next exited with an error under restartPolicy Never. It
	// will not run again and the pod has failed.
	Failed bool
}

// NextInit reads the progress of a pod's init containers (in spec order)
// from their latest runs. A run counts only for the sandbox made at
// sandboxCreated (or later): containerd's labels carry everything needed,
// so a restarted kubelet finds completed init containers completed and
// does not run them again, while a pod whose sandbox was made anew runs
// them again, as in Kubernetes.
func NextInit(restartPolicy string, inits []Container, sandboxCreated time.Time) InitProgress {
	for i, c := range inits {
		cur := c.Current
		if cur == nil || cur.Status != runtime.StatusExited {
			return InitProgress{Next: i}
		}
		if !cur.StartedAt.IsZero() && cur.StartedAt.Before(sandboxCreated) {
			return InitProgress{Next: i, Rerun: true}
		}
		if cur.ExitCode != 0 {
			return InitProgress{Next: i, Failed: !ShouldRestart(InitRestartPolicy(restartPolicy), cur.ExitCode)}
		}
	}
	return InitProgress{Next: len(inits), Done: true}
}

// InitRestartPolicy is how an init container is restarted under the pod's
// restartPolicy: Never under Never, else on failure only (a completed init
// container never runs again, even under Always).
func InitRestartPolicy(restartPolicy string) string {
	if restartPolicy == "Never" {
		return "Never"
	}
	return "OnFailure"
}

// initContainerStatuses are the init containers' statuses: the same
// states, restart counts and last states as app containers, waiting with
// PodInitializing until they first run, and ready once completed.
func initContainerStatuses(inits []Container) []*api.ContainerStatus {
	var css []*api.ContainerStatus
	for _, c := range inits {
		if c.Current == nil && c.Waiting == nil {
			c.Waiting = &Waiting{Reason: ReasonPodInitializing}
		}
		c.Ready, c.Starting = false, false
		cs := containerStatus(c)
		t := cs.GetState().GetTerminated()
		cs.Ready = t != nil && t.GetExitCode() == 0
		css = append(css, cs)
	}
	return css
}

// initialized is the Initialized condition: False until every init
// container completed, naming those that have not.
func initialized(inits []Container, p InitProgress) *api.Condition {
	c := condition("Initialized", p.Done)
	if p.Done {
		return c
	}
	var incomplete []string
	for _, ic := range inits[p.Next:] {
		incomplete = append(incomplete, ic.Spec.GetName())
	}
	c.Reason = ReasonContainersNotInitialized
	c.Message = "containers with incomplete status: [" + strings.Join(incomplete, " ") + "]"
	return c
}
