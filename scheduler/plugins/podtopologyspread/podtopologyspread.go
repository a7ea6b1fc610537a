// Package podtopologyspread spreads the pods of one owner (the replicas of a
// ReplicaSet) across nodes: the fewer siblings a node already runs or has
// assumed, the higher it scores. It is kube-scheduler's default
// spreading by hostname, without topologySpreadConstraints.
//
// It must never filter: spreading is a preference, not a rule.
package podtopologyspread

import (
	"github.com/skiff-dev/skiff/scheduler/framework"
)

// Name is the plugin's name in configs.
const Name = "PodTopologySpread"

// Plugin is the spreading scorer.
type Plugin struct{}

// New makes the plugin.
func New() *Plugin { return &Plugin{} }

// Name implements framework.Plugin.
func (p *Plugin) Name() string { return Name }

// Score implements framework.ScorePlugin: the number of the pod's siblings
// on the node (see NormalizeScores).
func (p *Plugin) Score(pod *framework.PodInfo, node *framework.NodeInfo) int64 {
	if pod.OwnerUID == "" {
		return 0
	}
	return int64(node.OwnerPods[pod.OwnerUID])
}

// NormalizeScores implements framework.ScoreNormalizer: the node with the
// most siblings scores 0, a node with none 100.
func (p *Plugin) NormalizeScores(_ *framework.PodInfo, scores []int64) {
	framework.NormalizeReverse(scores)
}
