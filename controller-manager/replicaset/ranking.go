package replicaset

import (
	"sort"

	"github.com/skiff-dev/skiff/controller-manager/controllerutil"
	"github.com/skiff-dev/skiff/proto/api"
)

// phaseRank orders phases from cheapest to delete to dearest.
var phaseRank = map[string]int{controllerutil.PodPending: 0, controllerutil.PodUnknown: 1, controllerutil.PodRunning: 2}

// lessForDeletion reports whether a should be deleted before b when scaling
// down, as Kubernetes' ActivePods ordering: unscheduled before scheduled,
// pending before unknown before running, not ready before ready, ready for
// less time before ready longer, more restarts before fewer, newer before
// older.
func lessForDeletion(a, b *api.Pod) bool {
	aBound, bBound := a.GetSpec().GetNodeName() != "", b.GetSpec().GetNodeName() != ""
	if aBound != bBound {
		return !aBound
	}
	ra, rb := phaseRank[a.GetStatus().GetPhase()], phaseRank[b.GetStatus().GetPhase()]
	if ra != rb {
		return ra < rb
	}
	aReady, bReady := controllerutil.IsPodReady(a), controllerutil.IsPodReady(b)
	if aReady != bReady {
		return !aReady
	}
	if aReady {
		ta, tb := controllerutil.PodReadySince(a), controllerutil.PodReadySince(b)
		if !ta.Equal(tb) {
			return ta.After(tb)
		}
	}
	if ca, cb := restarts(a), restarts(b); ca != cb {
		return ca > cb
	}
	ta, tb := a.GetMetadata().GetCreationTimestamp().AsTime(), b.GetMetadata().GetCreationTimestamp().AsTime()
	if !ta.Equal(tb) {
		return ta.After(tb)
	}
	return a.GetMetadata().GetName() > b.GetMetadata().GetName()
}

func restarts(p *api.Pod) int32 {
	var max int32
	for _, cs := range p.GetStatus().GetContainerStatuses() {
		if cs.GetRestartCount() > max {
			max = cs.GetRestartCount()
		}
	}
	return max
}

// podsToDelete picks the n pods to delete first.
func podsToDelete(pods []*api.Pod, n int) []*api.Pod {
	if n >= len(pods) {
		return pods
	}
	sorted := append([]*api.Pod(nil), pods...)
	sort.SliceStable(sorted, func(i, j int) bool { return lessForDeletion(sorted[i], sorted[j]) })
	return sorted[:n]
}

// slowStartBatches splits count creations into batches of 1, 2, 4, ...
// starting at initial: a template that cannot be created fails once, not
// a thousand times.
func slowStartBatches(count, initial int) []int {
	var out []int
	for size := initial; count > 0; size *= 2 {
		b := min(size, count)
		out = append(out, b)
		count -= b
	}
	return out
}
