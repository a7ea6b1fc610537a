package tainttoleration

import (
	"slices"
	"testing"

	"github.com/skiff-dev/skiff/proto/api"
	st "github.com/skiff-dev/skiff/scheduler/schedtest"
)

func TestTolerates(t *testing.T) {
	taint := &api.Taint{Key: "dedicated", Value: "gpu", Effect: EffectNoSchedule}
	tests := []struct {
		name string
		tol  *api.Toleration
		want bool
	}{
		{"Equal with same key, value and effect", &api.Toleration{Key: "dedicated", Operator: OpEqual, Value: "gpu", Effect: EffectNoSchedule}, true},
		{"empty operator means Equal", &api.Toleration{Key: "dedicated", Value: "gpu"}, true},
		{"Equal with another value", &api.Toleration{Key: "dedicated", Operator: OpEqual, Value: "cpu"}, false},
		{"Exists on the key, any value", &api.Toleration{Key: "dedicated", Operator: OpExists}, true},
		{"Exists with empty key tolerates everything", &api.Toleration{Operator: OpExists}, true},
		{"another key", &api.Toleration{Key: "other", Operator: OpExists}, false},
		{"another effect", &api.Toleration{Key: "dedicated", Operator: OpExists, Effect: EffectNoExecute}, false},
		{"unknown operator", &api.Toleration{Key: "dedicated", Operator: "Gt", Value: "gpu"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Tolerates(tt.tol, taint); got != tt.want {
				t.Errorf("Tolerates = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFilterRejectsUntoleratedNoScheduleAndNoExecute(t *testing.T) {
	tests := []struct {
		name   string
		pod    *st.PodWrapper
		node   *st.NodeWrapper
		reason string // "" fits
	}{
		{"no taints", st.MakePod("p"), st.MakeNode("n"), ""},
		{"NoSchedule not tolerated", st.MakePod("p"), st.MakeNode("n").Taint("dedicated", "gpu", EffectNoSchedule), "node(s) had untolerated taint {dedicated: gpu}"},
		{"NoExecute not tolerated", st.MakePod("p"), st.MakeNode("n").Taint("node.kubernetes.io/not-ready", "", EffectNoExecute), "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"},
		{"PreferNoSchedule never filters", st.MakePod("p"), st.MakeNode("n").Taint("dedicated", "gpu", EffectPreferNoSchedule), ""},
		{"NoSchedule tolerated", st.MakePod("p").Toleration("dedicated", OpEqual, "gpu", EffectNoSchedule), st.MakeNode("n").Taint("dedicated", "gpu", EffectNoSchedule), ""},
		{"one of two taints tolerated", st.MakePod("p").Toleration("a", OpExists, "", ""), st.MakeNode("n").Taint("a", "", EffectNoSchedule).Taint("b", "x", EffectNoSchedule), "node(s) had untolerated taint {b: x}"},
	}
	p := New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := p.Filter(st.PodInfo(t, tt.pod.Obj()), st.NodeInfo(t, tt.node.Obj()))
			if got := s.Message(); got != tt.reason {
				t.Errorf("Filter reason = %q, want %q", got, tt.reason)
			}
		})
	}
}

func TestScorePrefersNodesWithFewerIntolerablePreferNoScheduleTaints(t *testing.T) {
	pod := st.PodInfo(t, st.MakePod("p").Toleration("ok", OpExists, "", "").Obj())
	nodes := []*st.NodeWrapper{
		st.MakeNode("clean"),
		st.MakeNode("one").Taint("a", "", EffectPreferNoSchedule),
		st.MakeNode("two").Taint("a", "", EffectPreferNoSchedule).Taint("b", "", EffectPreferNoSchedule),
		st.MakeNode("tolerated").Taint("ok", "", EffectPreferNoSchedule),
	}
	p := New()
	scores := make([]int64, len(nodes))
	for i, n := range nodes {
		scores[i] = p.Score(pod, st.NodeInfo(t, n.Obj()))
	}
	p.NormalizeScores(pod, scores)
	if want := []int64{100, 50, 0, 100}; !slices.Equal(scores, want) {
		t.Errorf("scores = %v, want %v", scores, want)
	}
}
