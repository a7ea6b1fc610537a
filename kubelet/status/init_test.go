package status

import (
	"testing"
	"time"

	"github.com/skiff-dev/skiff/ctl/printers"
	"github.com/skiff-dev/skiff/kubelet/runtime"
	"github.com/skiff-dev/skiff/kubelet/status/statustest"
	"github.com/skiff-dev/skiff/proto/api"
)

// containersOf pairs specs with their latest two runs, as the pod worker
// does.
func containersOf(specs []*api.Container, runs map[string][]*runtime.Container, waiting map[string]*Waiting) []Container {
	var out []Container
	for _, c := range specs {
		sc := Container{Spec: c, Waiting: waiting[c.GetName()], Ready: true}
		if rs := runs[c.GetName()]; len(rs) > 0 {
			sc.Current = rs[len(rs)-1]
			if len(rs) > 1 {
				sc.Previous = rs[len(rs)-2]
			}
		}
		out = append(out, sc)
	}
	return out
}

// initInput is the status input of pod with runs in a sandbox made at t0.
func initInput(pod *api.Pod, runs map[string][]*runtime.Container, waiting map[string]*Waiting, now time.Time) Input {
	return Input{Pod: pod, InitContainers: containersOf(pod.Spec.InitContainers, runs, waiting),
		Containers: containersOf(pod.Spec.Containers, runs, waiting), SandboxCreated: t0, PodIP: "10.1.0.5", StartTime: t0, Now: now}
}

func TestNextInitContainer(t *testing.T) {
	tests := []struct {
		name      string
		policy    string
		runs      map[string][]*runtime.Container
		sandboxAt time.Duration // seconds after t0
		want      InitProgress
	}{
		{name: "nothing ran: the first is next", policy: "Always", want: InitProgress{Next: 0}},
		{name: "the first running is waited for", policy: "Always", runs: statustest.RunsOf(statustest.Run("i1", 0, -1, 1)), want: InitProgress{Next: 0}},
		{name: "a create that never started is next", policy: "Always",
			runs: map[string][]*runtime.Container{"i1": {{Name: "i1", Status: runtime.StatusCreated}}}, want: InitProgress{Next: 0}},
		{name: "the first completed: the second is next", policy: "Always", runs: statustest.RunsOf(statustest.Run("i1", 0, 0, 1)), want: InitProgress{Next: 1}},
		{name: "both completed: done", policy: "Always", runs: statustest.RunsOf(statustest.Run("i1", 0, 0, 1), statustest.Run("i2", 0, 0, 3)), want: InitProgress{Next: 2, Done: true}},
		{name: "done although an app container restarted", policy: "Always",
			runs: statustest.RunsOf(statustest.Run("i1", 0, 0, 1), statustest.Run("i2", 0, 0, 3), statustest.Run("app", 0, 1, 5), statustest.Run("app", 1, -1, 7)), want: InitProgress{Next: 2, Done: true}},
		{name: "a failure under OnFailure is restarted", policy: "OnFailure", runs: statustest.RunsOf(statustest.Run("i1", 0, 1, 1)), want: InitProgress{Next: 0}},
		{name: "a failure under Always is restarted", policy: "Always", runs: statustest.RunsOf(statustest.Run("i1", 0, 1, 1)), want: InitProgress{Next: 0}},
		{name: "a failure under Never fails the pod", policy: "Never", runs: statustest.RunsOf(statustest.Run("i1", 0, 0, 1), statustest.Run("i2", 0, 2, 3)), want: InitProgress{Next: 1, Failed: true}},
		{name: "the latest run counts: failed twice, then completed", policy: "OnFailure",
			runs: statustest.RunsOf(statustest.Run("i1", 0, 1, 1), statustest.Run("i1", 1, 1, 3), statustest.Run("i1", 2, 0, 5)), want: InitProgress{Next: 1}},
		{name: "completed for an earlier sandbox: runs again", policy: "Always", sandboxAt: 10,
			runs: statustest.RunsOf(statustest.Run("i1", 0, 0, 1), statustest.Run("i2", 0, 0, 3)), want: InitProgress{Next: 0, Rerun: true}},
		{name: "completed again for the new sandbox: the next runs again", policy: "Always", sandboxAt: 10,
			runs: statustest.RunsOf(statustest.Run("i1", 0, 0, 1), statustest.Run("i1", 1, 0, 11), statustest.Run("i2", 0, 0, 3)), want: InitProgress{Next: 1, Rerun: true}},
		{name: "an earlier sandbox's failure under Never does not fail the new one", policy: "Never", sandboxAt: 10,
			runs: statustest.RunsOf(statustest.Run("i1", 0, 1, 1)), want: InitProgress{Next: 0, Rerun: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := statustest.InitPod(tt.policy)
			got := NextInit(tt.policy, containersOf(pod.Spec.InitContainers, tt.runs, nil), t0.Add(tt.sandboxAt*time.Second))
			if got != tt.want {
				t.Errorf("NextInit = %+v, want %+v", got, tt.want)
			}
		})
	}
	if !NextInit("Always", nil, t0).Done {
		t.Error("a pod without init containers is not initialised")
	}
}

