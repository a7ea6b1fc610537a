package queue

import (
	"context"
	"fmt"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"

	"github.com/skiff-dev/skiff/scheduler/framework"
	st "github.com/skiff-dev/skiff/scheduler/schedtest"
)

func newTestQueue(t *testing.T) (*Queue, *testingclock.FakeClock) {
	t.Helper()
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	q := New(Options{InitialBackoff: time.Second, MaxBackoff: 10 * time.Second, MaxUnschedulable: 60 * time.Second, Clock: clk})
	t.Cleanup(q.Close)
	return q, clk
}

func pi(t *testing.T, w *st.PodWrapper) *framework.PodInfo { return st.PodInfo(t, w.Obj()) }

func mustPop(t *testing.T, q *Queue) (*QueuedPodInfo, int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	p, cycle, ok := q.Pop(ctx)
	if !ok {
		t.Fatal("Pop: nothing in activeQ")
	}
	return p, cycle
}

func TestActiveQOrdersByPriorityThenFIFO(t *testing.T) {
	q, clk := newTestQueue(t)
	for _, p := range []*st.PodWrapper{
		st.MakePod("low-1"), st.MakePod("high-1").Priority(100), st.MakePod("low-2"),
		st.MakePod("mid").Priority(10), st.MakePod("high-2").Priority(100),
	} {
		q.Add(pi(t, p))
		clk.Step(time.Millisecond)
	}
	var got []string
	for i := 0; i < 5; i++ {
		p, _ := mustPop(t, q)
		got = append(got, p.Pod.Metadata.Name)
	}
	want := "[high-1 high-2 mid low-1 low-2]"
	if fmt.Sprint(got) != want {
		t.Errorf("pop order = %v, want %s", got, want)
	}
}

func TestAddDeduplicatesByKey(t *testing.T) {
	q, _ := newTestQueue(t)
	q.Add(pi(t, st.MakePod("p")))
	q.Add(pi(t, st.MakePod("p").Labels(map[string]string{"v": "2"})))
	q.Add(pi(t, st.MakePod("p").Namespace("other")))
	if l := q.Len(); l.Active != 2 {
		t.Fatalf("lengths = %+v, want 2 active (one per key)", l)
	}
	p, _ := mustPop(t, q)
	if p.Key == "default/p" && p.Pod.Metadata.Labels["v"] != "2" {
		t.Errorf("the queued pod was not updated to its newest version")
	}
}

func TestPopBlocksUntilAddAndUnblocksOnClose(t *testing.T) {
	q, _ := newTestQueue(t)
	got := make(chan string)
	go func() {
		p, _, ok := q.Pop(context.Background())
		if ok {
			got <- p.Key
		} else {
			got <- ""
		}
	}()
	select {
	case k := <-got:
		t.Fatalf("Pop returned %q on an empty queue", k)
	case <-time.After(50 * time.Millisecond):
	}
	q.Add(pi(t, st.MakePod("p")))
	if k := <-got; k != "default/p" {
		t.Fatalf("Pop = %q", k)
	}
	go func() {
		_, _, ok := q.Pop(context.Background())
		if !ok {
			got <- "closed"
		}
	}()
	q.Close()
	if k := <-got; k != "closed" {
		t.Fatalf("Pop after Close = %q", k)
	}
}

func TestPopReturnsWhenContextEnds(t *testing.T) {
	q, _ := newTestQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, ok := q.Pop(ctx); ok {
		t.Fatal("Pop returned a pod from an empty queue")
	}
}

func TestBackoffDoublesFromOneSecondUpToTen(t *testing.T) {
	q, _ := newTestQueue(t)
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		if got := q.BackoffDuration(i + 1); got != w {
			t.Errorf("BackoffDuration(%d) = %v, want %v", i+1, got, w)
		}
	}
}

