package framework_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/skiff-dev/skiff/scheduler/framework"
	"github.com/skiff-dev/skiff/scheduler/plugins"
	st "github.com/skiff-dev/skiff/scheduler/schedtest"
)

func defaultFramework(t *testing.T, parallelism, percentage int) *framework.Framework {
	t.Helper()
	scores, err := plugins.Scores(map[string]int64{"NodeResourcesLeastAllocated": 1, "NodeResourcesBalancedAllocation": 1, "PodTopologySpread": 2})
	if err != nil {
		t.Fatal(err)
	}
	return framework.New(plugins.Filters(), scores, framework.Options{
		Parallelism: parallelism, PercentageOfNodesToScore: percentage, Rand: rand.New(rand.NewPCG(1, 2)),
	})
}

func TestFitErrorMessageIsKubernetesForm(t *testing.T) {
	nodes := []*framework.NodeInfo{
		st.NodeInfo(t, st.MakeNode("busy-1").Allocatable("1", "8Gi", "110").Obj()),
		st.NodeInfo(t, st.MakeNode("busy-2").Allocatable("1", "8Gi", "110").Obj()),
		st.NodeInfo(t, st.MakeNode("cordoned").Unschedulable().Obj()),
	}
	pod := st.PodInfo(t, st.MakePod("p").Req("2", "").Obj())
	_, err := defaultFramework(t, 1, 0).Schedule(context.Background(), pod, nodes)
	var fe *framework.FitError
	if !errors.As(err, &fe) {
		t.Fatalf("Schedule error = %v, want a FitError", err)
	}
	want := "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu."
	if err.Error() != want {
		t.Errorf("message = %q\nwant      %q", err.Error(), want)
	}
}

func TestFitErrorCountsEveryReasonOfANode(t *testing.T) {
	fe := &framework.FitError{NumAllNodes: 4, Reasons: map[string]int{
		"Insufficient cpu": 2, "Insufficient memory": 1, "node(s) had untolerated taint {a: b}": 1, "node(s) were not ready": 1,
	}}
	want := "0/4 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint {a: b}, 1 node(s) were not ready, 2 Insufficient cpu."
	if fe.Error() != want {
		t.Errorf("message = %q\nwant      %q", fe.Error(), want)
	}
	if got := (&framework.FitError{}).Error(); got != "no nodes available to schedule pods" {
		t.Errorf("empty cluster message = %q", got)
	}
}

func TestScheduleWithNoNodesIsAFitError(t *testing.T) {
	_, err := defaultFramework(t, 1, 0).Schedule(context.Background(), st.PodInfo(t, st.MakePod("p").Obj()), nil)
	var fe *framework.FitError
	if !errors.As(err, &fe) || err.Error() != "no nodes available to schedule pods" {
		t.Fatalf("err = %v", err)
	}
}

func TestSchedulePicksTheBestScoringFeasibleNode(t *testing.T) {
	nodes := []*framework.NodeInfo{
		st.NodeInfo(t, st.MakeNode("full").Obj(), st.MakePod("a").Req("3", "6Gi").Obj()),
		st.NodeInfo(t, st.MakeNode("not-ready").Ready("False").Obj()),
		st.NodeInfo(t, st.MakeNode("empty").Obj()),
		st.NodeInfo(t, st.MakeNode("half").Obj(), st.MakePod("b").Req("2", "4Gi").Obj()),
	}
	pod := st.PodInfo(t, st.MakePod("p").Req("500m", "1Gi").Obj())
	res, err := defaultFramework(t, 1, 0).Schedule(context.Background(), pod, nodes)
	if err != nil {
		t.Fatal(err)
	}
	if res.SuggestedHost != "empty" || res.FeasibleNodes != 3 || res.EvaluatedNodes != 4 {
		t.Errorf("result = %+v, want host empty, 3 feasible of 4", res)
	}
}

func TestNumFeasibleNodesToFind(t *testing.T) {
	tests := []struct {
		percentage, nodes, want int
	}{
		{0, 10, 10},     // small clusters: every node
		{0, 99, 99},     // below the 100-node floor
		{0, 1000, 420},  // adaptive: 50 - 1000/125 = 42%
		{0, 5000, 500},  // 50 - 40 = 10%
		{0, 10000, 500}, // floor of 5%
		{0, 150, 100},   // never fewer than 100
		{30, 1000, 300}, // configured
		{100, 1000, 1000},
		{1, 1000, 100}, // configured below the floor
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d%%_of_%d", tt.percentage, tt.nodes), func(t *testing.T) {
			if got := framework.NumFeasibleNodesToFind(tt.percentage, tt.nodes); got != tt.want {
				t.Errorf("NumFeasibleNodesToFind = %d, want %d", got, tt.want)
			}
		})
	}
}