func TestStatusWithInitContainers(t *testing.T) {
	backoff := &Waiting{Reason: ReasonCrashLoopBackOff, Message: "back-off 10s restarting failed container=i1"}
	tests := []struct {
		name        string
		policy      string
		runs        map[string][]*runtime.Container
		waiting     map[string]*Waiting
		wantPhase   string
		wantKubectl string
		// wantInit is the Initialized condition's status and message.
		wantInit, wantInitMsg string
		wantReadyReason       string
		// wantInitStates are the init containers' states: waiting reason,
		// "running", or "exit N"; wantApp the app container's.
		wantInitStates []string
		wantInitReady  []bool
		wantApp        string
	}{
		{
			name: "nothing ran", policy: "Always",
			wantPhase: "Pending", wantKubectl: "Init:0/2", wantInit: "False", wantInitMsg: "containers with incomplete status: [i1 i2]",
			wantReadyReason: "ContainersNotReady", wantInitStates: []string{"PodInitializing", "PodInitializing"}, wantInitReady: []bool{false, false}, wantApp: "PodInitializing",
		},
		{
			name: "the first init container running", policy: "Always", runs: statustest.RunsOf(statustest.Run("i1", 0, -1, 1)),
			wantPhase: "Pending", wantKubectl: "Init:0/2", wantInit: "False", wantInitMsg: "containers with incomplete status: [i1 i2]",
			wantReadyReason: "ContainersNotReady", wantInitStates: []string{"running", "PodInitializing"}, wantInitReady: []bool{false, false}, wantApp: "PodInitializing",
		},
		{
			name: "the first completed, the second running", policy: "Always", runs: statustest.RunsOf(statustest.Run("i1", 0, 0, 1), statustest.Run("i2", 0, -1, 3)),
			wantPhase: "Pending", wantKubectl: "Init:1/2", wantInit: "False", wantInitMsg: "containers with incomplete status: [i2]",
			wantReadyReason: "ContainersNotReady", wantInitStates: []string{"exit 0", "running"}, wantInitReady: []bool{true, false}, wantApp: "PodInitializing",
		},
		{
			name: "a failing init container in back-off", policy: "OnFailure", runs: statustest.RunsOf(statustest.Run("i1", 0, 1, 1), statustest.Run("i1", 1, 1, 3)),
			waiting:   map[string]*Waiting{"i1": backoff},
			wantPhase: "Pending", wantKubectl: "Init:CrashLoopBackOff", wantInit: "False", wantInitMsg: "containers with incomplete status: [i1 i2]",
			wantReadyReason: "ContainersNotReady", wantInitStates: []string{"CrashLoopBackOff", "PodInitializing"}, wantInitReady: []bool{false, false}, wantApp: "PodInitializing",
		},
		{
			name: "a failed init container under Never fails the pod", policy: "Never", runs: statustest.RunsOf(statustest.Run("i1", 0, 0, 1), statustest.Run("i2", 0, 3, 3)),
			wantPhase: "Failed", wantKubectl: "Init:Error", wantInit: "False", wantInitMsg: "containers with incomplete status: [i2]",
			wantReadyReason: "PodCompleted", wantInitStates: []string{"exit 0", "exit 3"}, wantInitReady: []bool{true, false}, wantApp: "PodInitializing",
		},
		{
			name: "initialised, the app container being created", policy: "Always", runs: statustest.RunsOf(statustest.Run("i1", 0, 0, 1), statustest.Run("i2", 0, 0, 3)),
			wantPhase: "Pending", wantKubectl: "ContainerCreating", wantInit: "True",
			wantReadyReason: "ContainersNotReady", wantInitStates: []string{"exit 0", "exit 0"}, wantInitReady: []bool{true, true}, wantApp: "ContainerCreating",
		},
		{
			name: "initialised and running", policy: "Always", runs: statustest.RunsOf(statustest.Run("i1", 0, 0, 1), statustest.Run("i2", 0, 0, 3), statustest.Run("app", 0, -1, 5)),
			wantPhase: "Running", wantKubectl: "Running", wantInit: "True",
			wantInitStates: []string{"exit 0", "exit 0"}, wantInitReady: []bool{true, true}, wantApp: "running",
		},
		{
			name: "an init container that failed before completing keeps its restarts", policy: "OnFailure",
			runs:      statustest.RunsOf(statustest.Run("i1", 0, 1, 1), statustest.Run("i1", 1, 1, 2), statustest.Run("i1", 2, 0, 3), statustest.Run("i2", 0, 0, 4), statustest.Run("app", 0, -1, 5)),
			wantPhase: "Running", wantKubectl: "Running", wantInit: "True",
			wantInitStates: []string{"exit 0", "exit 0"}, wantInitReady: []bool{true, true}, wantApp: "running",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := statustest.InitPod(tt.policy)
			st := Compute(initInput(pod, tt.runs, tt.waiting, t0))
			pod.Status = st
			if st.GetPhase() != tt.wantPhase {
				t.Errorf("phase = %s, want %s", st.GetPhase(), tt.wantPhase)
			}
			if got := printers.PodStatus(pod); got != tt.wantKubectl {
				t.Errorf("kubectl STATUS = %s, want %s", got, tt.wantKubectl)
			}
			conds := map[string]*api.Condition{}
			for _, c := range st.GetConditions() {
				conds[c.GetType()] = c
			}
			if c := conds["Initialized"]; c.GetStatus() != tt.wantInit || c.GetMessage() != tt.wantInitMsg {
				t.Errorf("Initialized = %s %q, want %s %q", c.GetStatus(), c.GetMessage(), tt.wantInit, tt.wantInitMsg)
			}
			if tt.wantInit == "False" && conds["Initialized"].GetReason() != ReasonContainersNotInitialized {
				t.Errorf("Initialized reason = %q", conds["Initialized"].GetReason())
			}
			if r := conds["Ready"].GetReason(); r != tt.wantReadyReason {
				t.Errorf("Ready reason = %q, want %q", r, tt.wantReadyReason)
			}
			ics := st.GetInitContainerStatuses()
			if len(ics) != 2 || ics[0].GetName() != "i1" || ics[1].GetName() != "i2" {
				t.Fatalf("init container statuses %v, want i1 and i2 in order", ics)
			}
			for i, cs := range ics {
				if got := stateOf(cs); got != tt.wantInitStates[i] {
					t.Errorf("%s state = %s, want %s", cs.GetName(), got, tt.wantInitStates[i])
				}
				if cs.GetReady() != tt.wantInitReady[i] {
					t.Errorf("%s ready = %v, want %v", cs.GetName(), cs.GetReady(), tt.wantInitReady[i])
				}
				if rs := tt.runs[cs.GetName()]; len(rs) > 0 {
					cur := rs[len(rs)-1]
					if cs.GetRestartCount() != int32(cur.RestartCount) || cs.GetContainerId() != "containerd://"+cur.ID {
						t.Errorf("%s restartCount %d id %s, want the latest run %d %s", cs.GetName(), cs.GetRestartCount(), cs.GetContainerId(), cur.RestartCount, cur.ID)
					}
				}
			}
			if got := stateOf(st.GetContainerStatuses()[0]); got != tt.wantApp {
				t.Errorf("app state = %s, want %s", got, tt.wantApp)
			}
		})
	}
}

