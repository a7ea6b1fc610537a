package controllerutil

import (
	"time"

	"github.com/skiff-dev/skiff/proto/api"
)

// Pod phases and condition values, as in Kubernetes.
const (
	PodPending   = "Pending"
	PodRunning   = "Running"
	PodSucceeded = "Succeeded"
	PodFailed    = "Failed"
	PodUnknown   = "Unknown"

	ConditionTrue    = "True"
	ConditionFalse   = "False"
	ConditionUnknown = "Unknown"
)

// Condition returns the condition of this type, or nil.
func Condition(conds []*api.Condition, typ string) *api.Condition {
	for _, c := range conds {
		if c.GetType() == typ {
			return c
		}
	}
	return nil
}

// IsPodActive reports a pod that counts towards its controller's replicas:
// not finished and not being deleted.
func IsPodActive(p *api.Pod) bool {
	phase := p.GetStatus().GetPhase()
	return phase != PodSucceeded && phase != PodFailed && p.GetMetadata().GetDeletionTimestamp() == nil
}

// IsPodReady reports the pod's Ready condition.
func IsPodReady(p *api.Pod) bool {
	c := Condition(p.GetStatus().GetConditions(), "Ready")
	return c != nil && c.GetStatus() == ConditionTrue
}

// PodReadySince is when the pod last turned Ready (zero if not ready).
func PodReadySince(p *api.Pod) time.Time {
	c := Condition(p.GetStatus().GetConditions(), "Ready")
	if c == nil || c.GetStatus() != ConditionTrue || c.GetLastTransitionTime() == nil {
		return time.Time{}
	}
	return c.GetLastTransitionTime().AsTime()
}

// IsPodAvailable reports a pod ready for at least minReadySeconds at now.
func IsPodAvailable(p *api.Pod, minReadySeconds int32, now time.Time) bool {
	if !IsPodReady(p) {
		return false
	}
	if minReadySeconds == 0 {
		return true
	}
	since := PodReadySince(p)
	return !since.IsZero() && !since.Add(time.Duration(minReadySeconds)*time.Second).After(now)
}
