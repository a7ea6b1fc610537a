// Package nodeready filters out nodes whose Ready condition is not True: a
// node whose kubelet stopped reporting, or reports itself unhealthy, gets no
// new pods.
//
// It must never look at anything but the node's conditions.
package nodeready

import (
	"github.com/skiff-dev/skiff/scheduler/framework"
)

// Name is the plugin's name in configs and statuses.
const Name = "NodeReady"

// ErrReasonNotReady is the phrase counted for a node that is not Ready.
const ErrReasonNotReady = "node(s) were not ready"

// ConditionReady is the node condition the kubelet keeps True while healthy.
const ConditionReady = "Ready"

// Plugin is the NodeReady filter.
type Plugin struct {
	notReady *framework.Status
}

// New makes the plugin.
func New() *Plugin {
	return &Plugin{notReady: &framework.Status{Code: framework.Unschedulable, Plugin: Name, Reasons: []string{ErrReasonNotReady}}}
}

// Name implements framework.Plugin.
func (p *Plugin) Name() string { return Name }

// Filter implements framework.FilterPlugin.
func (p *Plugin) Filter(_ *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	for _, c := range node.Node.GetStatus().GetConditions() {
		if c.GetType() == ConditionReady {
			if c.GetStatus() == "True" {
				return nil
			}
			break
		}
	}
	return p.notReady
}
