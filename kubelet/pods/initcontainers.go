package pods

import (
	"time"

	"github.com/skiff-dev/skiff/kubelet/runtime"
	"github.com/skiff-dev/skiff/kubelet/status"
	"github.com/skiff-dev/skiff/proto/api"
)

// nextInit reads how far the pod's init containers are from their runs in
// containerd, for the sandbox made at sandboxCreated (status.NextInit has
// the rules).
func nextInit(pod *api.Pod, runs map[string][]*runtime.Container, sandboxCreated time.Time) status.InitProgress {
	return status.NextInit(pod.GetSpec().GetRestartPolicy(), statusContainers(pod.GetSpec().GetInitContainers(), runs, nil), sandboxCreated)
}

// statusContainers pairs each container of specs with its current and
// previous runs and what the worker knows better than containerd
// (waiting, by container name).
func statusContainers(specs []*api.Container, runs map[string][]*runtime.Container, waiting map[string]*status.Waiting) []status.Container {
	out := make([]status.Container, 0, len(specs))
	for _, c := range specs {
		cur, prev := latest(runs[c.GetName()])
		out = append(out, status.Container{Spec: c, Current: cur, Previous: prev, Waiting: waiting[c.GetName()]})
	}
	return out
}