func stateOf(cs *api.ContainerStatus) string {
	s := cs.GetState()
	switch {
	case s.GetRunning() != nil:
		return "running"
	case s.GetTerminated() != nil:
		return "exit " + string(rune('0'+s.GetTerminated().GetExitCode()))
	default:
		return s.GetWaiting().GetReason()
	}
}

func TestInitializedKeepsItsTransitionTime(t *testing.T) {
	pod := statustest.InitPod("Always")
	pod.Status = Compute(initInput(pod, nil, nil, t0))
	later := Compute(initInput(pod, statustest.RunsOf(statustest.Run("i1", 0, -1, 1)), nil, t0.Add(time.Minute)))
	if got := initializedAt(later); !got.Equal(t0) {
		t.Errorf("Initialized still False a minute later has lastTransitionTime %v, want %v", got, t0)
	}
	pod.Status = later
	done := Compute(initInput(pod, statustest.RunsOf(statustest.Run("i1", 0, 0, 1), statustest.Run("i2", 0, 0, 3)), nil, t0.Add(2*time.Minute)))
	if got := initializedAt(done); !got.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("Initialized turned True with lastTransitionTime %v, want %v", got, t0.Add(2*time.Minute))
	}
}

func initializedAt(st *api.PodStatus) time.Time {
	for _, c := range st.GetConditions() {
		if c.GetType() == "Initialized" {
			return c.GetLastTransitionTime().AsTime()
		}
	}
	return time.Time{}
}