func TestFailedPodWaitsOutItsBackoff(t *testing.T) {
	q, clk := newTestQueue(t)
	q.Add(pi(t, st.MakePod("p")))
	for attempt, backoff := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		p, cycle := mustPop(t, q)
		if p.Attempts != attempt+1 {
			t.Fatalf("attempts = %d, want %d", p.Attempts, attempt+1)
		}
		q.Requeue(p, cycle, false) // an error: straight to backoffQ
		if w := q.Where("default/p"); w != "backoff" {
			t.Fatalf("after a failed attempt the pod is in %q, want backoff", w)
		}
		clk.Step(backoff - time.Millisecond)
		q.FlushBackoffCompleted()
		if w := q.Where("default/p"); w != "backoff" {
			t.Fatalf("attempt %d: left backoffQ before %v", attempt+1, backoff)
		}
		clk.Step(2 * time.Millisecond)
		q.FlushBackoffCompleted()
		if w := q.Where("default/p"); w != "active" {
			t.Fatalf("attempt %d: still in %q after %v", attempt+1, w, backoff)
		}
	}
}

func TestUnschedulablePodMovesBackOnClusterEvent(t *testing.T) {
	q, clk := newTestQueue(t)
	q.Add(pi(t, st.MakePod("p")))
	p, cycle := mustPop(t, q)
	q.Requeue(p, cycle, true)
	if w := q.Where("default/p"); w != "unschedulable" {
		t.Fatalf("pod in %q, want unschedulable", w)
	}
	// Still backing off (1s): an event moves it to backoffQ, not activeQ.
	q.MoveAllToActiveOrBackoffQueue(NodeAdd)
	if w := q.Where("default/p"); w != "backoff" {
		t.Fatalf("pod in %q right after failing, want backoff", w)
	}
	clk.Step(2 * time.Second)
	q.FlushBackoffCompleted()
	p, cycle = mustPop(t, q)
	q.Requeue(p, cycle, true)
	clk.Step(5 * time.Second) // past the 2s backoff of attempt 2
	q.MoveAllToActiveOrBackoffQueue(AssignedPodDelete)
	if w := q.Where("default/p"); w != "active" {
		t.Fatalf("pod in %q after the event, want active", w)
	}
}

func TestUnschedulablePodWithoutEventsIsRetriedAfterSixtySeconds(t *testing.T) {
	q, clk := newTestQueue(t)
	q.Add(pi(t, st.MakePod("p")))
	p, cycle := mustPop(t, q)
	q.Requeue(p, cycle, true)
	clk.Step(59 * time.Second)
	q.FlushUnschedulableLeftover()
	if w := q.Where("default/p"); w != "unschedulable" {
		t.Fatalf("pod in %q after 59s, want unschedulable", w)
	}
	clk.Step(2 * time.Second)
	q.FlushUnschedulableLeftover()
	if w := q.Where("default/p"); w != "active" {
		t.Fatalf("pod in %q after 61s, want active", w)
	}
}

func TestPodThatMissedAnEventDuringItsCycleGoesToBackoff(t *testing.T) {
	q, _ := newTestQueue(t)
	q.Add(pi(t, st.MakePod("p")))
	p, cycle := mustPop(t, q)
	// A node joins while the pod is being scheduled against an older
	// snapshot: parking it in unschedulableQ would strand it.
	q.MoveAllToActiveOrBackoffQueue(NodeAdd)
	q.Requeue(p, cycle, true)
	if w := q.Where("default/p"); w != "backoff" {
		t.Fatalf("pod in %q, want backoff", w)
	}
}

func TestStatusOnlyUpdateKeepsUnschedulablePodParked(t *testing.T) {
	q, _ := newTestQueue(t)
	q.Add(pi(t, st.MakePod("p")))
	p, cycle := mustPop(t, q)
	q.Requeue(p, cycle, true)

	withCondition := st.MakePod("p").Obj()
	withCondition.Status.Message = "0/1 nodes are available"
	q.Update(p.PodInfo, st.PodInfo(t, withCondition))
	if w := q.Where("default/p"); w != "unschedulable" {
		t.Fatalf("status-only update moved the pod to %q", w)
	}
	q.Update(p.PodInfo, pi(t, st.MakePod("p").Req("1m", "")))
	if w := q.Where("default/p"); w != "backoff" && w != "active" {
		t.Fatalf("spec update left the pod in %q, want it retried", w)
	}
}

