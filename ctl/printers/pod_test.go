package printers

import (
	"testing"

	"github.com/skiff-dev/skiff/proto/api"
)

// TestPodStatusWhileInitialising: the STATUS cell of pods with init
// containers, as the kubelet reports them and kubectl prints them.
func TestPodStatusWhileInitialising(t *testing.T) {
	waiting := func(reason string) *api.ContainerState {
		return &api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: reason}}
	}
	exited := func(code int32, reason string) *api.ContainerState {
		return &api.ContainerState{Terminated: &api.ContainerStateTerminated{ExitCode: code, Reason: reason}}
	}
	runningState := &api.ContainerState{Running: &api.ContainerStateRunning{}}
	initialized := func(ok bool) []*api.Condition {
		s := "False"
		if ok {
			s = "True"
		}
		return []*api.Condition{{Type: "Initialized", Status: s}}
	}
	tests := []struct {
		name       string
		phase      string
		conditions []*api.Condition
		inits      []*api.ContainerState
		app        *api.ContainerState
		want       string
	}{
		{"none started", "Pending", initialized(false), []*api.ContainerState{waiting("PodInitializing"), waiting("PodInitializing")}, waiting("PodInitializing"), "Init:0/2"},
		{"the first running", "Pending", initialized(false), []*api.ContainerState{runningState, waiting("PodInitializing")}, waiting("PodInitializing"), "Init:0/2"},
		{"the second running", "Pending", initialized(false), []*api.ContainerState{exited(0, "Completed"), runningState}, waiting("PodInitializing"), "Init:1/2"},
		{"the first in back-off", "Pending", initialized(false), []*api.ContainerState{waiting("CrashLoopBackOff"), waiting("PodInitializing")}, waiting("PodInitializing"), "Init:CrashLoopBackOff"},
		{"the first failed under Never", "Failed", initialized(false), []*api.ContainerState{exited(3, "Error"), waiting("PodInitializing")}, waiting("PodInitializing"), "Init:Error"},
		{"the first cannot pull its image", "Pending", initialized(false), []*api.ContainerState{waiting("ErrImagePull"), waiting("PodInitializing")}, waiting("PodInitializing"), "Init:ErrImagePull"},
		{"initialised, the app container being created", "Pending", initialized(true), []*api.ContainerState{exited(0, "Completed"), exited(0, "Completed")}, waiting("ContainerCreating"), "ContainerCreating"},
		{"initialised and running", "Running", initialized(true), []*api.ContainerState{exited(0, "Completed"), exited(0, "Completed")}, runningState, "Running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &api.Pod{
				Metadata: &api.ObjectMeta{Name: "p"},
				Spec:     &api.PodSpec{InitContainers: []*api.Container{{Name: "i1"}, {Name: "i2"}}, Containers: []*api.Container{{Name: "app"}}},
				Status: &api.PodStatus{Phase: tt.phase, Conditions: tt.conditions,
					ContainerStatuses: []*api.ContainerStatus{{Name: "app", State: tt.app}}},
			}
			for i, st := range tt.inits {
				pod.Status.InitContainerStatuses = append(pod.Status.InitContainerStatuses, &api.ContainerStatus{Name: pod.Spec.InitContainers[i].Name, State: st})
			}
			if got := PodStatus(pod); got != tt.want {
				t.Errorf("PodStatus = %s, want %s", got, tt.want)
			}
		})
	}
}
