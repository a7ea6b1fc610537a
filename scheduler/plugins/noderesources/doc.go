// Package noderesources accounts cpu, memory and pod count: the Fit filter
// (requests against allocatable minus what the node's pods request) and the
// LeastAllocated and BalancedAllocation scorers, with kube-scheduler's
// formulas.
//
// It must never parse quantities: framework.PodInfo and NodeInfo hold them
// parsed.
package noderesources
