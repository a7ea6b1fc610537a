package podtopologyspread

import (
	"slices"
	"testing"

	"github.com/skiff-dev/skiff/proto/api"
	"github.com/skiff-dev/skiff/scheduler/framework"
	st "github.com/skiff-dev/skiff/scheduler/schedtest"
)

func TestScoreSpreadsSiblingsOfTheSameOwner(t *testing.T) {
	sibling := func(name string) *api.Pod { return st.MakePod(name).Owner("rs-1").Obj() }
	stranger := func(name string) *api.Pod { return st.MakePod(name).Owner("rs-2").Obj() }
	tests := []struct {
		name  string
		pod   *st.PodWrapper
		nodes [][]*api.Pod
		want  []int64
	}{
		{"fewest siblings wins", st.MakePod("p").Owner("rs-1"),
			[][]*api.Pod{{sibling("a"), sibling("b")}, {sibling("c")}, {stranger("d"), stranger("e")}},
			[]int64{0, 50, 100}},
		{"no siblings anywhere: all equal", st.MakePod("p").Owner("rs-1"),
			[][]*api.Pod{{stranger("a")}, {}},
			[]int64{100, 100}},
		{"a bare pod has no siblings", st.MakePod("p"),
			[][]*api.Pod{{sibling("a")}, {}},
			[]int64{100, 100}},
	}
	p := New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := st.PodInfo(t, tt.pod.Obj())
			scores := make([]int64, len(tt.nodes))
			for i, pods := range tt.nodes {
				scores[i] = p.Score(pod, st.NodeInfo(t, st.MakeNode("n").Obj(), pods...))
			}
			p.NormalizeScores(pod, scores)
			if !slices.Equal(scores, tt.want) {
				t.Errorf("scores = %v, want %v", scores, tt.want)
			}
		})
	}
}

func TestOwnerIsTheControllerReference(t *testing.T) {
	ctrl, notCtrl := true, false
	pod := st.MakePod("p").Obj()
	pod.Metadata.OwnerReferences = []*api.OwnerReference{{Uid: "other", Controller: &notCtrl}, {Uid: "rs", Controller: &ctrl}}
	if got := framework.ControllerUID(pod.Metadata); got != "rs" {
		t.Errorf("ControllerUID = %q, want rs", got)
	}
}
