// Package taints matches pods' tolerations against nodes' taints as
// Kubernetes does: the scheduler uses it to keep pods off tainted nodes,
// the node lifecycle controller to decide when a NoExecute taint evicts a
// pod.
package taints

import (
	"time"

	"github.com/skiff-dev/skiff/proto/api"
)

// Taint effects.
const (
	EffectNoSchedule       = "NoSchedule"
	EffectPreferNoSchedule = "PreferNoSchedule"
	EffectNoExecute        = "NoExecute"
)

// Toleration operators.
const (
	OpEqual  = "Equal"
	OpExists = "Exists"
)

// Tolerates reports whether t tolerates taint: an empty effect matches
// every effect, an empty key with Exists matches every taint, Equal (the
// default operator) also needs the value to match.
func Tolerates(t *api.Toleration, taint *api.Taint) bool {
	if t.GetEffect() != "" && t.GetEffect() != taint.GetEffect() {
		return false
	}
	if t.GetKey() != "" && t.GetKey() != taint.GetKey() {
		return false
	}
	switch t.GetOperator() {
	case "", OpEqual:
		return t.GetValue() == taint.GetValue()
	case OpExists:
		return true
	default:
		return false
	}
}

// Tolerated reports whether any of tolerations tolerates taint.
func Tolerated(tolerations []*api.Toleration, taint *api.Taint) bool {
	for _, t := range tolerations {
		if Tolerates(t, taint) {
			return true
		}
	}
	return false
}

// NoExecuteTolerance is how long a pod may stay on a node after a
// NoExecute taint was put on it.
type NoExecuteTolerance struct {
	// Tolerated: some toleration matches the taint. Without one the pod
	// has to go.
	Tolerated bool
	// Forever: a matching toleration has no tolerationSeconds.
	Forever bool
	// For is the shortest tolerationSeconds among the matching
	// tolerations (negative counts as zero), when not Forever.
	For time.Duration
}

// ForNoExecute is the tolerance of tolerations for a NoExecute taint, as
// Kubernetes' taint manager computes it.
func ForNoExecute(tolerations []*api.Toleration, taint *api.Taint) NoExecuteTolerance {
	var out NoExecuteTolerance
	for _, t := range tolerations {
		if !Tolerates(t, taint) {
			continue
		}
		if t.TolerationSeconds == nil {
			return NoExecuteTolerance{Tolerated: true, Forever: true}
		}
		d := time.Duration(max(t.GetTolerationSeconds(), 0)) * time.Second
		if !out.Tolerated || d < out.For {
			out.For = d
		}
		out.Tolerated = true
	}
	return out
}
