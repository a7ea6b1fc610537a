package tainttoleration

import (
	"slices"
	"testing"

	"github.com/skiff-dev/skiff/internal/taints"
	st "github.com/skiff-dev/skiff/scheduler/schedtest"
)

func TestFilterRejectsUntoleratedNoScheduleAndNoExecute(t *testing.T) {
	tests := []struct {
		name   string
		pod    *st.PodWrapper
		node   *st.NodeWrapper
		reason string // "" fits
	}{
		{"no taints", st.MakePod("p"), st.MakeNode("n"), ""},
		{"NoSchedule not tolerated", st.MakePod("p"), st.MakeNode("n").Taint("dedicated", "gpu", taints.EffectNoSchedule), "node(s) had untolerated taint {dedicated: gpu}"},
		{"NoExecute not tolerated", st.MakePod("p"), st.MakeNode("n").Taint("node.kubernetes.io/not-ready", "", taints.EffectNoExecute), "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"},
		{"PreferNoSchedule never filters", st.MakePod("p"), st.MakeNode("n").Taint("dedicated", "gpu", taints.EffectPreferNoSchedule), ""},
		{"NoSchedule tolerated", st.MakePod("p").Toleration("dedicated", taints.OpEqual, "gpu", taints.EffectNoSchedule), st.MakeNode("n").Taint("dedicated", "gpu", taints.EffectNoSchedule), ""},
		{"one of two taints tolerated", st.MakePod("p").Toleration("a", taints.OpExists, "", ""), st.MakeNode("n").Taint("a", "", taints.EffectNoSchedule).Taint("b", "x", taints.EffectNoSchedule), "node(s) had untolerated taint {b: x}"},
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
	pod := st.PodInfo(t, st.MakePod("p").Toleration("ok", taints.OpExists, "", "").Obj())
	nodes := []*st.NodeWrapper{
		st.MakeNode("clean"),
		st.MakeNode("one").Taint("a", "", taints.EffectPreferNoSchedule),
		st.MakeNode("two").Taint("a", "", taints.EffectPreferNoSchedule).Taint("b", "", taints.EffectPreferNoSchedule),
		st.MakeNode("tolerated").Taint("ok", "", taints.EffectPreferNoSchedule),
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