func manyNodes(t *testing.T, n int) []*framework.NodeInfo {
	nodes := make([]*framework.NodeInfo, n)
	for i := range nodes {
		nodes[i] = st.NodeInfo(t, st.MakeNode(fmt.Sprintf("node-%04d", i)).Obj())
	}
	return nodes
}

func TestScheduleSamplesLargeClustersAndRotatesTheStart(t *testing.T) {
	for _, parallelism := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("parallelism=%d", parallelism), func(t *testing.T) {
			nodes := manyNodes(t, 1000)
			fw := defaultFramework(t, parallelism, 0)
			pod := st.PodInfo(t, st.MakePod("p").Req("100m", "").Obj())
			seen := map[string]bool{}
			for i := 0; i < 5; i++ {
				res, err := fw.Schedule(context.Background(), pod, nodes)
				if err != nil {
					t.Fatal(err)
				}
				if res.FeasibleNodes != 420 {
					t.Errorf("feasible = %d, want the adaptive sample of 420", res.FeasibleNodes)
				}
				if res.EvaluatedNodes < 420 || res.EvaluatedNodes > 1000 {
					t.Errorf("evaluated = %d", res.EvaluatedNodes)
				}
				seen[res.SuggestedHost] = true
			}
			if len(seen) < 2 {
				t.Errorf("five pods on identical nodes all went to %v: the search start or tie-break does not rotate", seen)
			}
		})
	}
}

func TestScheduleInParallelFindsTheOnlyFeasibleNode(t *testing.T) {
	nodes := manyNodes(t, 1000)
	for i, n := range nodes {
		if i != 777 {
			nodes[i] = st.NodeInfo(t, st.MakeNode(n.Name()).Unschedulable().Obj())
		}
	}
	res, err := defaultFramework(t, 2, 0).Schedule(context.Background(), st.PodInfo(t, st.MakePod("p").Obj()), nodes)
	if err != nil {
		t.Fatal(err)
	}
	if res.SuggestedHost != "node-0777" || res.EvaluatedNodes != 1000 {
		t.Errorf("result = %+v, want node-0777 after evaluating all 1000", res)
	}
}

func TestScheduleSpreadsSiblingsOverEqualNodes(t *testing.T) {
	fw := defaultFramework(t, 1, 0)
	nodes := manyNodes(t, 3)
	counts := map[string]int{}
	for i := 0; i < 6; i++ {
		pod := st.PodInfo(t, st.MakePod(fmt.Sprintf("p-%d", i)).Owner("rs").Req("100m", "100Mi").Obj())
		res, err := fw.Schedule(context.Background(), pod, nodes)
		if err != nil {
			t.Fatal(err)
		}
		counts[res.SuggestedHost]++
		for _, n := range nodes {
			if n.Name() == res.SuggestedHost {
				n.AddPod(pod)
			}
		}
	}
	for name, c := range counts {
		if c != 2 {
			t.Errorf("node %s got %d of 6 replicas, want 2 each: %v", name, c, counts)
		}
	}
}

func TestFilterErrorIsNotAFitError(t *testing.T) {
	fw := framework.New([]framework.FilterPlugin{broken{}}, nil, framework.Options{})
	_, err := fw.Schedule(context.Background(), st.PodInfo(t, st.MakePod("p").Obj()), manyNodes(t, 2))
	var fe *framework.FitError
	if err == nil || errors.As(err, &fe) {
		t.Fatalf("err = %v, want a plain error", err)
	}
}

type broken struct{}

func (broken) Name() string { return "Broken" }
func (broken) Filter(*framework.PodInfo, *framework.NodeInfo) *framework.Status {
	return framework.NewStatus(framework.Error, "cannot decide")
}

func TestNewPodInfoRejectsBadQuantities(t *testing.T) {
	_, err := framework.NewPodInfo(st.MakePod("p").Req("lots", "").Obj())
	if err == nil {
		t.Fatal("want an error for cpu \"lots\"")
	}
}

func TestNodeInfoCloneIsIndependent(t *testing.T) {
	ni := st.NodeInfo(t, st.MakeNode("n").Obj(), st.MakePod("a").Owner("rs").HostPort("", "TCP", 80).Obj())
	c := ni.Clone()
	c.AddPod(st.PodInfo(t, st.MakePod("b").Owner("rs").HostPort("", "TCP", 81).Req("1", "").Obj()))
	if ni.OwnerPods["rs"] != 1 || len(ni.UsedPorts) != 1 || ni.Requested.MilliCPU != 0 || ni.PodCount != 1 {
		t.Errorf("original changed with its clone: %+v", ni)
	}
	if c.OwnerPods["rs"] != 2 || len(c.UsedPorts) != 2 || c.PodCount != 2 {
		t.Errorf("clone = %+v", c)
	}
}
