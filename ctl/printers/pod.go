package printers

import (
	"fmt"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/skiff-dev/skiff/proto/api"
)

// nodeUnreachablePodReason is the reason the node lifecycle controller
// gives pods on a node that stopped reporting.
const nodeUnreachablePodReason = "NodeLost"

// PodStatus is kubectl's STATUS cell for a pod, computed exactly as
// kubectl's printPod does: the pod's reason, then init container progress,
// then the last non-running container's waiting or terminated reason,
// "Terminating" once deletion started.
func PodStatus(pod *api.Pod) string {
	reason, _, _, _ := podSummary(pod)
	return reason
}

// podSummary returns STATUS, ready and total containers, and restarts.
func podSummary(pod *api.Pod) (reason string, ready, total int, restarts restartInfo) {
	st := pod.GetStatus()
	total = len(pod.GetSpec().GetContainers())
	reason = st.GetPhase()
	if st.GetReason() != "" {
		reason = st.GetReason()
	}
	for _, c := range st.GetConditions() {
		if c.GetType() == "PodScheduled" && c.GetReason() == "SchedulingGated" {
			reason = "SchedulingGated"
		}
	}

	initializing := false
	for i, c := range st.GetInitContainerStatuses() {
		restarts.count += int(c.GetRestartCount())
		restarts.observe(c)
		state := c.GetState()
		switch {
		case state.GetTerminated() != nil && state.GetTerminated().GetExitCode() == 0:
			continue
		case state.GetTerminated() != nil:
			t := state.GetTerminated()
			switch {
			case t.GetReason() != "":
				reason = "Init:" + t.GetReason()
			case t.GetSignal() != 0:
				reason = fmt.Sprintf("Init:Signal:%d", t.GetSignal())
			default:
				reason = fmt.Sprintf("Init:ExitCode:%d", t.GetExitCode())
			}
			initializing = true
		case state.GetWaiting() != nil && state.GetWaiting().GetReason() != "" && state.GetWaiting().GetReason() != "PodInitializing":
			reason = "Init:" + state.GetWaiting().GetReason()
			initializing = true
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(pod.GetSpec().GetInitContainers()))
			initializing = true
		}
		break
	}

	if !initializing || conditionTrue(st.GetConditions(), "Initialized") {
		restarts = restartInfo{}
		hasRunning := false
		statuses := st.GetContainerStatuses()
		for i := len(statuses) - 1; i >= 0; i-- {
			c := statuses[i]
			restarts.count += int(c.GetRestartCount())
			restarts.observe(c)
			state := c.GetState()
			switch {
			case state.GetWaiting() != nil && state.GetWaiting().GetReason() != "":
				reason = state.GetWaiting().GetReason()
			case state.GetTerminated() != nil && state.GetTerminated().GetReason() != "":
				reason = state.GetTerminated().GetReason()
			case state.GetTerminated() != nil:
				if s := state.GetTerminated().GetSignal(); s != 0 {
					reason = fmt.Sprintf("Signal:%d", s)
				} else {
					reason = fmt.Sprintf("ExitCode:%d", state.GetTerminated().GetExitCode())
				}
			case c.GetReady() && state.GetRunning() != nil:
				hasRunning = true
				ready++
			}
		}
		if reason == "Completed" && hasRunning {
			if conditionTrue(st.GetConditions(), "Ready") {
				reason = "Running"
			} else {
				reason = "NotReady"
			}
		}
	}

	deleting := pod.GetMetadata().GetDeletionTimestamp() != nil
	switch {
	case deleting && st.GetReason() == nodeUnreachablePodReason:
		reason = "Unknown"
	case deleting && st.GetPhase() != "Succeeded" && st.GetPhase() != "Failed":
		reason = "Terminating"
	}
	return reason, ready, total, restarts
}

// restartInfo counts restarts and remembers when the last one happened.
type restartInfo struct {
	count int
	last  time.Time
}

func (r *restartInfo) observe(c *api.ContainerStatus) {
	if t := c.GetLastState().GetTerminated(); t != nil && t.GetFinishedAt() != nil {
		if f := t.GetFinishedAt().AsTime(); f.After(r.last) {
			r.last = f
		}
	}
}

// format is kubectl's RESTARTS cell: "3 (5m ago)".
func (r restartInfo) format(now time.Time) string {
	s := strconv.Itoa(r.count)
	if r.count != 0 && !r.last.IsZero() {
		s = fmt.Sprintf("%d (%s ago)", r.count, duration.HumanDuration(now.Sub(r.last)))
	}
	return s
}

func conditionTrue(conds []*api.Condition, typ string) bool {
	for _, c := range conds {
		if c.GetType() == typ {
			return c.GetStatus() == "True"
		}
	}
	return false
}

func podRow(pod *api.Pod, now time.Time) []string {
	reason, ready, total, restarts := podSummary(pod)
	st := pod.GetStatus()
	ip := st.GetPodIp()
	if ips := st.GetPodIps(); len(ips) > 0 {
		ip = ips[0].GetIp()
	}
	orNone := func(s string) string {
		if s == "" {
			return "<none>"
		}
		return s
	}
	gates := "<none>"
	if rg := pod.GetSpec().GetReadinessGates(); len(rg) > 0 {
		n := 0
		for _, g := range rg {
			if conditionTrue(st.GetConditions(), g.GetConditionType()) {
				n++
			}
		}
		gates = fmt.Sprintf("%d/%d", n, len(rg))
	}
	return []string{pod.GetMetadata().GetName(), fmt.Sprintf("%d/%d", ready, total), reason,
		restarts.format(now), Age(pod.GetMetadata().GetCreationTimestamp(), now),
		orNone(ip), orNone(pod.GetSpec().GetNodeName()), orNone(st.GetNominatedNodeName()), gates}
}
