package framework

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
)

// Node sampling, as kube-scheduler's percentageOfNodesToScore: in a large
// cluster the search stops once this many feasible nodes are found.
const (
	// MinFeasibleNodesToFind is the floor of the adaptive sample.
	MinFeasibleNodesToFind = 100
	// MinFeasibleNodesPercentageToFind is the floor of the adaptive
	// percentage.
	MinFeasibleNodesPercentageToFind = 5
	// basePercentageOfNodesToScore is the adaptive percentage for a small
	// cluster; it shrinks by one point per 125 nodes.
	basePercentageOfNodesToScore = 50
)

// Options tune the framework.
type Options struct {
	// Parallelism is how many goroutines filter and score nodes; 1 runs
	// everything on the caller's goroutine.
	Parallelism int
	// PercentageOfNodesToScore: 0 is adaptive (50% minus 1% per 125 nodes,
	// at least 5%), 100 scores every feasible node. Never fewer than
	// MinFeasibleNodesToFind nodes are searched for.
	PercentageOfNodesToScore int
	// Rand breaks ties between nodes with the best score; nil seeds one.
	Rand *rand.Rand
}

// Framework runs the filter and score plugins of one scheduling profile. It
// is used by one scheduling goroutine at a time (it remembers where the last
// search stopped so successive pods start at different nodes).
type Framework struct {
	filters []FilterPlugin
	scores  []WeightedScorePlugin
	opts    Options
	rand    *rand.Rand

	nextStartNodeIndex int
	// Buffers reused from cycle to cycle (one goroutine uses a Framework).
	feasibleBuf []*NodeInfo
	statusBuf   []*Status
	scoreBuf    [][]int64
	totalBuf    []int64
}

// grow returns buf resized to n, reusing its array when large enough.
func grow[T any](buf []T, n int) []T {
	if cap(buf) < n {
		return make([]T, n)
	}
	buf = buf[:n]
	clear(buf)
	return buf
}

