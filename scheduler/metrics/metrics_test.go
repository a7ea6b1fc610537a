package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetricsAreRegisteredWithKubeSchedulerNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New()
	if err := m.Register(reg, func() (int, int, int) { return 3, 2, 1 }); err != nil {
		t.Fatal(err)
	}
	m.ScheduleAttempts.WithLabelValues(ResultScheduled).Inc()
	m.PodSchedulingDuration.Observe(0.01)
	m.SchedulingAttemptDuration.WithLabelValues(ResultScheduled).Observe(0.001)

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			name := f.GetName()
			for _, l := range metric.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case metric.GetCounter() != nil:
				got[name] = metric.GetCounter().GetValue()
			case metric.GetGauge() != nil:
				got[name] = metric.GetGauge().GetValue()
			case metric.GetHistogram() != nil:
				got[name] = float64(metric.GetHistogram().GetSampleCount())
			}
		}
	}
	want := map[string]float64{
		"scheduler_pending_pods{queue=active}":                            3,
		"scheduler_pending_pods{queue=backoff}":                           2,
		"scheduler_pending_pods{queue=unschedulable}":                     1,
		"scheduler_schedule_attempts_total{result=scheduled}":             1,
		"scheduler_schedule_attempts_total{result=unschedulable}":         0,
		"scheduler_schedule_attempts_total{result=error}":                 0,
		"scheduler_pod_scheduling_duration_seconds":                       1,
		"scheduler_scheduling_attempt_duration_seconds{result=scheduled}": 1,
	}
	for name, v := range want {
		if g, ok := got[name]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", name, g, ok, v)
		}
	}
}

func TestRegisteringTwiceIsAnError(t *testing.T) {
	reg := prometheus.NewRegistry()
	pending := func() (int, int, int) { return 0, 0, 0 }
	if err := New().Register(reg, pending); err != nil {
		t.Fatal(err)
	}
	if err := New().Register(reg, pending); err == nil {
		t.Fatal("a second scheduler's metrics registered over the first's")
	}
}
