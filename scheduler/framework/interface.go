package framework

import "strings"

// MaxNodeScore is the highest score a Score plugin gives after
// normalization; MinNodeScore the lowest.
const (
	MaxNodeScore int64 = 100
	MinNodeScore int64 = 0
)

// Code says how a plugin judged a node.
type Code int

const (
	// Unschedulable: the pod does not fit this node now; it may later.
	Unschedulable Code = iota + 1
	// Error: the plugin could not decide (bad input); the pod is retried
	// with backoff.
	Error
)

// Status is a plugin's verdict on a node; nil means success. Reasons are
// the human phrases kube-scheduler uses ("Insufficient cpu",
// "node(s) were unschedulable"), counted across nodes in the pod's
// FailedScheduling message.
type Status struct {
	Code    Code
	Plugin  string
	Reasons []string
}

// NewStatus makes a failing status.
func NewStatus(code Code, reasons ...string) *Status {
	return &Status{Code: code, Reasons: reasons}
}

// Message joins the reasons.
func (s *Status) Message() string {
	if s == nil {
		return ""
	}
	return strings.Join(s.Reasons, ", ")
}

// Plugin is anything the framework runs.
type Plugin interface {
	Name() string
}

// FilterPlugin decides whether the pod can run on a node. Filter is called
// concurrently for different nodes and must not mutate pod or node.
type FilterPlugin interface {
	Plugin
	Filter(pod *PodInfo, node *NodeInfo) *Status
}

// ScorePlugin ranks a feasible node; higher is better. Score is called
// concurrently for different nodes. Scores need not be in [0, 100] when the
// plugin also implements ScoreNormalizer.
type ScorePlugin interface {
	Plugin
	Score(pod *PodInfo, node *NodeInfo) int64
}

// ScoreNormalizer rescales one plugin's scores over all feasible nodes to
// [MinNodeScore, MaxNodeScore] (e.g. "fewest siblings is best").
type ScoreNormalizer interface {
	NormalizeScores(pod *PodInfo, scores []int64)
}

// WeightedScorePlugin is a score plugin with its weight from the config.
type WeightedScorePlugin struct {
	ScorePlugin
	Weight int64
}
