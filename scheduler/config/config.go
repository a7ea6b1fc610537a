// Package config is the scheduler's configuration: the file given with
// --scheduler-config (YAML, field names after kube-scheduler's
// KubeSchedulerConfiguration where one exists), merged over defaults and
// validated.
//
// It must never read flags or the environment: main does, and overrides
// fields after Load.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// DefaultSchedulerName is the spec.schedulerName the scheduler serves.
const DefaultSchedulerName = "default-scheduler"

// Score plugin names a config may weight (the plugins' Name constants; kept
// here so config does not import every plugin).
const (
	LeastAllocated     = "NodeResourcesLeastAllocated"
	BalancedAllocation = "NodeResourcesBalancedAllocation"
	PodTopologySpread  = "PodTopologySpread"
	TaintToleration    = "TaintToleration"
	NodeAffinity       = "NodeAffinity"
)

// Duration is a time.Duration written as "60s" or "1m30s".
type Duration struct{ time.Duration }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// Config is the scheduler's configuration.
type Config struct {
	// SchedulerName: pods whose spec.schedulerName differs are left alone.
	SchedulerName string `json:"schedulerName"`
	// Parallelism is how many goroutines filter and score nodes.
	Parallelism int `json:"parallelism"`
	// PercentageOfNodesToScore: 0 adapts to the cluster size (50% minus one
	// point per 125 nodes, at least 5%, at least 100 nodes).
	PercentageOfNodesToScore int `json:"percentageOfNodesToScore"`
	// PodInitialBackoffSeconds doubles per failed attempt up to
	// PodMaxBackoffSeconds.
	PodInitialBackoffSeconds int `json:"podInitialBackoffSeconds"`
	PodMaxBackoffSeconds     int `json:"podMaxBackoffSeconds"`
	// PodMaxInUnschedulablePodsDuration: an unschedulable pod is retried at
	// least this often even when no cluster event suggests it might fit.
	PodMaxInUnschedulablePodsDuration Duration `json:"podMaxInUnschedulablePodsDuration"`
	// BindConcurrency bounds the Bind calls in flight.
	BindConcurrency int `json:"bindConcurrency"`
	// AssumedPodTTL: a pod assumed on a node whose binding finished but that
	// the informer never showed bound is forgotten after this long.
	AssumedPodTTL Duration `json:"assumedPodTTL"`
	// ScoreWeights weights the score plugins by name; 0 disables one.
	ScoreWeights map[string]int64 `json:"scoreWeights"`
}

// Default returns the defaults, kube-scheduler's where it has them.
func Default() Config {
	return Config{
		SchedulerName:                     DefaultSchedulerName,
		Parallelism:                       2,
		PercentageOfNodesToScore:          0,
		PodInitialBackoffSeconds:          1,
		PodMaxBackoffSeconds:              10,
		PodMaxInUnschedulablePodsDuration: Duration{60 * time.Second},
		BindConcurrency:                   256,
		AssumedPodTTL:                     Duration{30 * time.Second},
		ScoreWeights: map[string]int64{
			LeastAllocated:     1,
			BalancedAllocation: 1,
			PodTopologySpread:  2,
			TaintToleration:    3,
			NodeAffinity:       2,
		},
	}
}

// Load reads path (empty: defaults only) over the defaults and validates.
// Unknown fields are errors, so a typo never silently keeps a default.
func Load(path string) (Config, error) {
	cfg := Default()
	if path == "" {
		return cfg, cfg.Validate()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read scheduler config: %w", err)
	}
	if err := Parse(data, &cfg); err != nil {
		return Config{}, fmt.Errorf("scheduler config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse reads YAML over cfg (weights merge by name) and validates.
func Parse(data []byte, cfg *Config) error {
	weights := cfg.ScoreWeights
	cfg.ScoreWeights = nil
	if err := yaml.UnmarshalStrict(data, cfg); err != nil {
		return err
	}
	merged := make(map[string]int64, len(weights))
	for k, v := range weights {
		merged[k] = v
	}
	for k, v := range cfg.ScoreWeights {
		merged[k] = v
	}
	cfg.ScoreWeights = merged
	return cfg.Validate()
}

// Validate checks every field and names all the bad ones.
func (c Config) Validate() error {
	var errs []error
	if c.SchedulerName == "" {
		errs = append(errs, errors.New("schedulerName: must not be empty"))
	}
	if c.Parallelism < 1 {
		errs = append(errs, fmt.Errorf("parallelism: must be >= 1, got %d", c.Parallelism))
	}
	if c.PercentageOfNodesToScore < 0 || c.PercentageOfNodesToScore > 100 {
		errs = append(errs, fmt.Errorf("percentageOfNodesToScore: must be 0 (adaptive) to 100, got %d", c.PercentageOfNodesToScore))
	}
	if c.PodInitialBackoffSeconds < 1 {
		errs = append(errs, fmt.Errorf("podInitialBackoffSeconds: must be >= 1, got %d", c.PodInitialBackoffSeconds))
	}
	if c.PodMaxBackoffSeconds < c.PodInitialBackoffSeconds {
		errs = append(errs, fmt.Errorf("podMaxBackoffSeconds: must be >= podInitialBackoffSeconds, got %d", c.PodMaxBackoffSeconds))
	}
	if c.PodMaxInUnschedulablePodsDuration.Duration <= 0 {
		errs = append(errs, errors.New("podMaxInUnschedulablePodsDuration: must be > 0"))
	}
	if c.BindConcurrency < 1 {
		errs = append(errs, fmt.Errorf("bindConcurrency: must be >= 1, got %d", c.BindConcurrency))
	}
	if c.AssumedPodTTL.Duration <= 0 {
		errs = append(errs, errors.New("assumedPodTTL: must be > 0"))
	}
	known := map[string]bool{LeastAllocated: true, BalancedAllocation: true, PodTopologySpread: true, TaintToleration: true, NodeAffinity: true}
	names := make([]string, 0, len(c.ScoreWeights))
	for name := range c.ScoreWeights {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !known[name] {
			errs = append(errs, fmt.Errorf("scoreWeights: unknown score plugin %q (known: %s)", name, strings.Join(KnownScorePlugins(), ", ")))
		} else if w := c.ScoreWeights[name]; w < 0 || w > 100 {
			errs = append(errs, fmt.Errorf("scoreWeights.%s: must be 0 to 100, got %d", name, w))
		}
	}
	return errors.Join(errs...)
}

// KnownScorePlugins lists the score plugins a config may weight.
func KnownScorePlugins() []string {
	return []string{BalancedAllocation, LeastAllocated, NodeAffinity, PodTopologySpread, TaintToleration}
}
