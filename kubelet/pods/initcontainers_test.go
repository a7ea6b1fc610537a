package pods

import (
	"testing"
	"time"

	"github.com/skiff-dev/skiff/ctl/printers"
	"github.com/skiff-dev/skiff/kubelet/probe"
	"github.com/skiff-dev/skiff/kubelet/runtime"
	"github.com/skiff-dev/skiff/kubelet/status"
	"github.com/skiff-dev/skiff/kubelet/status/statustest"
	"github.com/skiff-dev/skiff/proto/api"
)

// statusWorker is a worker with no runtime: enough to compute statuses.
func statusWorker() *worker {
	return &worker{m: &Manager{cfg: Config{NodeIP: "192.168.1.2"}}, verdicts: map[string]bool{}, startTime: statustest.T0}
}

// TestStatusGathersInitContainers checks what the worker hands to
// status.Compute (status tests the rules): the init containers' latest
// runs, the worker's waiting states, and the sandbox whose runs count.
func TestStatusGathersInitContainers(t *testing.T) {
	backoff := &status.Waiting{Reason: status.ReasonCrashLoopBackOff, Message: "back-off 10s restarting failed container=i1"}
	tests := []struct {
		name        string
		policy      string
		runs        map[string][]*runtime.Container
		waiting     map[string]*status.Waiting
		sandboxAt   time.Duration // seconds after statustest.T0
		wantPhase   string
		wantKubectl string
		wantInit    []int32 // the init containers' restart counts
	}{
		{name: "nothing ran", policy: "Always", wantPhase: "Pending", wantKubectl: "Init:0/2", wantInit: []int32{0, 0}},
		{name: "the latest run of a restarted init container counts", policy: "OnFailure",
			runs:      statustest.RunsOf(statustest.Run("i1", 0, 1, 1), statustest.Run("i1", 1, 0, 3), statustest.Run("i2", 0, -1, 5)),
			wantPhase: "Pending", wantKubectl: "Init:1/2", wantInit: []int32{1, 0}},
		{name: "the worker's back-off shows", policy: "OnFailure", runs: statustest.RunsOf(statustest.Run("i1", 0, 1, 1)),
			waiting: map[string]*status.Waiting{"i1": backoff}, wantPhase: "Pending", wantKubectl: "Init:CrashLoopBackOff", wantInit: []int32{0, 0}},
		{name: "a failure under Never fails the pod", policy: "Never", runs: statustest.RunsOf(statustest.Run("i1", 0, 2, 1)),
			wantPhase: "Failed", wantKubectl: "Init:Error", wantInit: []int32{0, 0}},
		{name: "runs before the sandbox do not count", policy: "Never", runs: statustest.RunsOf(statustest.Run("i1", 0, 2, 1)), sandboxAt: 10,
			wantPhase: "Pending", wantKubectl: "Init:Error", wantInit: []int32{0, 0}},
		{name: "initialised and running", policy: "Always", runs: statustest.RunsOf(statustest.Run("i1", 0, 0, 1), statustest.Run("i2", 0, 0, 3), statustest.Run("app", 0, -1, 5)),
			wantPhase: "Running", wantKubectl: "Running", wantInit: []int32{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := statustest.InitPod(tt.policy)
			w := statusWorker()
			st := w.computeWith(pod, tt.runs, tt.waiting, &runtime.Sandbox{IP: "10.1.0.5", CreatedAt: statustest.T0.Add(tt.sandboxAt * time.Second)}, statustest.T0)
			pod.Status = st
			if st.GetPhase() != tt.wantPhase {
				t.Errorf("phase = %s, want %s", st.GetPhase(), tt.wantPhase)
			}
			if got := printers.PodStatus(pod); got != tt.wantKubectl {
				t.Errorf("kubectl STATUS = %s, want %s", got, tt.wantKubectl)
			}
			if st.GetPodIp() != "10.1.0.5" || st.GetHostIp() != "192.168.1.2" {
				t.Errorf("podIP %s hostIP %s, want the sandbox's and the node's", st.GetPodIp(), st.GetHostIp())
			}
			ics := st.GetInitContainerStatuses()
			if len(ics) != len(tt.wantInit) {
				t.Fatalf("init container statuses %v, want %d", ics, len(tt.wantInit))
			}
			for i, cs := range ics {
				if cs.GetRestartCount() != tt.wantInit[i] {
					t.Errorf("%s restartCount = %d, want %d", cs.GetName(), cs.GetRestartCount(), tt.wantInit[i])
				}
			}
		})
	}
}

func TestStartupProbeGatesStartedAndReady(t *testing.T) {
	pod := &api.Pod{Metadata: &api.ObjectMeta{Name: "p", Namespace: "default"}, Spec: &api.PodSpec{Containers: []*api.Container{{
		Name: "app", StartupProbe: &api.Probe{Exec: &api.ExecAction{Command: []string{"true"}}},
	}}}}
	r := statustest.Run("app", 0, -1, 1)
	runs := statustest.RunsOf(r)
	sb := &runtime.Sandbox{IP: "10.1.0.5", CreatedAt: statustest.T0}
	tests := []struct {
		name        string
		verdict     *bool
		podStatus   *api.PodStatus // the pod's status in the apiserver
		wantStarted bool
	}{
		{name: "no verdict yet: neither started nor ready"},
		{name: "startup probe failed: neither", verdict: new(false)},
		{name: "startup probe succeeded: started and ready", verdict: new(true), wantStarted: true},
		{name: "adopted from the status a previous kubelet wrote", wantStarted: true,
			podStatus: &api.PodStatus{ContainerStatuses: []*api.ContainerStatus{{Name: "app", ContainerId: "containerd://" + r.ID, Started: new(true)}}}},
		{name: "a status about another run is not adopted",
			podStatus: &api.PodStatus{ContainerStatuses: []*api.ContainerStatus{{Name: "app", ContainerId: "containerd://earlier", Started: new(true)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := statusWorker()
			p := &api.Pod{Metadata: pod.Metadata, Spec: pod.Spec, Status: tt.podStatus}
			if tt.verdict != nil {
				w.verdicts[probeKey(r.ID, probe.Startup)] = *tt.verdict
			}
			w.adoptStarted(p, p.Spec.Containers[0], r.ID)
			cs := w.computeWith(p, runs, nil, sb, statustest.T0).GetContainerStatuses()[0]
			if cs.GetStarted() != tt.wantStarted || cs.GetReady() != tt.wantStarted {
				t.Errorf("started %v ready %v, want both %v", cs.GetStarted(), cs.GetReady(), tt.wantStarted)
			}
			if cs.GetState().GetRunning() == nil {
				t.Errorf("state %v, want running whatever the probe says", cs.GetState())
			}
		})
	}
}
