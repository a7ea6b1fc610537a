package config_test

import (
	"fmt"

	"github.com/skiff-dev/skiff/scheduler/config"
)

// A --scheduler-config file: fields left out keep their defaults, and
// scoreWeights merge by plugin name (0 turns a plugin off).
func ExampleParse() {
	file := `
schedulerName: default-scheduler
parallelism: 2
percentageOfNodesToScore: 0      # adaptive: 42% of 1,000 nodes, never fewer than 100
podInitialBackoffSeconds: 1
podMaxBackoffSeconds: 10
podMaxInUnschedulablePodsDuration: 60s
bindConcurrency: 256
assumedPodTTL: 30s
scoreWeights:
  PodTopologySpread: 3
  TaintToleration: 0
`
	cfg := config.Default()
	if err := config.Parse([]byte(file), &cfg); err != nil {
		fmt.Println(err)
		return
	}
	for _, name := range config.KnownScorePlugins() {
		fmt.Printf("%s=%d\n", name, cfg.ScoreWeights[name])
	}
	// Output:
	// NodeResourcesBalancedAllocation=1
	// NodeResourcesLeastAllocated=1
	// NodeAffinity=2
	// PodTopologySpread=3
	// TaintToleration=0
}
