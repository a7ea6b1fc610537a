package nodeunschedulable

import (
	"testing"

	st "github.com/skiff-dev/skiff/scheduler/schedtest"
)

func TestFilterRejectsCordonedNodesUnlessTolerated(t *testing.T) {
	tests := []struct {
		name string
		pod  *st.PodWrapper
		node *st.NodeWrapper
		want bool // fits
	}{
		{"schedulable node", st.MakePod("p"), st.MakeNode("n"), true},
		{"cordoned node", st.MakePod("p"), st.MakeNode("n").Unschedulable(), false},
		{"cordoned node, pod tolerates the unschedulable taint", st.MakePod("p").Toleration(TaintNodeUnschedulable, "Exists", "", "NoSchedule"), st.MakeNode("n").Unschedulable(), true},
		{"cordoned node, toleration for another effect", st.MakePod("p").Toleration(TaintNodeUnschedulable, "Exists", "", "NoExecute"), st.MakeNode("n").Unschedulable(), false},
	}
	p := New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := p.Filter(st.PodInfo(t, tt.pod.Obj()), st.NodeInfo(t, tt.node.Obj()))
			if (s == nil) != tt.want {
				t.Fatalf("Filter = %v, want fits=%v", s, tt.want)
			}
			if s != nil && (s.Message() != ErrReasonUnschedulable || s.Plugin != Name) {
				t.Errorf("status = %q from %q, want %q from %q", s.Message(), s.Plugin, ErrReasonUnschedulable, Name)
			}
		})
	}
}
