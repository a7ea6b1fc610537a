// Package statustest has the fixtures the tests of pod status and of the
// pod worker share: a pod with init containers and container runs.
package statustest

import (
	"time"

	"github.com/skiff-dev/skiff/kubelet/runtime"
	"github.com/skiff-dev/skiff/proto/api"
)

// T0 is the fixtures' clock: runs start at T0 plus some seconds.
var T0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// InitPod has init containers i1, i2 and app container app.
func InitPod(policy string) *api.Pod {
	return &api.Pod{
		Metadata: &api.ObjectMeta{Name: "p", Namespace: "default", Uid: "u"},
		Spec: &api.PodSpec{RestartPolicy: policy,
			InitContainers: []*api.Container{{Name: "i1", Image: "busybox"}, {Name: "i2", Image: "busybox"}},
			Containers:     []*api.Container{{Name: "app", Image: "busybox"}}},
	}
}

// Run is a run of container name; exit < 0 means still running. It started
// at T0+start seconds and, when it exited, ran for a second.
func Run(name string, restart, exit int, start time.Duration) *runtime.Container {
	c := &runtime.Container{ID: name + "-" + string(rune('0'+restart)), Name: name, RestartCount: restart,
		Status: runtime.StatusRunning, StartedAt: T0.Add(start * time.Second)}
	if exit >= 0 {
		c.Status, c.ExitCode, c.FinishedAt = runtime.StatusExited, exit, c.StartedAt.Add(time.Second)
	}
	return c
}

// RunsOf groups runs by container name, in the order given.
func RunsOf(rs ...*runtime.Container) map[string][]*runtime.Container {
	out := map[string][]*runtime.Container{}
	for _, r := range rs {
		out[r.Name] = append(out[r.Name], r)
	}
	return out
}