func TestPodIsInExactlyOnePlace(t *testing.T) {
	q, clk := newTestQueue(t)
	q.Add(pi(t, st.MakePod("p")))
	p, cycle := mustPop(t, q)
	q.Add(pi(t, st.MakePod("p"))) // informer resync while in flight
	if l := q.Len(); l.Active != 0 || l.InFlight != 1 {
		t.Fatalf("an in-flight pod was queued again: %+v", l)
	}
	q.Requeue(p, cycle, true)
	q.Requeue(p, cycle, true) // a second report is a no-op
	q.Add(pi(t, st.MakePod("p")))
	clk.Step(time.Hour)
	q.MoveAllToActiveOrBackoffQueue(NodeAdd)
	if l := q.Len(); l.Active+l.Backoff+l.Unschedulable+l.InFlight != 1 {
		t.Fatalf("pod counted %+v, want exactly once", l)
	}
}

func TestDeleteWhileInFlightDropsTheRequeue(t *testing.T) {
	q, _ := newTestQueue(t)
	q.Add(pi(t, st.MakePod("p")))
	p, cycle := mustPop(t, q)
	q.Delete(p.Key)
	q.Requeue(p, cycle, true)
	if w := q.Where(p.Key); w != "" {
		t.Fatalf("deleted pod requeued into %q", w)
	}
}

func TestUpdateWhileInFlightRequeuesTheNewestVersion(t *testing.T) {
	q, _ := newTestQueue(t)
	q.Add(pi(t, st.MakePod("p")))
	p, cycle := mustPop(t, q)
	q.Update(p.PodInfo, pi(t, st.MakePod("p").Req("2", "")))
	q.Requeue(p, cycle, false)
	q.FlushBackoffCompleted()
	l := q.Len()
	if l.Backoff != 1 {
		t.Fatalf("lengths %+v", l)
	}
	got, _ := q.backoff.Get(p.Key)
	if got.Requests.MilliCPU != 2000 {
		t.Errorf("requeued version requests %dm cpu, want the updated 2000m", got.Requests.MilliCPU)
	}
}

func TestDeleteRemovesFromEveryQueue(t *testing.T) {
	q, _ := newTestQueue(t)
	q.Add(pi(t, st.MakePod("a")))
	q.Add(pi(t, st.MakePod("b")))
	q.Add(pi(t, st.MakePod("c")))
	pa, ca := mustPop(t, q)
	q.Requeue(pa, ca, true) // unschedulable
	pb, cb := mustPop(t, q)
	q.Requeue(pb, cb, false) // backoff
	for _, k := range []string{"default/a", "default/b", "default/c"} {
		q.Delete(k)
	}
	if l := q.Len(); l != (Lengths{}) {
		t.Fatalf("lengths after deleting all = %+v", l)
	}
}

func TestDoneEndsTheFlight(t *testing.T) {
	q, _ := newTestQueue(t)
	q.Add(pi(t, st.MakePod("p")))
	p, _ := mustPop(t, q)
	q.Done(p.Key)
	if l := q.Len(); l != (Lengths{}) {
		t.Fatalf("lengths = %+v, want empty", l)
	}
}

func TestPodRecreatedUnderTheSameNameWhileInFlightIsKept(t *testing.T) {
	newPod := func() *framework.PodInfo {
		p := st.MakePod("p").Obj()
		p.Metadata.Uid = "uid-second"
		return st.PodInfo(t, p)
	}
	for _, tc := range []struct {
		name   string
		finish func(q *Queue, p *QueuedPodInfo, cycle int64)
	}{
		{"the first pod's binding is rejected", func(q *Queue, p *QueuedPodInfo, cycle int64) { q.Requeue(p, cycle, false) }},
		{"the first pod was bound before it was deleted", func(q *Queue, p *QueuedPodInfo, _ int64) { q.Done(p.Key) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, _ := newTestQueue(t)
			q.Add(pi(t, st.MakePod("p")))
			p, cycle := mustPop(t, q)
			q.Delete(p.Key)
			q.Add(newPod())
			tc.finish(q, p, cycle)
			if w := q.Where(p.Key); w != "active" {
				t.Fatalf("the new pod is in %q, want active: it owes no backoff", w)
			}
			got, _ := mustPop(t, q)
			if uid := got.Pod.GetMetadata().GetUid(); uid != "uid-second" || got.Attempts != 1 {
				t.Errorf("popped uid %s after %d attempts, want the new pod's first attempt", uid, got.Attempts)
			}
		})
	}
}
