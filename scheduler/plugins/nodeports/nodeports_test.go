package nodeports

import (
	"testing"

	"github.com/skiff-dev/skiff/proto/api"
	st "github.com/skiff-dev/skiff/scheduler/schedtest"
)

func TestFilterRejectsHostPortConflicts(t *testing.T) {
	tests := []struct {
		name     string
		existing []*api.Pod
		pod      *st.PodWrapper
		want     bool
	}{
		{"no host ports", []*api.Pod{st.MakePod("a").HostPort("", "TCP", 80).Obj()}, st.MakePod("p"), true},
		{"free port", []*api.Pod{st.MakePod("a").HostPort("", "TCP", 80).Obj()}, st.MakePod("p").HostPort("", "TCP", 8080), true},
		{"same port and protocol", []*api.Pod{st.MakePod("a").HostPort("", "TCP", 80).Obj()}, st.MakePod("p").HostPort("", "TCP", 80), false},
		{"protocol defaults to TCP", []*api.Pod{st.MakePod("a").HostPort("", "", 80).Obj()}, st.MakePod("p").HostPort("", "TCP", 80), false},
		{"same port, other protocol", []*api.Pod{st.MakePod("a").HostPort("", "TCP", 53).Obj()}, st.MakePod("p").HostPort("", "UDP", 53), true},
		{"different host IPs", []*api.Pod{st.MakePod("a").HostPort("10.0.0.1", "TCP", 80).Obj()}, st.MakePod("p").HostPort("10.0.0.2", "TCP", 80), true},
		{"wildcard IP overlaps a specific IP", []*api.Pod{st.MakePod("a").HostPort("10.0.0.1", "TCP", 80).Obj()}, st.MakePod("p").HostPort("0.0.0.0", "TCP", 80), false},
		{"specific IP overlaps a wildcard", []*api.Pod{st.MakePod("a").HostPort("", "TCP", 80).Obj()}, st.MakePod("p").HostPort("10.0.0.2", "TCP", 80), false},
	}
	p := New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := p.Filter(st.PodInfo(t, tt.pod.Obj()), st.NodeInfo(t, st.MakeNode("n").Obj(), tt.existing...))
			if (s == nil) != tt.want {
				t.Fatalf("Filter = %v, want fits=%v", s, tt.want)
			}
			if s != nil && s.Message() != ErrReason {
				t.Errorf("reason = %q, want %q", s.Message(), ErrReason)
			}
		})
	}
}

func TestRemovedPodFreesItsPort(t *testing.T) {
	holder := st.MakePod("a").HostPort("", "TCP", 80).Obj()
	ni := st.NodeInfo(t, st.MakeNode("n").Obj(), holder)
	pod := st.PodInfo(t, st.MakePod("p").HostPort("", "TCP", 80).Obj())
	p := New()
	if p.Filter(pod, ni) == nil {
		t.Fatal("port 80 should be taken")
	}
	ni.RemovePod(st.PodInfo(t, holder))
	if s := p.Filter(pod, ni); s != nil {
		t.Fatalf("port 80 should be free after the holder left: %v", s)
	}
}
