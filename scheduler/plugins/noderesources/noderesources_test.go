package noderesources

import (
	"testing"

	"github.com/skiff-dev/skiff/proto/api"
	st "github.com/skiff-dev/skiff/scheduler/schedtest"
)

func TestFitCountsRequestsAgainstAllocatable(t *testing.T) {
	node := st.MakeNode("n").Allocatable("2", "4Gi", "3")
	tests := []struct {
		name     string
		existing []*api.Pod
		pod      *st.PodWrapper
		reasons  string
	}{
		{"empty node", nil, st.MakePod("p").Req("1", "1Gi"), ""},
		{"exactly fills the node", []*api.Pod{st.MakePod("a").Req("1500m", "3Gi").Obj()}, st.MakePod("p").Req("500m", "1Gi"), ""},
		{"cpu short", []*api.Pod{st.MakePod("a").Req("1500m", "1Gi").Obj()}, st.MakePod("p").Req("600m", "1Gi"), ReasonInsufficientCPU},
		{"memory short", []*api.Pod{st.MakePod("a").Req("100m", "3500Mi").Obj()}, st.MakePod("p").Req("100m", "1Gi"), ReasonInsufficientMemory},
		{"both short", []*api.Pod{st.MakePod("a").Req("2", "4Gi").Obj()}, st.MakePod("p").Req("1m", "1Mi"), ReasonInsufficientCPU + ", " + ReasonInsufficientMemory},
		{"a pod with no requests fits a full node", []*api.Pod{st.MakePod("a").Req("2", "4Gi").Obj()}, st.MakePod("p"), ""},
		{"pod count at allocatable", []*api.Pod{st.MakePod("a").Obj(), st.MakePod("b").Obj(), st.MakePod("c").Obj()}, st.MakePod("p"), ReasonTooManyPods},
		{"containers add up", nil, st.MakePod("p").Req("1", "").Container("c2", "1500m", ""), ReasonInsufficientCPU},
		{"an init container larger than the sum counts", nil, st.MakePod("p").Req("100m", "").InitContainer("init", "3", ""), ReasonInsufficientCPU},
		{"an init container smaller than the sum does not add", nil, st.MakePod("p").Req("1500m", "").InitContainer("init", "1", ""), ""},
	}
	f := NewFit()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := f.Filter(st.PodInfo(t, tt.pod.Obj()), st.NodeInfo(t, node.Obj(), tt.existing...))
			if got := s.Message(); got != tt.reasons {
				t.Errorf("Filter reasons = %q, want %q", got, tt.reasons)
			}
		})
	}
}

func TestFitOnANodeWithoutAllocatableRejectsEverything(t *testing.T) {
	node := st.MakeNode("n").Obj()
	node.Status.Allocatable = nil
	s := NewFit().Filter(st.PodInfo(t, st.MakePod("p").Req("1", "").Obj()), st.NodeInfo(t, node))
	if got, want := s.Message(), ReasonTooManyPods+", "+ReasonInsufficientCPU; got != want {
		t.Errorf("reasons = %q, want %q", got, want)
	}
}

func TestLeastAllocatedPrefersEmptierNodes(t *testing.T) {
	tests := []struct {
		name     string
		pod      *st.PodWrapper
		node     *st.NodeWrapper
		existing []*api.Pod
		want     int64
	}{
		// (4-1)/4 = 75, (8-2)/8 = 75 → 75
		{"empty node", st.MakePod("p").Req("1", "2Gi"), st.MakeNode("n"), nil, 75},
		// cpu (4-3)/4 = 25, mem (8-4)/8 = 50 → 37
		{"half used", st.MakePod("p").Req("1", "2Gi"), st.MakeNode("n"), []*api.Pod{st.MakePod("a").Req("2", "2Gi").Obj()}, 37},
		// cpu over allocatable scores 0; mem (8-2)/8 = 75 → 37
		{"cpu over", st.MakePod("p").Req("1", "2Gi"), st.MakeNode("n").Allocatable("500m", "8Gi", "110"), nil, 37},
		// two request-less pods count 100m of 1 cpu → 80 and 400Mi of 2000Mi → 80
		{"request-less pods count at the defaults", st.MakePod("p"), st.MakeNode("n").Allocatable("1", "2000Mi", "110"), []*api.Pod{st.MakePod("a").Obj()}, 80},
	}
	l := NewLeastAllocated()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := l.Score(st.PodInfo(t, tt.pod.Obj()), st.NodeInfo(t, tt.node.Obj(), tt.existing...)); got != tt.want {
				t.Errorf("Score = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestBalancedAllocationPrefersEqualCPUAndMemoryShares(t *testing.T) {
	tests := []struct {
		name string
		pod  *st.PodWrapper
		want int64
	}{
		// cpu 2/4 = .5, mem 4/8 = .5 → std 0 → 100
		{"balanced", st.MakePod("p").Req("2", "4Gi"), 100},
		// cpu 4/4 = 1, mem 0 → std .5 → 50
		{"all cpu", st.MakePod("p").Req("4", ""), 50},
		// cpu 1/4 = .25, mem 6/8 = .75 → std .25 → 75
		{"memory heavy", st.MakePod("p").Req("1", "6Gi"), 75},
		// fractions are capped at 1: cpu 8/4 → 1, mem .5 → 75
		{"over-committed", st.MakePod("p").Req("8", "4Gi"), 75},
	}
	b := NewBalancedAllocation()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := b.Score(st.PodInfo(t, tt.pod.Obj()), st.NodeInfo(t, st.MakeNode("n").Obj())); got != tt.want {
				t.Errorf("Score = %d, want %d", got, tt.want)
			}
		})
	}
}
