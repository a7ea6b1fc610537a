package nodeready

import (
	"testing"

	st "github.com/skiff-dev/skiff/scheduler/schedtest"
)

func TestFilterPassesOnlyReadyNodes(t *testing.T) {
	tests := []struct {
		name string
		node *st.NodeWrapper
		want bool
	}{
		{"Ready=True", st.MakeNode("n"), true},
		{"Ready=False", st.MakeNode("n").Ready("False"), false},
		{"Ready=Unknown (kubelet stopped reporting)", st.MakeNode("n").Ready("Unknown"), false},
		{"no conditions yet", st.MakeNode("n").NoConditions(), false},
	}
	p := New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := p.Filter(st.PodInfo(t, st.MakePod("p").Obj()), st.NodeInfo(t, tt.node.Obj()))
			if (s == nil) != tt.want {
				t.Fatalf("Filter = %v, want fits=%v", s, tt.want)
			}
			if s != nil && s.Message() != ErrReasonNotReady {
				t.Errorf("reason = %q, want %q", s.Message(), ErrReasonNotReady)
			}
		})
	}
}
