package nodeaffinity

import (
	"slices"
	"testing"

	"github.com/skiff-dev/skiff/proto/api"
	st "github.com/skiff-dev/skiff/scheduler/schedtest"
)

func TestFilterMatchesNodeSelectorAndRequiredAffinity(t *testing.T) {
	node := st.MakeNode("node-1").Label("zone", "a").Label("disk", "ssd").Label("cores", "8")
	tests := []struct {
		name string
		pod  *st.PodWrapper
		want bool
	}{
		{"no selector", st.MakePod("p"), true},
		{"nodeSelector matches", st.MakePod("p").NodeSelector(map[string]string{"zone": "a", "disk": "ssd"}), true},
		{"nodeSelector value differs", st.MakePod("p").NodeSelector(map[string]string{"zone": "b"}), false},
		{"nodeSelector label missing", st.MakePod("p").NodeSelector(map[string]string{"gpu": "true"}), false},
		{"In matches", st.MakePod("p").RequiredAffinity(st.Term(st.Expr("zone", OpIn, "a", "b"))), true},
		{"In does not match", st.MakePod("p").RequiredAffinity(st.Term(st.Expr("zone", OpIn, "b", "c"))), false},
		{"In on a missing label", st.MakePod("p").RequiredAffinity(st.Term(st.Expr("gpu", OpIn, "true"))), false},
		{"NotIn matches", st.MakePod("p").RequiredAffinity(st.Term(st.Expr("zone", OpNotIn, "b"))), true},
		{"NotIn excludes", st.MakePod("p").RequiredAffinity(st.Term(st.Expr("zone", OpNotIn, "a"))), false},
		{"NotIn on a missing label matches", st.MakePod("p").RequiredAffinity(st.Term(st.Expr("gpu", OpNotIn, "true"))), true},
		{"Exists", st.MakePod("p").RequiredAffinity(st.Term(st.Expr("disk", OpExists))), true},
		{"Exists on a missing label", st.MakePod("p").RequiredAffinity(st.Term(st.Expr("gpu", OpExists))), false},
		{"DoesNotExist", st.MakePod("p").RequiredAffinity(st.Term(st.Expr("gpu", OpDoesNotExist))), true},
		{"DoesNotExist on a present label", st.MakePod("p").RequiredAffinity(st.Term(st.Expr("disk", OpDoesNotExist))), false},
		{"Gt true", st.MakePod("p").RequiredAffinity(st.Term(st.Expr("cores", OpGt, "4"))), true},
		{"Gt false", st.MakePod("p").RequiredAffinity(st.Term(st.Expr("cores", OpGt, "8"))), false},
		{"Lt true", st.MakePod("p").RequiredAffinity(st.Term(st.Expr("cores", OpLt, "16"))), true},
		{"Lt false", st.MakePod("p").RequiredAffinity(st.Term(st.Expr("cores", OpLt, "8"))), false},
		{"Gt on a non-integer label", st.MakePod("p").RequiredAffinity(st.Term(st.Expr("zone", OpGt, "1"))), false},
		{"Gt with two values", st.MakePod("p").RequiredAffinity(st.Term(st.Expr("cores", OpGt, "1", "2"))), false},
		{"expressions in a term are ANDed", st.MakePod("p").RequiredAffinity(st.Term(st.Expr("zone", OpIn, "a"), st.Expr("disk", OpIn, "hdd"))), false},
		{"terms are ORed", st.MakePod("p").RequiredAffinity(st.Term(st.Expr("zone", OpIn, "b")), st.Term(st.Expr("disk", OpIn, "ssd"))), true},
		{"an empty term matches nothing", st.MakePod("p").RequiredAffinity(&api.NodeSelectorTerm{}), false},
		{"no terms match nothing", st.MakePod("p").RequiredAffinity(), false},
		{"matchFields on metadata.name", st.MakePod("p").RequiredAffinity(&api.NodeSelectorTerm{MatchFields: []*api.NodeSelectorRequirement{st.Expr("metadata.name", OpIn, "node-1")}}), true},
		{"matchFields on another name", st.MakePod("p").RequiredAffinity(&api.NodeSelectorTerm{MatchFields: []*api.NodeSelectorRequirement{st.Expr("metadata.name", OpIn, "node-2")}}), false},
		{"nodeSelector and affinity must both hold", st.MakePod("p").NodeSelector(map[string]string{"zone": "b"}).RequiredAffinity(st.Term(st.Expr("disk", OpExists))), false},
	}
	p := New()
	ni := st.NodeInfo(t, node.Obj())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := p.Filter(st.PodInfo(t, tt.pod.Obj()), ni)
			if (s == nil) != tt.want {
				t.Fatalf("Filter = %v, want fits=%v", s, tt.want)
			}
			if s != nil && s.Message() != ErrReasonPod {
				t.Errorf("reason = %q, want %q", s.Message(), ErrReasonPod)
			}
		})
	}
}

func TestScoreSumsMatchingPreferredTermWeights(t *testing.T) {
	pod := st.PodInfo(t, st.MakePod("p").
		PreferredAffinity(80, st.Term(st.Expr("zone", OpIn, "a"))).
		PreferredAffinity(20, st.Term(st.Expr("disk", OpIn, "ssd"))).Obj())
	nodes := []*st.NodeWrapper{
		st.MakeNode("both").Label("zone", "a").Label("disk", "ssd"),
		st.MakeNode("zone").Label("zone", "a"),
		st.MakeNode("disk").Label("disk", "ssd"),
		st.MakeNode("none"),
	}
	p := New()
	scores := make([]int64, len(nodes))
	for i, n := range nodes {
		scores[i] = p.Score(pod, st.NodeInfo(t, n.Obj()))
	}
	if want := []int64{100, 80, 20, 0}; !slices.Equal(scores, want) {
		t.Fatalf("raw scores = %v, want %v", scores, want)
	}
	p.NormalizeScores(pod, scores)
	if want := []int64{100, 80, 20, 0}; !slices.Equal(scores, want) {
		t.Errorf("normalized scores = %v, want %v", scores, want)
	}
}
