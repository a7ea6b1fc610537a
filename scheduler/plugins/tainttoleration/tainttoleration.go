// Package tainttoleration keeps pods off nodes whose taints they do not
// tolerate: NoSchedule and NoExecute taints filter, PreferNoSchedule taints
// lower the score, with kube-scheduler's matching rules.
//
// It must never look at anything but taints and tolerations.
package tainttoleration

import (
	"fmt"

	"github.com/skiff-dev/skiff/internal/taints"
	"github.com/skiff-dev/skiff/scheduler/framework"
)

// Name is the plugin's name in configs and statuses.
const Name = "TaintToleration"

// Plugin is the TaintToleration filter and scorer.
type Plugin struct{}

// New makes the plugin.
func New() *Plugin { return &Plugin{} }

// Name implements framework.Plugin.
func (p *Plugin) Name() string { return Name }

// Filter implements framework.FilterPlugin: the first NoSchedule or
// NoExecute taint the pod does not tolerate rejects the node.
func (p *Plugin) Filter(pod *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	tolerations := pod.Pod.GetSpec().GetTolerations()
	for _, taint := range node.Node.GetSpec().GetTaints() {
		if taint.GetEffect() != taints.EffectNoSchedule && taint.GetEffect() != taints.EffectNoExecute {
			continue
		}
		if !taints.Tolerated(tolerations, taint) {
			return &framework.Status{Code: framework.Unschedulable, Plugin: Name, Reasons: []string{
				fmt.Sprintf("node(s) had untolerated taint {%s: %s}", taint.GetKey(), taint.GetValue()),
			}}
		}
	}
	return nil
}

// Score implements framework.ScorePlugin: the number of PreferNoSchedule
// taints the pod does not tolerate (fewer is better, see NormalizeScores).
func (p *Plugin) Score(pod *framework.PodInfo, node *framework.NodeInfo) int64 {
	var n int64
	tolerations := pod.Pod.GetSpec().GetTolerations()
	for _, taint := range node.Node.GetSpec().GetTaints() {
		if taint.GetEffect() == taints.EffectPreferNoSchedule && !taints.Tolerated(tolerations, taint) {
			n++
		}
	}
	return n
}

// NormalizeScores implements framework.ScoreNormalizer: the node with the
// most intolerable taints scores 0, a node with none 100.
func (p *Plugin) NormalizeScores(_ *framework.PodInfo, scores []int64) {
	framework.NormalizeReverse(scores)
}