// New makes a framework. Filters run in the order given and a node fails at
// the first filter that rejects it, so cheap filters go first.
func New(filters []FilterPlugin, scores []WeightedScorePlugin, opts Options) *Framework {
	if opts.Parallelism < 1 {
		opts.Parallelism = 1
	}
	r := opts.Rand
	if r == nil {
		r = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return &Framework{filters: filters, scores: scores, opts: opts, rand: r}
}

// ScheduleResult is where the pod should go.
type ScheduleResult struct {
	SuggestedHost string
	// EvaluatedNodes were filtered; FeasibleNodes passed every filter.
	EvaluatedNodes int
	FeasibleNodes  int
}

// RunFilters runs every filter on one node and returns the first failure,
// or nil when the pod fits.
func (f *Framework) RunFilters(pod *PodInfo, node *NodeInfo) *Status {
	for _, pl := range f.filters {
		if s := pl.Filter(pod, node); s != nil {
			if s.Plugin == "" {
				s.Plugin = pl.Name()
			}
			return s
		}
	}
	return nil
}

// Schedule picks a node for pod among nodes (a snapshot: read only). It
// returns a *FitError when no node fits.
func (f *Framework) Schedule(ctx context.Context, pod *PodInfo, nodes []*NodeInfo) (ScheduleResult, error) {
	if len(nodes) == 0 {
		return ScheduleResult{}, &FitError{Pod: pod.Key}
	}
	feasible, statuses, err := f.findFeasible(ctx, pod, nodes)
	if err != nil {
		return ScheduleResult{}, err
	}
	result := ScheduleResult{EvaluatedNodes: len(feasible) + countFailed(statuses), FeasibleNodes: len(feasible)}
	if len(feasible) == 0 {
		return result, fitError(pod, len(nodes), statuses)
	}
	if len(feasible) == 1 {
		result.SuggestedHost = feasible[0].Name()
		return result, nil
	}
	totals := f.prioritize(pod, feasible)
	result.SuggestedHost = feasible[f.selectHost(totals)].Name()
	return result, nil
}

func countFailed(statuses []*Status) int {
	n := 0
	for _, s := range statuses {
		if s != nil {
			n++
		}
	}
	return n
}

func fitError(pod *PodInfo, numAll int, statuses []*Status) error {
	fe := &FitError{Pod: pod.Key, NumAllNodes: numAll, Reasons: map[string]int{}}
	for _, s := range statuses {
		if s == nil {
			continue
		}
		if s.Code == Error {
			return fmt.Errorf("pod %s: filter %s: %s", pod.Key, s.Plugin, s.Message())
		}
		for _, r := range s.Reasons {
			fe.Reasons[r]++
		}
	}
	return fe
}

// NumFeasibleNodesToFind is how many feasible nodes the search looks for
// in a cluster of numAllNodes.
func NumFeasibleNodesToFind(percentage, numAllNodes int) int {
	if numAllNodes < MinFeasibleNodesToFind || percentage >= 100 {
		return numAllNodes
	}
	adaptive := percentage
	if adaptive <= 0 {
		adaptive = max(basePercentageOfNodesToScore-numAllNodes/125, MinFeasibleNodesPercentageToFind)
	}
	n := numAllNodes * adaptive / 100
	return max(n, MinFeasibleNodesToFind)
}

// findFeasible filters nodes starting where the last search stopped, until
// enough feasible nodes are found. statuses[i] is the failure of the i-th
// node visited (nil when it fit or was not visited).
func (f *Framework) findFeasible(ctx context.Context, pod *PodInfo, nodes []*NodeInfo) ([]*NodeInfo, []*Status, error) {
	n := len(nodes)
	numToFind := NumFeasibleNodesToFind(f.opts.PercentageOfNodesToScore, n)
	f.feasibleBuf = grow(f.feasibleBuf, numToFind)
	f.statusBuf = grow(f.statusBuf, n)
	feasible, statuses := f.feasibleBuf, f.statusBuf
	start := f.nextStartNodeIndex % n
	var found, visited atomic.Int64
	stop := func() bool { return found.Load() >= int64(numToFind) || ctx.Err() != nil }
	parallelize(f.opts.Parallelism, n, stop, func(i int) {
		if found.Load() >= int64(numToFind) {
			return
		}
		visited.Add(1)
		node := nodes[(start+i)%n]
		if s := f.RunFilters(pod, node); s != nil {
			statuses[i] = s
			return
		}
		if k := found.Add(1); k <= int64(numToFind) {
			feasible[k-1] = node
		}
	})
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("filter nodes for pod %s: %w", pod.Key, err)
	}
	f.nextStartNodeIndex = (start + int(visited.Load())) % n
	k := min(int(found.Load()), numToFind)
	return feasible[:k], statuses, nil
}

// prioritize returns the weighted total score of every feasible node.
func (f *Framework) prioritize(pod *PodInfo, feasible []*NodeInfo) []int64 {
	f.totalBuf = grow(f.totalBuf, len(feasible))
	totals := f.totalBuf
	if len(f.scores) == 0 {
		return totals
	}
	if len(f.scoreBuf) != len(f.scores) {
		f.scoreBuf = make([][]int64, len(f.scores))
	}
	perPlugin := f.scoreBuf
	for j := range f.scores {
		perPlugin[j] = grow(perPlugin[j], len(feasible))
	}
	parallelize(f.opts.Parallelism, len(feasible), nil, func(i int) {
		for j, pl := range f.scores {
			perPlugin[j][i] = pl.Score(pod, feasible[i])
		}
	})
	for j, pl := range f.scores {
		if norm, ok := pl.ScorePlugin.(ScoreNormalizer); ok {
			norm.NormalizeScores(pod, perPlugin[j])
		}
		for i, s := range perPlugin[j] {
			totals[i] += s * pl.Weight
		}
	}
	return totals
}

// selectHost picks the highest total, breaking ties uniformly at random
// (reservoir sampling) so equal nodes share the load.
func (f *Framework) selectHost(totals []int64) int {
	best, ties := 0, 1
	for i := 1; i < len(totals); i++ {
		switch {
		case totals[i] > totals[best]:
			best, ties = i, 1
		case totals[i] == totals[best]:
			ties++
			if f.rand.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return best
}
