package cache

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"

	"github.com/skiff-dev/skiff/scheduler/framework"
	st "github.com/skiff-dev/skiff/scheduler/schedtest"
)

func newTestCache(t *testing.T) (*Cache, *testingclock.FakeClock) {
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	return New(30*time.Second, clk, nil), clk
}

func requested(t *testing.T, c *Cache, node string) framework.Resource {
	t.Helper()
	s := NewSnapshot()
	c.UpdateSnapshot(s)
	n, ok := s.Get(node)
	if !ok {
		t.Fatalf("node %s not in snapshot", node)
	}
	r := n.Requested
	r.Pods = n.PodCount
	return r
}

func TestAssumeConfirmForgetExpire(t *testing.T) {
	type step func(t *testing.T, c *Cache, clk *testingclock.FakeClock)
	pod := st.MakePod("p").Req("1", "1Gi")
	assume := func(t *testing.T, c *Cache, _ *testingclock.FakeClock) {
		if err := c.AssumePod(st.PodInfo(t, pod.Obj()), "n1"); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name       string
		steps      []step
		wantCPU    int64
		wantPods   int64
		wantInList bool // the pod is still in the cache
	}{
		{"assumed pod counts at once", []step{assume}, 1000, 1, true},
		{"forgotten pod is uncounted", []step{assume, func(t *testing.T, c *Cache, _ *testingclock.FakeClock) { c.ForgetPod("default/p") }}, 0, 0, false},
		{"confirmed pod is counted once", []step{assume, func(t *testing.T, c *Cache, _ *testingclock.FakeClock) {
			c.AddPod(st.PodInfo(t, st.MakePod("p").Req("1", "1Gi").Node("n1").Obj()))
		}}, 1000, 1, true},
		{"assumed pod does not expire while Bind is in flight", []step{assume, func(t *testing.T, c *Cache, clk *testingclock.FakeClock) {
			clk.Step(time.Hour)
			c.CleanupExpiredAssumedPods()
		}}, 1000, 1, true},
		{"assumed pod expires ttl after binding finished unconfirmed", []step{assume, func(t *testing.T, c *Cache, clk *testingclock.FakeClock) {
			c.FinishBinding("default/p")
			clk.Step(29 * time.Second)
			c.CleanupExpiredAssumedPods()
			if !c.IsAssumed("default/p") {
				t.Fatal("expired before the ttl")
			}
			clk.Step(2 * time.Second)
			c.CleanupExpiredAssumedPods()
		}}, 0, 0, false},
		{"confirmed pod never expires", []step{assume, func(t *testing.T, c *Cache, clk *testingclock.FakeClock) {
			c.FinishBinding("default/p")
			c.AddPod(st.PodInfo(t, st.MakePod("p").Req("1", "1Gi").Node("n1").Obj()))
			clk.Step(time.Hour)
			c.CleanupExpiredAssumedPods()
		}}, 1000, 1, true},
		{"forget after confirmation is a no-op", []step{assume, func(t *testing.T, c *Cache, _ *testingclock.FakeClock) {
			c.AddPod(st.PodInfo(t, st.MakePod("p").Req("1", "1Gi").Node("n1").Obj()))
			c.ForgetPod("default/p")
		}}, 1000, 1, true},
		{"removed pod frees its node", []step{assume, func(t *testing.T, c *Cache, _ *testingclock.FakeClock) {
			c.AddPod(st.PodInfo(t, st.MakePod("p").Req("1", "1Gi").Node("n1").Obj()))
			c.RemovePod("default/p")
		}}, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := newTestCache(t)
			if err := c.AddNode(st.MakeNode("n1").Obj()); err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.steps {
				s(t, c, clk)
			}
			r := requested(t, c, "n1")
			if r.MilliCPU != tt.wantCPU || r.Pods != tt.wantPods {
				t.Errorf("n1 requested %dm cpu, %d pods; want %dm, %d", r.MilliCPU, r.Pods, tt.wantCPU, tt.wantPods)
			}
			if _, ok := c.PodNode("default/p"); ok != tt.wantInList {
				t.Errorf("pod in cache = %v, want %v", ok, tt.wantInList)
			}
		})
	}
}

func TestAssumingTwiceIsAnError(t *testing.T) {
	c, _ := newTestCache(t)
	p := st.PodInfo(t, st.MakePod("p").Obj())
	if err := c.AssumePod(p, "n1"); err != nil {
		t.Fatal(err)
	}
	if err := c.AssumePod(p, "n2"); err == nil {
		t.Fatal("second AssumePod succeeded")
	}
}

