// Package status computes a pod's whole status — phase, conditions, QoS
// class, init and app container states, exactly as kubectl reads them —
// from what the runtime reports and what the pod worker knows (image pull
// errors, back-off, probe verdicts). It also holds the rules the workers
// act on: how far the init containers are, which exits are restarted, and
// the exponential back-off of restarts and pulls.
//
// It must never do I/O: every input is passed in, including the time, so
// the rules are testable in a table.
package status

import (
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/skiff-dev/skiff/kubelet/runtime"
	"github.com/skiff-dev/skiff/proto/api"
)

// Waiting reasons, as Kubernetes spells them.
const (
	ReasonContainerCreating    = "ContainerCreating"
	ReasonErrImagePull         = "ErrImagePull"
	ReasonImagePullBackOff     = "ImagePullBackOff"
	ReasonErrImageNeverPull    = "ErrImageNeverPull"
	ReasonCrashLoopBackOff     = "CrashLoopBackOff"
	ReasonCreateContainerError = "CreateContainerError"
	// ReasonCreateContainerConfigError: the pod's volumes cannot be set up
	// (a ConfigMap or Secret that does not exist, a hostPath of the wrong
	// type).
	ReasonCreateContainerConfigError = "CreateContainerConfigError"
	// ReasonPodInitializing: the container waits for the init
	// containers (kubectl shows Init:N/M).
	ReasonPodInitializing = "PodInitializing"
	ReasonCompleted       = "Completed"
	ReasonError           = "Error"
	ReasonPodCompleted    = "PodCompleted"
	// ReasonContainersNotInitialized is the Initialized condition's reason
	// while an init container has not completed.
	ReasonContainersNotInitialized = "ContainersNotInitialized"
)

// Pod phases.
const (
	PhasePending   = "Pending"
	PhaseRunning   = "Running"
	PhaseSucceeded = "Succeeded"
	PhaseFailed    = "Failed"
	PhaseUnknown   = "Unknown"
)

// Waiting is why a container is not running, when the worker knows better
// than the runtime (a failed pull, a back-off).
type Waiting struct {
	Reason, Message string
}

// Container is what is known of one container of the pod spec.
type Container struct {
	Spec *api.Container
	// Current is the latest run and Previous the one before; nil when none.
	Current, Previous *runtime.Container
	// Waiting, when set, overrides the state of a container that is not
	// running.
	Waiting *Waiting
	// Ready is the readiness probe's verdict (true when it has none).
	// Ignored for init containers: one is ready once it completed.
	Ready bool
	// Starting: the current run has a startup probe that has not
	// succeeded (yet). It is neither started nor ready, whatever Ready
	// says.
	Starting bool
}

// Input is everything the status depends on.
type Input struct {
	Pod            *api.Pod
	InitContainers []Container // in spec order
	Containers     []Container // in spec order
	// SandboxCreated is when the pod's current sandbox was made (zero:
	// none yet): an init container's run from before it does not count.
	SandboxCreated time.Time
	HostIP         string
	PodIP          string
	StartTime      time.Time
	Now            time.Time
}

// Compute returns the pod's status. Conditions keep their
// lastTransitionTime from the pod's current status when unchanged, so a
// status computed twice from the same facts is equal.
//
// Until every init container completed, the app containers that never ran
// wait with PodInitializing, Initialized is False and the phase is the app
// containers' (Pending while they wait); an init container that failed
// under restartPolicy Never fails the pod.
func Compute(in Input) *api.PodStatus {
	init := NextInit(in.Pod.GetSpec().GetRestartPolicy(), in.InitContainers, in.SandboxCreated)
	st := &api.PodStatus{HostIp: in.HostIP, PodIp: in.PodIP}
	if in.PodIP != "" {
		st.PodIps = []*api.PodIP{{Ip: in.PodIP}}
	}
	if !in.StartTime.IsZero() {
		st.StartTime = timestamppb.New(in.StartTime)
	}
	allReady := len(in.Containers) > 0
	for _, c := range in.Containers {
		if c.Current == nil && c.Waiting == nil && !init.Done {
			c.Waiting = &Waiting{Reason: ReasonPodInitializing}
		}
		cs := containerStatus(c)
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		allReady = allReady && cs.Ready
	}
	st.InitContainerStatuses = initContainerStatuses(in.InitContainers)
	st.Phase = phase(in.Pod.GetSpec().GetRestartPolicy(), st.ContainerStatuses)
	if init.Failed {
		st.Phase = PhaseFailed
	}
	st.QosClass = qosClass(in.Pod.GetSpec())

	ready := condition("ContainersReady", allReady)
	if st.Phase == PhaseSucceeded || st.Phase == PhaseFailed {
		ready.Reason = ReasonPodCompleted
	} else if !allReady {
		ready.Reason = "ContainersNotReady"
		ready.Message = notReadyMessage(st.ContainerStatuses)
	}
	podReady := proto.Clone(ready).(*api.Condition)
	podReady.Type = "Ready"
	st.Conditions = []*api.Condition{
		condition("PodScheduled", true),
		initialized(in.InitContainers, init),
		ready,
		podReady,
	}
	old := map[string]*api.Condition{}
	for _, c := range in.Pod.GetStatus().GetConditions() {
		old[c.Type] = c
	}
	for _, c := range st.Conditions {
		if o, ok := old[c.Type]; ok && o.Status == c.Status && o.LastTransitionTime != nil {
			c.LastTransitionTime = o.LastTransitionTime
		} else {
			c.LastTransitionTime = timestamppb.New(in.Now)
		}
	}
	return st
}

func condition(typ string, ok bool) *api.Condition {
	s := "False"
	if ok {
		s = "True"
	}
	return &api.Condition{Type: typ, Status: s}
}

