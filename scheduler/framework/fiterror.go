package framework

import (
	"fmt"
	"sort"
	"strings"
)

// FitError is the answer when no node can run the pod. Its message is the
// one kube-scheduler writes into the PodScheduled condition and the
// FailedScheduling event: "0/3 nodes are available: 1 node(s) were
// unschedulable, 2 Insufficient cpu." ("count reason" phrases sorted as
// strings, as kube-scheduler sorts them).
type FitError struct {
	Pod         string
	NumAllNodes int
	// Reasons counts, per reason, the nodes that gave it.
	Reasons map[string]int
}

// Error implements error.
func (e *FitError) Error() string {
	if e.NumAllNodes == 0 {
		return "no nodes available to schedule pods"
	}
	msg := fmt.Sprintf("0/%d nodes are available:", e.NumAllNodes)
	parts := make([]string, 0, len(e.Reasons))
	for reason, n := range e.Reasons {
		parts = append(parts, fmt.Sprintf("%d %s", n, reason))
	}
	sort.Strings(parts)
	if len(parts) > 0 {
		msg += " " + strings.Join(parts, ", ")
	}
	return msg + "."
}
