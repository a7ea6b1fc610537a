package events

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/testcluster"
	"github.com/skiff-dev/skiff/proto/api"
)

// clock is a settable time source for the aggregation window.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestRecorder(t *testing.T, c *client.Client, opts ...Option) (*Recorder, *clock) {
	t.Helper()
	clk := &clock{t: time.Now().Truncate(time.Second)}
	r := NewRecorder(c, "scheduler", "node-1", opts...)
	r.now = clk.now
	return r, clk
}

func run(t *testing.T, r *Recorder) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
}

func testPod(name string) *api.Pod {
	return &api.Pod{Metadata: &api.ObjectMeta{Namespace: "default", Name: name, Uid: "uid-" + name, ResourceVersion: "42"}}
}

func listEvents(t *testing.T, c *client.Client, ns string) []*api.Event {
	t.Helper()
	evs, _, err := c.Events().List(t.Context(), ns, client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].Metadata.Name < evs[j].Metadata.Name })
	return evs
}

// waitEvents polls until the namespace's events satisfy cond.
func waitEvents(t *testing.T, c *client.Client, ns, what string, cond func([]*api.Event) bool) []*api.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs := listEvents(t, c, ns)
		if cond(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; events: %v", what, evs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func counts(evs []*api.Event) []int32 {
	out := make([]int32, len(evs))
	for i, e := range evs {
		out[i] = e.Count
	}
	return out
}

func TestRecorderWritesAnEventAboutTheObject(t *testing.T) {
	tc := testcluster.Start(t)
	r, clk := newTestRecorder(t, tc.Client)
	run(t, r)
	r.Eventf(testPod("web-1"), Normal, "Scheduled", "Successfully assigned %s to %s", "default/web-1", "node-2")
	ev := waitEvents(t, tc.Client, "default", "one event", func(e []*api.Event) bool { return len(e) == 1 })[0]

	if !regexp.MustCompile(`^web-1\.[0-9a-f]{16}$`).MatchString(ev.Metadata.Name) {
		t.Errorf("name = %q, want web-1.<16 hex>", ev.Metadata.Name)
	}
	io := ev.InvolvedObject
	if io.Kind != "Pod" || io.ApiVersion != "v1" || io.Namespace != "default" || io.Name != "web-1" || io.Uid != "uid-web-1" || io.ResourceVersion != "42" {
		t.Errorf("involvedObject = %v", io)
	}
	if ev.Type != Normal || ev.Reason != "Scheduled" || ev.Message != "Successfully assigned default/web-1 to node-2" || ev.Count != 1 {
		t.Errorf("event = %s %s %q count %d", ev.Type, ev.Reason, ev.Message, ev.Count)
	}
	if ev.Source.GetComponent() != "scheduler" || ev.Source.GetHost() != "node-1" || ev.ReportingComponent != "scheduler" || ev.ReportingInstance != "node-1" {
		t.Errorf("source = %v, reporting %q/%q", ev.Source, ev.ReportingComponent, ev.ReportingInstance)
	}
	if !ev.FirstTimestamp.AsTime().Equal(clk.now()) || !ev.LastTimestamp.AsTime().Equal(clk.now()) {
		t.Errorf("timestamps %v %v, want %v", ev.FirstTimestamp.AsTime(), ev.LastTimestamp.AsTime(), clk.now())
	}
}

func TestRecorderAggregatesRepeatsWithinTheWindow(t *testing.T) {
	tc := testcluster.Start(t)
	r, clk := newTestRecorder(t, tc.Client)
	run(t, r)
	pod := testPod("web-1")
	start := clk.now()
	for range 3 {
		r.Eventf(pod, Warning, "FailedScheduling", "0/3 nodes are available")
		clk.step(time.Minute)
	}
	r.Eventf(pod, Warning, "FailedScheduling", "0/4 nodes are available") // another message: another event
	evs := waitEvents(t, tc.Client, "default", "two events, counts 3 and 1", func(e []*api.Event) bool {
		c := counts(e)
		sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
		return len(c) == 2 && c[0] == 1 && c[1] == 3
	})
	for _, ev := range evs {
		if ev.Count == 3 {
			if !ev.FirstTimestamp.AsTime().Equal(start) || !ev.LastTimestamp.AsTime().Equal(start.Add(2*time.Minute)) {
				t.Errorf("aggregated event first %v last %v, want %v and %v", ev.FirstTimestamp.AsTime(), ev.LastTimestamp.AsTime(), start, start.Add(2*time.Minute))
			}
		}
	}

	// Past ten minutes since the last repeat, a repeat is a new event.
	clk.step(11 * time.Minute)
	r.Eventf(pod, Warning, "FailedScheduling", "0/3 nodes are available")
	waitEvents(t, tc.Client, "default", "a third event after the window", func(e []*api.Event) bool { return len(e) == 3 })
}

func TestRecorderPutsClusterScopedObjectsInDefault(t *testing.T) {
	tc := testcluster.Start(t)
	r, _ := newTestRecorder(t, tc.Client)
	run(t, r)
	r.Eventf(&api.Node{Metadata: &api.ObjectMeta{Name: "node-2", Uid: "n2"}}, Normal, "NodeReady", "Node node-2 status is now: NodeReady")
	ev := waitEvents(t, tc.Client, "default", "the node event", func(e []*api.Event) bool { return len(e) == 1 })[0]
	if ev.InvolvedObject.Kind != "Node" || ev.InvolvedObject.Namespace != "" || !strings.HasPrefix(ev.Metadata.Name, "node-2.") {
		t.Errorf("event = %v", ev)
	}
}

