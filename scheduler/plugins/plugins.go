// Package plugins assembles the default scheduling profile: the filter
// plugins in kube-scheduler's order (cheap first) and the score plugins with
// their configured weights.
//
// It must never hold plugin logic: each plugin is its own package.
package plugins

import (
	"fmt"

	"github.com/skiff-dev/skiff/scheduler/config"
	"github.com/skiff-dev/skiff/scheduler/framework"
	"github.com/skiff-dev/skiff/scheduler/plugins/nodeaffinity"
	"github.com/skiff-dev/skiff/scheduler/plugins/nodeports"
	"github.com/skiff-dev/skiff/scheduler/plugins/nodeready"
	"github.com/skiff-dev/skiff/scheduler/plugins/noderesources"
	"github.com/skiff-dev/skiff/scheduler/plugins/nodeunschedulable"
	"github.com/skiff-dev/skiff/scheduler/plugins/podtopologyspread"
	"github.com/skiff-dev/skiff/scheduler/plugins/tainttoleration"
)

// Filters returns the filter plugins, in the order they run.
func Filters() []framework.FilterPlugin {
	return []framework.FilterPlugin{
		nodeunschedulable.New(),
		nodeready.New(),
		tainttoleration.New(),
		nodeaffinity.New(),
		nodeports.New(),
		noderesources.NewFit(),
	}
}

// Scores returns the score plugins with a non-zero weight in weights.
func Scores(weights map[string]int64) ([]framework.WeightedScorePlugin, error) {
	all := []framework.ScorePlugin{
		noderesources.NewLeastAllocated(),
		noderesources.NewBalancedAllocation(),
		podtopologyspread.New(),
		tainttoleration.New(),
		nodeaffinity.New(),
	}
	known := map[string]bool{}
	var out []framework.WeightedScorePlugin
	for _, pl := range all {
		known[pl.Name()] = true
		if w := weights[pl.Name()]; w > 0 {
			out = append(out, framework.WeightedScorePlugin{ScorePlugin: pl, Weight: w})
		}
	}
	for name := range weights {
		if !known[name] {
			return nil, fmt.Errorf("unknown score plugin %q", name)
		}
	}
	return out, nil
}

// NewFramework builds the framework the config describes.
func NewFramework(cfg config.Config) (*framework.Framework, error) {
	scores, err := Scores(cfg.ScoreWeights)
	if err != nil {
		return nil, err
	}
	return framework.New(Filters(), scores, framework.Options{
		Parallelism:              cfg.Parallelism,
		PercentageOfNodesToScore: cfg.PercentageOfNodesToScore,
	}), nil
}