func notReadyMessage(css []*api.ContainerStatus) string {
	msg := ""
	for _, cs := range css {
		if !cs.Ready {
			if msg != "" {
				msg += " "
			}
			msg += cs.Name
		}
	}
	return "containers with unready status: [" + msg + "]"
}

func containerStatus(c Container) *api.ContainerStatus {
	cs := &api.ContainerStatus{Name: c.Spec.GetName(), Image: c.Spec.GetImage()}
	started := false
	cur := c.Current
	if cur != nil {
		cs.RestartCount = int32(cur.RestartCount)
		cs.ContainerId = "containerd://" + cur.ID
		cs.ImageId = cur.ImageRef
	}
	switch {
	case cur != nil && cur.Status == runtime.StatusRunning:
		cs.State = &api.ContainerState{Running: &api.ContainerStateRunning{StartedAt: ts(cur.StartedAt)}}
		cs.LastState = terminatedState(c.Previous)
		cs.Ready = c.Ready && !c.Starting
		started = !c.Starting
	case cur != nil && cur.Status == runtime.StatusExited && c.Waiting == nil:
		cs.State = terminatedState(cur)
		cs.LastState = terminatedState(c.Previous)
	case cur != nil && cur.Status == runtime.StatusExited:
		cs.State = waitingState(c.Waiting)
		cs.LastState = terminatedState(cur)
	default:
		w := c.Waiting
		if w == nil {
			w = &Waiting{Reason: ReasonContainerCreating}
		}
		cs.State = waitingState(w)
		cs.LastState = terminatedState(c.Previous)
	}
	if cs.LastState == nil {
		cs.LastState = &api.ContainerState{}
	}
	cs.Started = &started
	return cs
}

func waitingState(w *Waiting) *api.ContainerState {
	return &api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: w.Reason, Message: w.Message}}
}

func terminatedState(c *runtime.Container) *api.ContainerState {
	if c == nil || c.Status != runtime.StatusExited {
		return nil
	}
	reason := ReasonCompleted
	if c.ExitCode != 0 {
		reason = ReasonError
	}
	return &api.ContainerState{Terminated: &api.ContainerStateTerminated{
		ExitCode: int32(c.ExitCode), Reason: reason,
		StartedAt: ts(c.StartedAt), FinishedAt: ts(c.FinishedAt),
		ContainerId: "containerd://" + c.ID,
	}}
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// phase follows the kubelet's getPhase: waiting containers that never ran
// keep the pod Pending; a stopped container that will be restarted keeps
// it Running.
func phase(restartPolicy string, css []*api.ContainerStatus) string {
	var waiting, running, stopped, succeeded int
	for _, cs := range css {
		switch {
		case cs.State.GetRunning() != nil:
			running++
		case cs.State.GetTerminated() != nil:
			stopped++
			if cs.State.GetTerminated().ExitCode == 0 {
				succeeded++
			}
		case cs.State.GetWaiting() != nil:
			if cs.LastState.GetTerminated() != nil {
				stopped++
			} else {
				waiting++
			}
		}
	}
	switch {
	case len(css) == 0 || waiting > 0:
		return PhasePending
	case running > 0:
		return PhaseRunning
	case restartPolicy == "Never":
		if stopped == succeeded {
			return PhaseSucceeded
		}
		return PhaseFailed
	case restartPolicy == "OnFailure":
		if stopped == succeeded {
			return PhaseSucceeded
		}
		return PhaseRunning
	default: // Always: every stopped container will be restarted
		return PhaseRunning
	}
}

// qosClass follows Kubernetes' ComputePodQOS over every container, init
// containers included: BestEffort when none requests or limits cpu or
// memory; Guaranteed when every container limits both and the pod's
// summed requests equal its summed limits; else Burstable. A request left
// out is its limit, as Kubernetes' defaulting makes it. Quantities compare
// by value ("1" equals "1000m"); zero ones count as unset, as in
// Kubernetes. The apiserver validates quantities: one that does not parse
// is ignored.
func qosClass(spec *api.PodSpec) string {
	requests, limits := map[string]resource.Quantity{}, map[string]resource.Quantity{}
	add := func(sum map[string]resource.Quantity, name string, q resource.Quantity) {
		if s, ok := sum[name]; ok {
			q.Add(s)
		}
		sum[name] = q
	}
	guaranteed := true
	for _, c := range slices.Concat(spec.GetContainers(), spec.GetInitContainers()) {
		r := c.GetResources()
		for _, name := range []string{"cpu", "memory"} {
			lim, limOK := positive(r.GetLimits()[name])
			req, reqOK := positive(r.GetRequests()[name])
			if _, set := r.GetRequests()[name]; !set {
				req, reqOK = lim, limOK
			}
			if reqOK {
				add(requests, name, req)
			}
			if limOK {
				add(limits, name, lim)
			} else {
				guaranteed = false
			}
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return "BestEffort"
	}
	if guaranteed && len(requests) == len(limits) {
		for name, req := range requests {
			if lim, ok := limits[name]; !ok || lim.Cmp(req) != 0 {
				guaranteed = false
			}
		}
		if guaranteed {
			return "Guaranteed"
		}
	}
	return "Burstable"
}

// positive parses a quantity, reporting whether it is above zero.
func positive(s string) (resource.Quantity, bool) {
	if s == "" {
		return resource.Quantity{}, false
	}
	q, err := resource.ParseQuantity(s)
	return q, err == nil && q.Sign() > 0
}

// ShouldRestart says whether a container that exited with code is
// restarted under the pod's restartPolicy.
func ShouldRestart(restartPolicy string, exitCode int) bool {
	switch restartPolicy {
	case "Never":
		return false
	case "OnFailure":
		return exitCode != 0
	default:
		return true
	}
}
