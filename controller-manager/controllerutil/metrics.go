package controllerutil

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"
)

// Metrics are the controller-manager's queue and sync metrics. It
// implements workqueue.MetricsProvider so every queue reports depth, adds,
// latency and retries under its name. A nil *Metrics records nothing.
type Metrics struct {
	depth          *prometheus.GaugeVec
	adds           *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	workDuration   *prometheus.HistogramVec
	unfinished     *prometheus.GaugeVec
	longestRunning *prometheus.GaugeVec
	retries        *prometheus.CounterVec
	syncDuration   *prometheus.HistogramVec
	syncErrors     *prometheus.CounterVec
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns = "skiff"
	buckets := prometheus.ExponentialBuckets(0.0005, 2, 16)
	m := &Metrics{
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: "workqueue", Name: "depth",
			Help: "Keys waiting in the work queue."}, []string{"name"}),
		adds: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "workqueue", Name: "adds_total",
			Help: "Keys added to the work queue."}, []string{"name"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: "workqueue", Name: "queue_duration_seconds",
			Help: "Time a key waits in the queue before a worker takes it.", Buckets: buckets}, []string{"name"}),
		workDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: "workqueue", Name: "work_duration_seconds",
			Help: "Time a worker spends on a key.", Buckets: buckets}, []string{"name"}),
		unfinished: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: "workqueue", Name: "unfinished_work_seconds",
			Help: "Seconds of work in progress not yet observed by work_duration."}, []string{"name"}),
		longestRunning: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: "workqueue", Name: "longest_running_processor_seconds",
			Help: "Seconds the longest running worker has been busy."}, []string{"name"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "workqueue", Name: "retries_total",
			Help: "Keys re-queued with rate limiting."}, []string{"name"}),
		syncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: "controller", Name: "sync_duration_seconds",
			Help: "Time one sync of a key takes.", Buckets: buckets}, []string{"controller"}),
		syncErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "controller", Name: "sync_errors_total",
			Help: "Syncs that failed and were re-queued."}, []string{"controller"}),
	}
	reg.MustRegister(m.depth, m.adds, m.latency, m.workDuration, m.unfinished, m.longestRunning, m.retries, m.syncDuration, m.syncErrors)
	return m
}

func (m *Metrics) observeSync(controller string, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.syncDuration.WithLabelValues(controller).Observe(d.Seconds())
	if err != nil {
		var ra *RequeueAfter
		if !errors.As(err, &ra) {
			m.syncErrors.WithLabelValues(controller).Inc()
		}
	}
}

var _ workqueue.MetricsProvider = (*Metrics)(nil)

func (m *Metrics) NewDepthMetric(name string) workqueue.GaugeMetric {
	return m.depth.WithLabelValues(name)
}
func (m *Metrics) NewAddsMetric(name string) workqueue.CounterMetric {
	return m.adds.WithLabelValues(name)
}
func (m *Metrics) NewLatencyMetric(name string) workqueue.HistogramMetric {
	return m.latency.WithLabelValues(name)
}
func (m *Metrics) NewWorkDurationMetric(name string) workqueue.HistogramMetric {
	return m.workDuration.WithLabelValues(name)
}
func (m *Metrics) NewUnfinishedWorkSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return m.unfinished.WithLabelValues(name)
}
func (m *Metrics) NewLongestRunningProcessorSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return m.longestRunning.WithLabelValues(name)
}
func (m *Metrics) NewRetriesMetric(name string) workqueue.CounterMetric {
	return m.retries.WithLabelValues(name)
}
