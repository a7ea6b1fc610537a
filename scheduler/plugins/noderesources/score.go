package noderesources

import (
	"math"

	"github.com/skiff-dev/skiff/scheduler/framework"
)

// Scorer names in configs.
const (
	LeastAllocatedName     = "NodeResourcesLeastAllocated"
	BalancedAllocationName = "NodeResourcesBalancedAllocation"
)

// LeastAllocated prefers the node with the most free cpu and memory once the
// pod is placed: per resource (allocatable - requested) * 100 / allocatable,
// averaged. Requests count containers without requests at the defaults
// (framework.NonZeroRequests) so request-less pods spread too.
type LeastAllocated struct{}

// NewLeastAllocated makes the scorer.
func NewLeastAllocated() *LeastAllocated { return &LeastAllocated{} }

// Name implements framework.Plugin.
func (l *LeastAllocated) Name() string { return LeastAllocatedName }

// Score implements framework.ScorePlugin.
func (l *LeastAllocated) Score(pod *framework.PodInfo, node *framework.NodeInfo) int64 {
	cpu := leastRequested(node.NonZeroRequested.MilliCPU+pod.NonZeroRequests.MilliCPU, node.Allocatable.MilliCPU)
	mem := leastRequested(node.NonZeroRequested.Memory+pod.NonZeroRequests.Memory, node.Allocatable.Memory)
	return (cpu + mem) / 2
}

func leastRequested(requested, capacity int64) int64 {
	if capacity <= 0 || requested > capacity {
		return 0
	}
	return (capacity - requested) * framework.MaxNodeScore / capacity
}

// BalancedAllocation prefers the node whose cpu and memory would be used in
// the most equal proportions once the pod is placed: (1 - standard
// deviation of the fractions) * 100, which keeps one resource from being
// exhausted while the other idles.
type BalancedAllocation struct{}

// NewBalancedAllocation makes the scorer.
func NewBalancedAllocation() *BalancedAllocation { return &BalancedAllocation{} }

// Name implements framework.Plugin.
func (b *BalancedAllocation) Name() string { return BalancedAllocationName }

// Score implements framework.ScorePlugin.
func (b *BalancedAllocation) Score(pod *framework.PodInfo, node *framework.NodeInfo) int64 {
	cpu := fraction(node.Requested.MilliCPU+pod.Requests.MilliCPU, node.Allocatable.MilliCPU)
	mem := fraction(node.Requested.Memory+pod.Requests.Memory, node.Allocatable.Memory)
	// The standard deviation of two values is half their distance.
	std := math.Abs(cpu-mem) / 2
	return int64((1 - std) * float64(framework.MaxNodeScore))
}

func fraction(requested, capacity int64) float64 {
	if capacity <= 0 {
		return 1
	}
	return min(float64(requested)/float64(capacity), 1)
}
