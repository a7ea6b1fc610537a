package status

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skiff-dev/skiff/kubelet/runtime"
	"github.com/skiff-dev/skiff/kubelet/status/statustest"
	"github.com/skiff-dev/skiff/proto/api"
)

var t0 = statustest.T0

func pod(policy string, names ...string) *api.Pod {
	p := &api.Pod{Metadata: &api.ObjectMeta{Name: "p", Namespace: "default", Uid: "u"}, Spec: &api.PodSpec{RestartPolicy: policy}}
	for _, n := range names {
		p.Spec.Containers = append(p.Spec.Containers, &api.Container{Name: n, Image: "busybox"})
	}
	return p
}

func running(restarts int) *runtime.Container {
	return &runtime.Container{ID: "c" + string(rune('0'+restarts)), Status: runtime.StatusRunning, RestartCount: restarts, StartedAt: t0}
}

func exited(restarts, code int) *runtime.Container {
	return &runtime.Container{ID: "c" + string(rune('0'+restarts)), Status: runtime.StatusExited, RestartCount: restarts, ExitCode: code, StartedAt: t0, FinishedAt: t0.Add(time.Second)}
}

// kubectlStatus is the STATUS column kubectl prints for a pod.
func kubectlStatus(p *api.Pod, st *api.PodStatus) string {
	reason := st.Phase
	if st.Reason != "" {
		reason = st.Reason
	}
	for i := len(st.ContainerStatuses) - 1; i >= 0; i-- {
		cs := st.ContainerStatuses[i]
		if w := cs.State.GetWaiting(); w != nil && w.Reason != "" {
			reason = w.Reason
		} else if term := cs.State.GetTerminated(); term != nil && term.Reason != "" {
			reason = term.Reason
		}
	}
	if p.Metadata.DeletionTimestamp != nil {
		return "Terminating"
	}
	return reason
}

func TestCompute(t *testing.T) {
	tests := []struct {
		name         string
		pod          *api.Pod
		containers   []Container
		podIP        string
		wantPhase    string
		wantKubectl  string
		wantReady    bool
		wantRestarts int32
		wantLast     string // lastState.terminated.reason of the first container
	}{
		{
			name: "nothing started yet is ContainerCreating", pod: pod("Always", "a"),
			containers: []Container{{}}, wantPhase: PhasePending, wantKubectl: "ContainerCreating",
		},
		{
			name: "running and ready", pod: pod("Always", "a"), podIP: "10.1.0.5",
			containers: []Container{{Current: running(0), Ready: true}}, wantPhase: PhaseRunning, wantKubectl: "Running", wantReady: true,
		},
		{
			name: "running but readiness probe failing", pod: pod("Always", "a"),
			containers: []Container{{Current: running(0)}}, wantPhase: PhaseRunning, wantKubectl: "Running",
		},
		{
			name: "pull failure", pod: pod("Always", "a"),
			containers: []Container{{Waiting: &Waiting{Reason: ReasonErrImagePull, Message: "not found"}}}, wantPhase: PhasePending, wantKubectl: "ErrImagePull",
		},
		{
			name: "pull back-off", pod: pod("Always", "a"),
			containers: []Container{{Waiting: &Waiting{Reason: ReasonImagePullBackOff}}}, wantPhase: PhasePending, wantKubectl: "ImagePullBackOff",
		},
		{
			name: "crash loop shows back-off and last state", pod: pod("Always", "a"),
			containers: []Container{{Current: exited(3, 1), Previous: exited(2, 1), Waiting: &Waiting{Reason: ReasonCrashLoopBackOff}}},
			wantPhase:  PhaseRunning, wantKubectl: "CrashLoopBackOff", wantRestarts: 3, wantLast: ReasonError,
		},
		{
			name: "just exited with an error, not yet in back-off", pod: pod("Always", "a"),
			containers: []Container{{Current: exited(0, 2)}}, wantPhase: PhaseRunning, wantKubectl: "Error",
		},
		{
			name: "restarted container keeps the last state", pod: pod("Always", "a"),
			containers: []Container{{Current: running(1), Previous: exited(0, 1), Ready: true}},
			wantPhase:  PhaseRunning, wantKubectl: "Running", wantReady: true, wantRestarts: 1, wantLast: ReasonError,
		},
		{
			name: "Never and exit 0 is Succeeded/Completed", pod: pod("Never", "a"),
			containers: []Container{{Current: exited(0, 0)}}, wantPhase: PhaseSucceeded, wantKubectl: "Completed",
		},
		{
			name: "Never and exit 1 is Failed/Error", pod: pod("Never", "a"),
			containers: []Container{{Current: exited(0, 1)}}, wantPhase: PhaseFailed, wantKubectl: "Error",
		},
		{
			name: "OnFailure and exit 0 is Succeeded", pod: pod("OnFailure", "a"),
			containers: []Container{{Current: exited(0, 0)}}, wantPhase: PhaseSucceeded, wantKubectl: "Completed",
		},
		{
			name: "one of two containers running is Running, not ready", pod: pod("Always", "a", "b"),
			containers: []Container{{Current: running(0), Ready: true}, {}}, wantPhase: PhasePending, wantKubectl: "ContainerCreating",
		},
		{
			name: "Terminating wins in kubectl", pod: func() *api.Pod { p := pod("Always", "a"); p.Metadata.DeletionTimestamp = timestamppb.New(t0); return p }(),
			containers: []Container{{Current: running(0), Ready: true}}, wantPhase: PhaseRunning, wantKubectl: "Terminating", wantReady: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range tt.containers {
				tt.containers[i].Spec = tt.pod.Spec.Containers[i]
			}
			st := Compute(Input{Pod: tt.pod, Containers: tt.containers, HostIP: "192.168.1.2", PodIP: tt.podIP, StartTime: t0, Now: t0})
			if st.Phase != tt.wantPhase {
				t.Errorf("phase = %s, want %s", st.Phase, tt.wantPhase)
			}
			if got := kubectlStatus(tt.pod, st); got != tt.wantKubectl {
				t.Errorf("kubectl status = %s, want %s", got, tt.wantKubectl)
			}
			cond := map[string]string{}
			for _, c := range st.Conditions {
				cond[c.Type] = c.Status
			}
			wantReady := map[bool]string{true: "True", false: "False"}[tt.wantReady]
			if cond["Ready"] != wantReady || cond["ContainersReady"] != wantReady || cond["PodScheduled"] != "True" || cond["Initialized"] != "True" {
				t.Errorf("conditions = %v, want Ready %s", cond, wantReady)
			}
			cs := st.ContainerStatuses[0]
			if cs.RestartCount != tt.wantRestarts {
				t.Errorf("restartCount = %d, want %d", cs.RestartCount, tt.wantRestarts)
			}
			if got := cs.LastState.GetTerminated().GetReason(); got != tt.wantLast {
				t.Errorf("lastState reason = %q, want %q", got, tt.wantLast)
			}
			if st.HostIp != "192.168.1.2" || st.PodIp != tt.podIP || (tt.podIP != "" && st.PodIps[0].Ip != tt.podIP) {
				t.Errorf("IPs: host %s pod %s %v", st.HostIp, st.PodIp, st.PodIps)
			}
			if !st.StartTime.AsTime().Equal(t0) {
				t.Errorf("startTime = %v", st.StartTime.AsTime())
			}
		})
	}
}