func TestRecorderRecoversFromChangedAndDeletedEvents(t *testing.T) {
	tc := testcluster.Start(t)
	r, clk := newTestRecorder(t, tc.Client)
	run(t, r)
	pod := testPod("web-1")
	r.Eventf(pod, Normal, "Pulling", "Pulling image nginx")
	ev := waitEvents(t, tc.Client, "default", "one event", func(e []*api.Event) bool { return len(e) == 1 })[0]

	// Another writer bumps the count: the recorder's next update conflicts,
	// re-reads and still adds one.
	ev.Count = 5
	if _, err := tc.Client.Events().Update(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	r.Eventf(pod, Normal, "Pulling", "Pulling image nginx")
	waitEvents(t, tc.Client, "default", "count 6", func(e []*api.Event) bool { return len(e) == 1 && e[0].Count == 6 })

	// The event is deleted (as a TTL would): the next repeat starts afresh.
	if _, err := tc.Client.Events().Delete(t.Context(), "default", ev.Metadata.Name, client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	clk.step(time.Second)
	r.Eventf(pod, Normal, "Pulling", "Pulling image nginx")
	evs := waitEvents(t, tc.Client, "default", "a new event", func(e []*api.Event) bool { return len(e) == 1 && e[0].Count == 1 })
	if evs[0].Metadata.Name == ev.Metadata.Name {
		t.Error("the new event reused the deleted one's name")
	}
}

func TestEventfNeverBlocksAndDropsWhenFull(t *testing.T) {
	tc := testcluster.Start(t)
	r, _ := newTestRecorder(t, tc.Client, WithBufferSize(10))
	pod := testPod("web-1")
	// With no writer running, a blocking Eventf would never return: the
	// calls must finish at all (a deadlock check, not a speed check, which
	// belongs to benchmarks).
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := range 1000 {
			r.Eventf(pod, Normal, "Tick", "tick %d", n)
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Eventf blocked with no writer running")
	}
	if r.Dropped() != 990 {
		t.Errorf("Dropped = %d, want 990", r.Dropped())
	}
	// Run on an ended context still flushes what was queued.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.Run(ctx)
	evs := listEvents(t, tc.Client, "default")
	if len(evs) != 10 {
		t.Fatalf("events written = %d, want the 10 buffered", len(evs))
	}
	msgs := map[string]bool{}
	for _, e := range evs {
		msgs[e.Message] = true
	}
	for n := range 10 {
		if want := fmt.Sprintf("tick %d", n); !msgs[want] {
			t.Errorf("missing buffered event %q", want)
		}
	}
}

func TestEventfIgnoresObjectsItCannotName(t *testing.T) {
	r := NewRecorder(&client.Client{}, "c", "h")
	r.Eventf(&api.Pod{}, Normal, "X", "no metadata")
	r.Eventf(&api.PodTemplateSpec{Metadata: &api.ObjectMeta{Name: "t"}}, Normal, "X", "not a kind")
	if len(r.queue) != 0 {
		t.Fatalf("queued %d events about unnamed objects", len(r.queue))
	}
}

func TestFakeRecorder(t *testing.T) {
	f := NewFakeRecorder(1)
	var rec EventRecorder = f
	rec.Eventf(testPod("a"), Warning, "BackOff", "Back-off restarting %s", "c1")
	rec.Eventf(testPod("a"), Warning, "Dropped", "the buffer holds one")
	if got := <-f.Events; got != "Warning BackOff Back-off restarting c1" {
		t.Errorf("got %q", got)
	}
	select {
	case got := <-f.Events:
		t.Errorf("second event %q was not dropped", got)
	default:
	}
}

func TestAggregationCacheStaysBounded(t *testing.T) {
	r := NewRecorder(&client.Client{}, "c", "h")
	now := time.Now()
	fill := func(n int, lastSeen time.Time, prefix string) {
		for k := range n {
			r.seen[aggKey{uid: fmt.Sprintf("%s%d", prefix, k)}] = &aggregate{lastSeen: lastSeen}
		}
	}
	fill(maxCached/2, now.Add(-time.Hour), "old")
	fill(maxCached/2, now, "new")
	r.prune(now)
	if len(r.seen) != maxCached/2 {
		t.Fatalf("after prune %d entries, want the %d recent ones", len(r.seen), maxCached/2)
	}
	for k := range r.seen {
		if strings.HasPrefix(k.uid, "old") {
			t.Fatal("an expired entry survived while fresher ones were kept")
		}
	}
	fill(maxCached, now, "more")
	r.prune(now)
	if len(r.seen) >= maxCached {
		t.Fatalf("cache of fresh entries not cut: %d", len(r.seen))
	}
}

// RunDuring writes what work recorded, the last event included, before it
// returns work's error.
func TestRunDuringFlushesWhenWorkReturns(t *testing.T) {
	tc := testcluster.Start(t)
	r, _ := newTestRecorder(t, tc.Client)
	errWork := fmt.Errorf("work failed")
	err := r.RunDuring(t.Context(), func(ctx context.Context) error {
		r.Eventf(testPod("web-1"), Warning, "FailedScheduling", "0/1 nodes are available")
		return errWork
	})
	if err != errWork {
		t.Fatalf("RunDuring = %v, want work's error", err)
	}
	evs := listEvents(t, tc.Client, "default")
	if len(evs) != 1 || evs[0].Reason != "FailedScheduling" {
		t.Fatalf("events after RunDuring: %v, want the one recorded before work returned", evs)
	}
}
