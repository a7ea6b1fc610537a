package scheduler

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/events"
	"github.com/skiff-dev/skiff/proto/api"
	"github.com/skiff-dev/skiff/scheduler/config"
	st "github.com/skiff-dev/skiff/scheduler/schedtest"
)

// scriptedBinder fails the first failures calls with err, then succeeds.
type scriptedBinder struct {
	mu       sync.Mutex
	failures int
	err      error
	calls    []string // "pod→node"
}

func (b *scriptedBinder) Bind(_ context.Context, namespace, name, _, node string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, namespace+"/"+name+"→"+node)
	if len(b.calls) <= b.failures {
		return b.err
	}
	return nil
}

func (b *scriptedBinder) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.calls)
}

// offlineScheduler is a Scheduler whose caches the test feeds by calling
// the informer handlers; its client is never used.
func offlineScheduler(t *testing.T, binder Binder) (*Scheduler, *events.FakeRecorder) {
	t.Helper()
	conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rec := events.NewFakeRecorder(100)
	cfg := config.Default()
	s, err := New(Options{Config: cfg, Client: client.New(conn), Recorder: rec, Binder: binder, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return s, rec
}

func TestFailedBindingForgetsTheAssumptionAndRetriesWithBackoff(t *testing.T) {
	binder := &scriptedBinder{failures: 1, err: status.Error(codes.Unavailable, "apiserver restarting")}
	s, rec := offlineScheduler(t, binder)
	s.onNodeAdd(st.MakeNode("n1").Allocatable("1", "1Gi", "10").Obj())
	s.onPodAdd(st.MakePod("p").Req("1", "").Obj())

	ctx := context.Background()
	s.scheduleOne(ctx)
	s.background.Wait()
	if binder.count() != 1 {
		t.Fatalf("Bind called %d times, want 1", binder.count())
	}
	if _, ok := s.cache.PodNode("default/p"); ok {
		t.Fatal("the assumption outlived the failed binding: n1 would look full")
	}
	if w := s.queue.Where("default/p"); w != "backoff" {
		t.Fatalf("pod in %q after a failed binding, want backoff", w)
	}
	if ev := <-rec.Events; ev != "Warning FailedScheduling Binding rejected: rpc error: code = Unavailable desc = apiserver restarting" {
		t.Errorf("event %q", ev)
	}

	deadline := time.Now().Add(5 * time.Second)
	for s.queue.Where("default/p") != "active" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		s.queue.FlushBackoffCompleted()
	}
	s.scheduleOne(ctx)
	s.background.Wait()
	if binder.count() != 2 {
		t.Fatalf("Bind called %d times, want a retry", binder.count())
	}
	if n, ok := s.cache.PodNode("default/p"); !ok || n != "n1" || !s.cache.IsAssumed("default/p") {
		t.Fatalf("pod assumed on %q (%v), want n1", n, ok)
	}
	if ev := <-rec.Events; ev != "Normal Scheduled Successfully assigned default/p to n1" {
		t.Errorf("event %q", ev)
	}
}

func TestAssumedPodBlocksTheNodeUntilConfirmed(t *testing.T) {
	release := make(chan struct{})
	s, _ := offlineScheduler(t, blockingBinder{release})
	s.onNodeAdd(st.MakeNode("n1").Allocatable("1", "1Gi", "10").Obj())
	s.onPodAdd(st.MakePod("a").Req("600m", "").Obj())
	s.onPodAdd(st.MakePod("b").Req("600m", "").Obj())
	ctx := context.Background()
	s.scheduleOne(ctx) // a: assumed, Bind in flight
	s.scheduleOne(ctx) // b: must not fit while a's Bind is in flight
	if w := s.queue.Where("default/b"); w != "unschedulable" && w != "backoff" {
		t.Errorf("b is in %q: the node was double-booked", w)
	}
	close(release)
	s.background.Wait()
}

type blockingBinder struct{ release chan struct{} }

func (b blockingBinder) Bind(ctx context.Context, _, _, _, _ string) error {
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestHandlersKeepTheCacheAndQueueCurrent(t *testing.T) {
	s, _ := offlineScheduler(t, &scriptedBinder{})
	s.onNodeAdd(st.MakeNode("n1").Allocatable("1", "1Gi", "10").Obj())
	running := st.MakePod("running").Req("1", "").Node("n1").Obj()
	s.onPodAdd(running)
	s.onPodAdd(st.MakePod("waiting").Req("1", "").Obj())
	s.onPodAdd(st.MakePod("other").Obj())
	other := st.MakePod("other-scheduler").Obj()
	other.Spec.SchedulerName = "my-scheduler"
	s.onPodAdd(other)
	if w := s.queue.Where("default/other-scheduler"); w != "" {
		t.Errorf("a pod for another scheduler was queued in %q", w)
	}

	ctx := context.Background()
	for s.queue.Len().Active > 0 {
		s.scheduleOne(ctx)
	}
	s.background.Wait()
	if w := s.queue.Where("default/waiting"); w != "unschedulable" {
		t.Fatalf("waiting is in %q, want unschedulable (n1 is full)", w)
	}

	// A heartbeat changes nothing that could help.
	hb := st.MakeNode("n1").Allocatable("1", "1Gi", "10").Obj()
	hb.Status.Conditions[0].LastHeartbeatTime = nil
	s.onNodeUpdate(st.MakeNode("n1").Allocatable("1", "1Gi", "10").Obj(), hb)
	if w := s.queue.Where("default/waiting"); w != "unschedulable" {
		t.Fatalf("a heartbeat moved waiting to %q", w)
	}

	// The running pod finishes: its requests no longer count.
	done := st.MakePod("running").Req("1", "").Node("n1").Obj()
	done.Status.Phase = "Succeeded"
	s.onPodUpdate(running, done)
	if _, ok := s.cache.PodNode("default/running"); ok {
		t.Error("a Succeeded pod still counts on its node")
	}
	if w := s.queue.Where("default/waiting"); w != "active" && w != "backoff" {
		t.Errorf("freeing n1 left waiting in %q", w)
	}

	// A pending pod that gets a deletionTimestamp leaves the queue.
	deleting := st.MakePod("other").Obj()
	deleting.Metadata.DeletionTimestamp = timestamppb.Now()
	s.onPodUpdate(st.MakePod("other").Obj(), deleting)
	if w := s.queue.Where("default/other"); w != "" {
		t.Errorf("a terminating pending pod is still queued in %q", w)
	}
}

func TestNodeUpdateMayHelp(t *testing.T) {
	base := func() *api.Node { return st.MakeNode("n").Obj() }
	tests := []struct {
		name string
		old  *api.Node
		cur  func(*api.Node)
		want bool
	}{
		{"heartbeat only", base(), func(n *api.Node) { n.Status.Conditions[0].Message = "still here" }, false},
		{"uncordoned", st.MakeNode("n").Unschedulable().Obj(), func(n *api.Node) {}, true},
		{"cordoned", base(), func(n *api.Node) { n.Spec.Unschedulable = true }, false},
		{"became Ready", st.MakeNode("n").Ready("False").Obj(), func(n *api.Node) {}, true},
		{"became NotReady", base(), func(n *api.Node) { n.Status.Conditions[0].Status = "False" }, false},
		{"more allocatable", base(), func(n *api.Node) { n.Status.Allocatable["cpu"] = "8" }, true},
		{"label added", base(), func(n *api.Node) { n.Metadata.Labels["disk"] = "ssd" }, true},
		{"taint removed", st.MakeNode("n").Taint("k", "v", "NoSchedule").Obj(), func(n *api.Node) {}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur := base()
			tt.cur(cur)
			if got := nodeUpdateMayHelp(tt.old, cur); got != tt.want {
				t.Errorf("nodeUpdateMayHelp = %v, want %v", got, tt.want)
			}
		})
	}
}
