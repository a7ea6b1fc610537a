// Package metrics is the scheduler's Prometheus metrics, named as
// kube-scheduler names them: scheduling attempts by result, the duration of
// one attempt, the end-to-end latency from a pod's first enqueue to its
// binding, and the pending pods in each queue.
//
// It must never register on the global registry: the daemon owns one.
package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of a scheduling attempt.
const (
	ResultScheduled     = "scheduled"
	ResultUnschedulable = "unschedulable"
	ResultError         = "error"
)

// Metrics are the scheduler's collectors.
type Metrics struct {
	ScheduleAttempts          *prometheus.CounterVec
	SchedulingAttemptDuration *prometheus.HistogramVec
	PodSchedulingDuration     prometheus.Histogram
}

// PendingFunc reports the pods waiting in each queue.
type PendingFunc func() (active, backoff, unschedulable int)

// New makes the collectors; Register exposes them.
func New() *Metrics {
	m := &Metrics{
		ScheduleAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "scheduler", Name: "schedule_attempts_total",
			Help: "Number of attempts to schedule pods, by result: scheduled, unschedulable (fits no node), error.",
		}, []string{"result"}),
		SchedulingAttemptDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "scheduler", Name: "scheduling_attempt_duration_seconds",
			Help:    "Time of one scheduling attempt (filter, score, assume, bind), by result.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"result"}),
		PodSchedulingDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "scheduler", Name: "pod_scheduling_duration_seconds",
			Help:    "End-to-end latency of a pod from entering the scheduling queue to being bound, across attempts.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18),
		}),
	}
	for _, r := range []string{ResultScheduled, ResultUnschedulable, ResultError} {
		m.ScheduleAttempts.WithLabelValues(r)
	}
	return m
}

// Register registers the collectors on reg, with pending feeding the
// scheduler_pending_pods gauge (by queue: active, backoff, unschedulable).
func (m *Metrics) Register(reg prometheus.Registerer, pending PendingFunc) error {
	collectors := []prometheus.Collector{m.ScheduleAttempts, m.SchedulingAttemptDuration, m.PodSchedulingDuration}
	for _, q := range []struct {
		name string
		pick func(a, b, u int) int
	}{
		{"active", func(a, _, _ int) int { return a }},
		{"backoff", func(_, b, _ int) int { return b }},
		{"unschedulable", func(_, _, u int) int { return u }},
	} {
		collectors = append(collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "scheduler", Name: "pending_pods",
			Help:        "Number of pending pods, by the queue they wait in.",
			ConstLabels: prometheus.Labels{"queue": q.name},
		}, func() float64 { return float64(q.pick(pending())) }))
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register scheduler metrics: %w", err)
		}
	}
	return nil
}
