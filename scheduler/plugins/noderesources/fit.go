package noderesources

import (
	"github.com/skiff-dev/skiff/scheduler/framework"
)

// FitName is the Fit filter's name in configs and statuses.
const FitName = "NodeResourcesFit"

// kube-scheduler's phrases for a node short of a resource.
const (
	ReasonTooManyPods        = "Too many pods"
	ReasonInsufficientCPU    = "Insufficient cpu"
	ReasonInsufficientMemory = "Insufficient memory"
)

// Fit filters out nodes without room for the pod's requests.
type Fit struct{}

// NewFit makes the filter.
func NewFit() *Fit { return &Fit{} }

// Name implements framework.Plugin.
func (f *Fit) Name() string { return FitName }

// Filter implements framework.FilterPlugin. Every resource that is short is
// reported, so the pod's message counts each.
func (f *Fit) Filter(pod *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	var reasons []string
	if node.PodCount+1 > node.Allocatable.Pods {
		reasons = append(reasons, ReasonTooManyPods)
	}
	if r := pod.Requests.MilliCPU; r > 0 && r > node.Allocatable.MilliCPU-node.Requested.MilliCPU {
		reasons = append(reasons, ReasonInsufficientCPU)
	}
	if r := pod.Requests.Memory; r > 0 && r > node.Allocatable.Memory-node.Requested.Memory {
		reasons = append(reasons, ReasonInsufficientMemory)
	}
	if len(reasons) == 0 {
		return nil
	}
	return &framework.Status{Code: framework.Unschedulable, Plugin: FitName, Reasons: reasons}
}
