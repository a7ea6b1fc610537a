// Package nodeunschedulable filters out cordoned nodes (spec.unschedulable),
// unless the pod tolerates the node.kubernetes.io/unschedulable taint, as
// kube-scheduler's plugin of the same name does.
//
// It must never look at anything but the node's spec and the pod's
// tolerations.
package nodeunschedulable

import (
	"github.com/skiff-dev/skiff/internal/taints"
	"github.com/skiff-dev/skiff/proto/api"
	"github.com/skiff-dev/skiff/scheduler/framework"
)

// Name is the plugin's name in configs and statuses.
const Name = "NodeUnschedulable"

// ErrReasonUnschedulable is kube-scheduler's phrase for a cordoned node.
const ErrReasonUnschedulable = "node(s) were unschedulable"

// TaintNodeUnschedulable is the taint a pod tolerates to run on a cordoned
// node (DaemonSet-style pods).
const TaintNodeUnschedulable = "node.kubernetes.io/unschedulable"

// Plugin is the NodeUnschedulable filter.
type Plugin struct {
	unschedulable *framework.Status
	taint         *api.Taint
}

// New makes the plugin.
func New() *Plugin {
	return &Plugin{
		unschedulable: &framework.Status{Code: framework.Unschedulable, Plugin: Name, Reasons: []string{ErrReasonUnschedulable}},
		taint:         &api.Taint{Key: TaintNodeUnschedulable, Effect: taints.EffectNoSchedule},
	}
}

// Name implements framework.Plugin.
func (p *Plugin) Name() string { return Name }

// Filter implements framework.FilterPlugin.
func (p *Plugin) Filter(pod *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	if !node.Node.GetSpec().GetUnschedulable() {
		return nil
	}
	if taints.Tolerated(pod.Pod.GetSpec().GetTolerations(), p.taint) {
		return nil
	}
	return p.unschedulable
}