func TestComputeIsStableAcrossCalls(t *testing.T) {
	p := pod("Always", "a")
	in := Input{Pod: p, Containers: []Container{{Spec: p.Spec.Containers[0], Current: running(0), Ready: true}}, PodIP: "10.0.0.2", StartTime: t0, Now: t0}
	first := Compute(in)
	p.Status = first
	in.Now = t0.Add(time.Minute)
	if second := Compute(in); !proto.Equal(first, second) {
		t.Errorf("same facts a minute later give a different status:\n%v\n%v", first, second)
	}
	in.Containers[0].Ready = false
	third := Compute(in)
	for _, c := range third.Conditions {
		if c.Type == "Ready" && !c.LastTransitionTime.AsTime().Equal(in.Now) {
			t.Errorf("Ready flipped but lastTransitionTime = %v", c.LastTransitionTime.AsTime())
		}
	}
}

func TestQOSClass(t *testing.T) {
	type rl = map[string]string
	ctr := func(limits, requests rl) *api.Container {
		return &api.Container{Resources: &api.ResourceRequirements{Limits: limits, Requests: requests}}
	}
	both := rl{"cpu": "1", "memory": "1Gi"}
	tests := []struct {
		name  string
		app   []*api.Container
		inits []*api.Container
		want  string
	}{
		{name: "nothing requested or limited", app: []*api.Container{ctr(nil, nil)}, want: "BestEffort"},
		{name: "limits only: requests default to them", app: []*api.Container{ctr(both, nil)}, want: "Guaranteed"},
		{name: "requests equal to limits", app: []*api.Container{ctr(both, both)}, want: "Guaranteed"},
		{name: "equal quantities spelt differently", app: []*api.Container{ctr(both, rl{"cpu": "1000m", "memory": "1024Mi"})}, want: "Guaranteed"},
		{name: "a request below its limit", app: []*api.Container{ctr(both, rl{"cpu": "500m"})}, want: "Burstable"},
		{name: "requests only", app: []*api.Container{ctr(nil, rl{"cpu": "1"})}, want: "Burstable"},
		{name: "cpu limited, memory not", app: []*api.Container{ctr(rl{"cpu": "1"}, nil)}, want: "Burstable"},
		{name: "zero quantities count as unset", app: []*api.Container{ctr(rl{"cpu": "0", "memory": "0"}, rl{"cpu": "0"})}, want: "BestEffort"},
		{name: "other resources do not count", app: []*api.Container{ctr(rl{"ephemeral-storage": "1Gi"}, nil)}, want: "BestEffort"},
		{name: "one of two app containers unlimited", app: []*api.Container{ctr(both, nil), ctr(nil, nil)}, want: "Burstable"},
		{name: "every app and init container guaranteed", app: []*api.Container{ctr(both, nil)}, inits: []*api.Container{ctr(rl{"cpu": "2", "memory": "2Gi"}, nil)}, want: "Guaranteed"},
		{name: "an unlimited init container makes a guaranteed app Burstable", app: []*api.Container{ctr(both, both)}, inits: []*api.Container{ctr(nil, nil)}, want: "Burstable"},
		{name: "an init container's request below its limit", app: []*api.Container{ctr(both, nil)}, inits: []*api.Container{ctr(both, rl{"memory": "512Mi"})}, want: "Burstable"},
		{name: "only an init container requests: Burstable, not BestEffort", app: []*api.Container{ctr(nil, nil)}, inits: []*api.Container{ctr(nil, rl{"memory": "64Mi"})}, want: "Burstable"},
		{name: "only an init container limits", app: []*api.Container{ctr(nil, nil)}, inits: []*api.Container{ctr(both, nil)}, want: "Burstable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := &api.PodSpec{Containers: tt.app, InitContainers: tt.inits}
			if got := qosClass(spec); got != tt.want {
				t.Errorf("qosClass = %s, want %s", got, tt.want)
			}
			p := &api.Pod{Spec: spec}
			if got := Compute(Input{Pod: p, Now: t0}).GetQosClass(); got != tt.want {
				t.Errorf("Compute's qosClass = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestShouldRestart(t *testing.T) {
	tests := []struct {
		policy string
		code   int
		want   bool
	}{
		{"Always", 0, true}, {"Always", 1, true}, {"", 0, true},
		{"OnFailure", 0, false}, {"OnFailure", 137, true},
		{"Never", 0, false}, {"Never", 1, false},
	}
	for _, tt := range tests {
		if got := ShouldRestart(tt.policy, tt.code); got != tt.want {
			t.Errorf("ShouldRestart(%s, %d) = %v", tt.policy, tt.code, got)
		}
	}
}

func TestBackoffDoublesToMax(t *testing.T) {
	b := DefaultBackoff()
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second}
	for i, w := range want {
		if got := b.Delay(i + 1); got != w {
			t.Errorf("Delay(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := b.RestartDelay(0, time.Second); got != 10*time.Second {
		t.Errorf("first restart delay = %v, want 10s", got)
	}
	if got := b.RestartDelay(4, time.Second); got != 160*time.Second {
		t.Errorf("fifth restart delay = %v, want 160s", got)
	}
	if got := b.RestartDelay(9, 11*time.Minute); got != 10*time.Second {
		t.Errorf("delay after a long healthy run = %v, want it reset to 10s", got)
	}
}

func TestStartupProbeHoldsStartedAndReady(t *testing.T) {
	tests := []struct {
		name                     string
		c                        Container
		wantStarted, wantReady   bool
		wantPhase, wantCondition string // wantCondition: ContainersReady's status
	}{
		{name: "running, started and ready", c: Container{Current: running(0), Ready: true},
			wantStarted: true, wantReady: true, wantPhase: PhaseRunning, wantCondition: "True"},
		{name: "running, started, readiness failing", c: Container{Current: running(0)},
			wantStarted: true, wantPhase: PhaseRunning, wantCondition: "False"},
		{name: "running, startup probe not yet succeeded: neither started nor ready", c: Container{Current: running(0), Ready: true, Starting: true},
			wantPhase: PhaseRunning, wantCondition: "False"},
		{name: "exited before its startup probe succeeded", c: Container{Current: exited(0, 1), Ready: true, Starting: true},
			wantPhase: PhaseRunning, wantCondition: "False"},
		{name: "not created yet", c: Container{Ready: true}, wantPhase: PhasePending, wantCondition: "False"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pod("Always", "a")
			tt.c.Spec = p.Spec.Containers[0]
			st := Compute(Input{Pod: p, Containers: []Container{tt.c}, Now: t0})
			cs := st.GetContainerStatuses()[0]
			if cs.GetStarted() != tt.wantStarted || cs.GetReady() != tt.wantReady {
				t.Errorf("started %v ready %v, want %v %v", cs.GetStarted(), cs.GetReady(), tt.wantStarted, tt.wantReady)
			}
			if st.GetPhase() != tt.wantPhase {
				t.Errorf("phase = %s, want %s", st.GetPhase(), tt.wantPhase)
			}
			for _, c := range st.GetConditions() {
				if c.GetType() == "ContainersReady" && c.GetStatus() != tt.wantCondition {
					t.Errorf("ContainersReady = %s, want %s", c.GetStatus(), tt.wantCondition)
				}
			}
		})
	}
}