func TestPodBoundElsewhereThanAssumedMoves(t *testing.T) {
	c, _ := newTestCache(t)
	for _, n := range []string{"n1", "n2"} {
		if err := c.AddNode(st.MakeNode(n).Obj()); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.AssumePod(st.PodInfo(t, st.MakePod("p").Req("1", "").Obj()), "n1"); err != nil {
		t.Fatal(err)
	}
	c.AddPod(st.PodInfo(t, st.MakePod("p").Req("1", "").Node("n2").Obj()))
	if r := requested(t, c, "n1"); r.MilliCPU != 0 {
		t.Errorf("n1 still counts %dm", r.MilliCPU)
	}
	if r := requested(t, c, "n2"); r.MilliCPU != 1000 {
		t.Errorf("n2 counts %dm, want 1000m", r.MilliCPU)
	}
}

func TestPodsBeforeTheirNodeAreCountedWhenItArrives(t *testing.T) {
	c, _ := newTestCache(t)
	c.AddPod(st.PodInfo(t, st.MakePod("p").Req("1", "").Node("late").Obj()))
	s := NewSnapshot()
	c.UpdateSnapshot(s)
	if len(s.Nodes()) != 0 {
		t.Fatalf("a node without a Node object is schedulable: %d nodes", len(s.Nodes()))
	}
	if err := c.AddNode(st.MakeNode("late").Obj()); err != nil {
		t.Fatal(err)
	}
	c.UpdateSnapshot(s)
	n, ok := s.Get("late")
	if !ok || n.Requested.MilliCPU != 1000 {
		t.Fatalf("late node = %+v, %v; want 1000m requested", n, ok)
	}
}

func TestSnapshotCopiesOnlyChangedNodesAndTracksRemoval(t *testing.T) {
	c, _ := newTestCache(t)
	for _, n := range []string{"a", "b", "c"} {
		if err := c.AddNode(st.MakeNode(n).Obj()); err != nil {
			t.Fatal(err)
		}
	}
	s := NewSnapshot()
	c.UpdateSnapshot(s)
	if got := names(s); got != "a,b,c" {
		t.Fatalf("nodes = %s", got)
	}
	a0, _ := s.Get("a")
	aGen := a0.Generation
	if err := c.AssumePod(st.PodInfo(t, st.MakePod("p").Req("1", "").Obj()), "b"); err != nil {
		t.Fatal(err)
	}
	c.UpdateSnapshot(s)
	b1, _ := s.Get("b")
	if b1.Requested.MilliCPU != 1000 {
		t.Errorf("b not refreshed: %dm", b1.Requested.MilliCPU)
	}
	if a1, _ := s.Get("a"); a1.Generation != aGen {
		t.Errorf("unchanged node a was copied again")
	}
	c.RemoveNode("a")
	c.UpdateSnapshot(s)
	if got := names(s); got != "b,c" {
		t.Fatalf("after removing a: nodes = %s", got)
	}
	// The snapshot is a copy: cache changes after UpdateSnapshot do not
	// show until the next one.
	c.ForgetPod("default/p")
	if b, _ := s.Get("b"); b.Requested.MilliCPU != 1000 {
		t.Errorf("snapshot changed under the cycle")
	}
}

func names(s *Snapshot) string {
	out := ""
	for i, n := range s.Nodes() {
		if i > 0 {
			out += ","
		}
		out += n.Name()
	}
	return out
}

func TestNodeUpdateReparsesAllocatable(t *testing.T) {
	c, _ := newTestCache(t)
	if err := c.AddNode(st.MakeNode("n").Allocatable("1", "1Gi", "10").Obj()); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateNode(st.MakeNode("n").Allocatable("8", "1Gi", "10").Obj()); err != nil {
		t.Fatal(err)
	}
	s := NewSnapshot()
	c.UpdateSnapshot(s)
	if n, _ := s.Get("n"); n.Allocatable.MilliCPU != 8000 {
		t.Errorf("allocatable cpu = %dm, want 8000m", n.Allocatable.MilliCPU)
	}
	if err := c.UpdateNode(st.MakeNode("n").Allocatable("x", "1Gi", "10").Obj()); err == nil {
		t.Errorf("bad allocatable accepted")
	}
}

func TestIncrementalSnapshotMatchesAFreshOne(t *testing.T) {
	c, _ := newTestCache(t)
	rng := rand.New(rand.NewPCG(7, 11))
	incremental := NewSnapshot()
	for step := 0; step < 3000; step++ {
		node := fmt.Sprintf("n%d", rng.IntN(12))
		pod := fmt.Sprintf("p%d", rng.IntN(60))
		switch rng.IntN(7) {
		case 0:
			if err := c.AddNode(st.MakeNode(node).Obj()); err != nil {
				t.Fatal(err)
			}
		case 1:
			c.RemoveNode(node)
		case 2:
			_ = c.AssumePod(st.PodInfo(t, st.MakePod(pod).Req("100m", "1Mi").Owner("rs").Obj()), node)
		case 3:
			c.ForgetPod("default/" + pod)
		case 4:
			c.AddPod(st.PodInfo(t, st.MakePod(pod).Req("200m", "").Node(node).Obj()))
		case 5:
			c.RemovePod("default/" + pod)
		case 6:
			c.UpdateSnapshot(incremental)
		}
		if step%50 != 49 {
			continue
		}
		c.UpdateSnapshot(incremental)
		fresh := NewSnapshot()
		c.UpdateSnapshot(fresh)
		if a, b := describe(incremental), describe(fresh); a != b {
			t.Fatalf("step %d: incremental snapshot\n%s\ndiffers from a fresh one\n%s", step, a, b)
		}
	}
}

func describe(s *Snapshot) string {
	out := ""
	for _, n := range s.Nodes() {
		out += fmt.Sprintf("%s cpu=%d mem=%d pods=%d owners=%v\n", n.Name(), n.Requested.MilliCPU, n.Requested.Memory, n.PodCount, n.OwnerPods)
	}
	return out
}
