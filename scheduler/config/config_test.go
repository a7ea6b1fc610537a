package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadMergesOverDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scheduler.yaml")
	data := `
percentageOfNodesToScore: 30
podMaxInUnschedulablePodsDuration: 2m
scoreWeights:
  PodTopologySpread: 5
  TaintToleration: 0
`
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PercentageOfNodesToScore != 30 || cfg.PodMaxInUnschedulablePodsDuration.Duration != 2*time.Minute {
		t.Errorf("cfg = %+v", cfg)
	}
	if cfg.ScoreWeights[PodTopologySpread] != 5 || cfg.ScoreWeights[TaintToleration] != 0 || cfg.ScoreWeights[LeastAllocated] != 1 {
		t.Errorf("weights = %v: want the file's over the defaults", cfg.ScoreWeights)
	}
	if cfg.SchedulerName != DefaultSchedulerName || cfg.PodInitialBackoffSeconds != 1 || cfg.PodMaxBackoffSeconds != 10 {
		t.Errorf("defaults lost: %+v", cfg)
	}
}

func TestParseRejectsBadConfigs(t *testing.T) {
	tests := []struct {
		name, yaml, wantErr string
	}{
		{"unknown field", "percentOfNodes: 3", "unknown field"},
		{"unknown plugin", "scoreWeights: {MostAllocated: 1}", `unknown score plugin "MostAllocated"`},
		{"negative weight", "scoreWeights: {PodTopologySpread: -1}", "scoreWeights.PodTopologySpread: must be 0 to 100"},
		{"percentage over 100", "percentageOfNodesToScore: 101", "percentageOfNodesToScore"},
		{"max backoff below initial", "podInitialBackoffSeconds: 5\npodMaxBackoffSeconds: 2", "podMaxBackoffSeconds"},
		{"bad duration", "assumedPodTTL: soon", "invalid duration"},
		{"zero parallelism", "parallelism: 0", "parallelism: must be >= 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Default()
			err := Parse([]byte(tt.yaml), &cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoadWithoutAFileIsTheDefaults(t *testing.T) {
	cfg, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ScoreWeights[LeastAllocated] != 1 || cfg.BindConcurrency != 256 {
		t.Errorf("cfg = %+v", cfg)
	}
}
