// Package nodeaffinity places pods by node labels: spec.nodeSelector and
// required node affinity filter (In, NotIn, Exists, DoesNotExist, Gt, Lt on
// labels; matchFields on metadata.name), preferred node affinity scores, with
// kube-scheduler's semantics.
//
// It must never look at anything but the pod's selectors and the node's
// labels and name.
package nodeaffinity

import (
	"slices"
	"strconv"

	"github.com/skiff-dev/skiff/proto/api"
	"github.com/skiff-dev/skiff/scheduler/framework"
)

// Name is the plugin's name in configs and statuses.
const Name = "NodeAffinity"

// ErrReasonPod is kube-scheduler's phrase for a node that does not match.
const ErrReasonPod = "node(s) didn't match Pod's node affinity/selector"

// Node selector operators.
const (
	OpIn           = "In"
	OpNotIn        = "NotIn"
	OpExists       = "Exists"
	OpDoesNotExist = "DoesNotExist"
	OpGt           = "Gt"
	OpLt           = "Lt"
)

// fieldNodeName is the only field matchFields may name.
const fieldNodeName = "metadata.name"

// Plugin is the NodeAffinity filter and scorer.
type Plugin struct {
	mismatch *framework.Status
}

// New makes the plugin.
func New() *Plugin {
	return &Plugin{mismatch: &framework.Status{Code: framework.Unschedulable, Plugin: Name, Reasons: []string{ErrReasonPod}}}
}

// Name implements framework.Plugin.
func (p *Plugin) Name() string { return Name }

// Filter implements framework.FilterPlugin.
func (p *Plugin) Filter(pod *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	if RequiredMatches(pod.Pod, node.Node) {
		return nil
	}
	return p.mismatch
}

// RequiredMatches reports whether the node satisfies the pod's nodeSelector
// and required node affinity.
func RequiredMatches(pod *api.Pod, node *api.Node) bool {
	labels := node.GetMetadata().GetLabels()
	for k, v := range pod.GetSpec().GetNodeSelector() {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	required := pod.GetSpec().GetAffinity().GetNodeAffinity().GetRequiredDuringSchedulingIgnoredDuringExecution()
	if required == nil {
		return true
	}
	// Terms are ORed; a selector with no terms matches nothing.
	for _, term := range required.GetNodeSelectorTerms() {
		if TermMatches(term, node) {
			return true
		}
	}
	return false
}

// TermMatches reports whether every requirement of the term holds; a term
// with no requirements matches nothing.
func TermMatches(term *api.NodeSelectorTerm, node *api.Node) bool {
	exprs, fields := term.GetMatchExpressions(), term.GetMatchFields()
	if len(exprs) == 0 && len(fields) == 0 {
		return false
	}
	labels := node.GetMetadata().GetLabels()
	for _, r := range exprs {
		v, ok := labels[r.GetKey()]
		if !requirementMatches(r, v, ok) {
			return false
		}
	}
	for _, r := range fields {
		if r.GetKey() != fieldNodeName {
			return false
		}
		if !requirementMatches(r, node.GetMetadata().GetName(), true) {
			return false
		}
	}
	return true
}

// requirementMatches applies one requirement to a value that is present or
// absent.
func requirementMatches(r *api.NodeSelectorRequirement, value string, present bool) bool {
	switch r.GetOperator() {
	case OpIn:
		return present && slices.Contains(r.GetValues(), value)
	case OpNotIn:
		return !present || !slices.Contains(r.GetValues(), value)
	case OpExists:
		return present
	case OpDoesNotExist:
		return !present
	case OpGt, OpLt:
		if !present || len(r.GetValues()) != 1 {
			return false
		}
		have, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return false
		}
		want, err := strconv.ParseInt(r.GetValues()[0], 10, 64)
		if err != nil {
			return false
		}
		if r.GetOperator() == OpGt {
			return have > want
		}
		return have < want
	default:
		return false
	}
}

// Score implements framework.ScorePlugin: the sum of the weights of the
// preferred terms the node matches.
func (p *Plugin) Score(pod *framework.PodInfo, node *framework.NodeInfo) int64 {
	var sum int64
	for _, pref := range pod.Pod.GetSpec().GetAffinity().GetNodeAffinity().GetPreferredDuringSchedulingIgnoredDuringExecution() {
		if pref.GetWeight() != 0 && TermMatches(pref.GetPreference(), node.Node) {
			sum += int64(pref.GetWeight())
		}
	}
	return sum
}

// NormalizeScores implements framework.ScoreNormalizer.
func (p *Plugin) NormalizeScores(_ *framework.PodInfo, scores []int64) {
	framework.NormalizeMax(scores)
}
