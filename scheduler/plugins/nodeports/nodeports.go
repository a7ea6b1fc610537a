// Package nodeports keeps two pods from binding the same host port (and
// protocol, and host IP, where 0.0.0.0 overlaps every IP) on one node.
//
// It must never look at anything but host ports.
package nodeports

import (
	"github.com/skiff-dev/skiff/scheduler/framework"
)

// Name is the plugin's name in configs and statuses.
const Name = "NodePorts"

// ErrReason is kube-scheduler's phrase for a host port conflict.
const ErrReason = "node(s) didn't have free ports for the requested pod ports"

// Plugin is the NodePorts filter.
type Plugin struct {
	conflict *framework.Status
}

// New makes the plugin.
func New() *Plugin {
	return &Plugin{conflict: &framework.Status{Code: framework.Unschedulable, Plugin: Name, Reasons: []string{ErrReason}}}
}

// Name implements framework.Plugin.
func (p *Plugin) Name() string { return Name }

// Filter implements framework.FilterPlugin.
func (p *Plugin) Filter(pod *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	if len(pod.HostPorts) == 0 || !node.PortsConflict(pod.HostPorts) {
		return nil
	}
	return p.conflict
}
