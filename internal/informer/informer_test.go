package informer

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// fastInformer is an informer with test-sized backoff.
func fastInformer(f *fakeAPI, opts Options) *Informer[*api.Pod] {
	inf := New(f.client(), opts)
	inf.backoffInitial, inf.backoffMax = 2*time.Millisecond, 20*time.Millisecond
	return inf
}

func waitEvents(t *testing.T, r *recorder, want ...string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d events", len(want)), func() bool { return len(r.get()) >= len(want) })
	if got := r.get(); !slices.Equal(got, want) {
		t.Fatalf("events:\n got %q\nwant %q", got, want)
	}
}

func TestInformerListsThenWatchesFromTheListVersion(t *testing.T) {
	f := newFakeAPI()
	f.create(pod("default", "a"))
	f.create(pod("default", "b"))
	inf := fastInformer(f, Options{Namespace: "default", LabelSelector: "app=web", FieldSelector: "spec.nodeName=n1"})
	rec := &recorder{}
	inf.AddEventHandler(rec.handler())
	if inf.HasSynced() {
		t.Fatal("HasSynced before Run")
	}
	start(t, inf)
	// Synced means the handlers already have the listed objects.
	if got := rec.get(); !slices.Equal(got, []string{"add default/a@1", "add default/b@2"}) {
		t.Fatalf("events at sync = %q", got)
	}

	waitFor(t, "a watch", func() bool { return f.openStreams() == 1 })
	w := f.watchRequest(0)
	if w.ResourceVersion != "2" || !w.AllowBookmarks || w.Namespace != "default" || w.LabelSelector != "app=web" || w.FieldSelector != "spec.nodeName=n1" || w.Resource != "pods" {
		t.Errorf("watch request = %v, want pods from the list's version 2 with bookmarks and the informer's selectors", w)
	}
	l := f.lists[0]
	if l.Namespace != "default" || l.LabelSelector != "app=web" || l.FieldSelector != "spec.nodeName=n1" {
		t.Errorf("list request = %v, want the informer's namespace and selectors", l)
	}

	f.create(pod("default", "c"))
	a := pod("default", "a")
	a.Spec.NodeName = "n1"
	f.update(a)
	f.remove("default", "b")
	waitEvents(t, rec, "add default/a@1", "add default/b@2", "add default/c@3", "update default/a@1->4", "delete default/b")

	lister := inf.Lister()
	if got, ok := lister.Get("default", "a"); !ok || got.Spec.NodeName != "n1" {
		t.Errorf("Get(a) = %v, %v", got, ok)
	}
	if _, ok := lister.Get("default", "b"); ok {
		t.Error("deleted pod b still cached")
	}
	if got := keys(lister.ByIndex(IndexNodeName, "n1")); !slices.Equal(got, []string{"default/a"}) {
		t.Errorf("ByIndex(node n1) = %v", got)
	}
	if inf.LastSyncResourceVersion() != "5" {
		t.Errorf("LastSyncResourceVersion = %q, want 5", inf.LastSyncResourceVersion())
	}
}

func TestInformerResumesWatchFromLastSeenVersion(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"stream unavailable", status.Error(codes.Unavailable, "connection reset")},
		{"server closed the stream", io.EOF},
		{"slow watcher cut off", status.Error(codes.ResourceExhausted, "too slow")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAPI()
			inf := fastInformer(f, Options{})
			rec := &recorder{}
			inf.AddEventHandler(rec.handler())
			start(t, inf)
			waitFor(t, "a watch", func() bool { return f.openStreams() == 1 })
			f.create(pod("default", "x"))
			waitEvents(t, rec, "add default/x@1")

			// The next watch attempt fails too, so y and z happen while
			// the informer is disconnected.
			f.mu.Lock()
			f.watchErrs = []error{status.Error(codes.Unavailable, "still down")}
			f.mu.Unlock()
			f.breakWatches(tt.err)
			f.create(pod("default", "y"))
			f.create(pod("default", "z"))
			waitEvents(t, rec, "add default/x@1", "add default/y@2", "add default/z@3")

			lists, watches := f.counts()
			if lists != 1 {
				t.Errorf("lists = %d, want 1: a broken stream resumes, it does not re-list", lists)
			}
			for n := 1; n < watches; n++ {
				if rv := f.watchRequest(n).ResourceVersion; rv != "1" {
					t.Errorf("watch %d from %q, want 1 (the last version seen)", n, rv)
				}
			}
		})
	}
}

// watchThenPause starts an informer on f, waits for its watch, then cuts
// the watch and holds the re-watch, so the test can change f while the
// informer is not watching.
func watchThenPause(t *testing.T, f *fakeAPI) (*Informer[*api.Pod], *recorder) {
	t.Helper()
	inf := fastInformer(f, Options{})
	rec := &recorder{}
	inf.AddEventHandler(rec.handler())
	start(t, inf)
	waitFor(t, "a watch", func() bool { return f.openStreams() == 1 })
	f.pause()
	f.breakWatches(status.Error(codes.Unavailable, "apiserver restarting"))
	waitFor(t, "a paused re-watch", func() bool { _, w := f.counts(); return w == 2 })
	return inf, rec
}

func TestInformerRelistsOnExpiryAndSynthesizesTheDifference(t *testing.T) {
	f := newFakeAPI()
	for _, n := range []string{"a", "b", "c"} {
		f.create(pod("default", n))
	}
	inf, rec := watchThenPause(t, f)
	f.remove("default", "a")
	b := pod("default", "b")
	b.Metadata.Labels = map[string]string{"v": "2"}
	f.update(b)
	f.create(pod("default", "d"))
	f.compact()
	f.resume()

	waitFor(t, "re-list", func() bool { l, _ := f.counts(); return l == 2 })
	// The list is sorted by key; deletes of vanished objects come after.
	waitEvents(t, rec, "add default/a@1", "add default/b@2", "add default/c@3",
		"update default/b@2->5", "add default/d@6", "delete default/a")
	if got := keys(inf.Lister().List(nil)); !slices.Equal(got, []string{"default/b", "default/c", "default/d"}) {
		t.Errorf("cache = %v", got)
	}
	waitFor(t, "a watch from the new list", func() bool { return f.openStreams() == 1 })
	_, w := f.counts()
	if rv := f.watchRequest(w - 1).ResourceVersion; rv != "6" {
		t.Errorf("watch after re-list from %q, want 6", rv)
	}
	// Events after the re-list flow again.
	f.create(pod("default", "e"))
	waitFor(t, "add e", func() bool { return slices.Contains(rec.get(), "add default/e@7") })
}

// A namesake created while the informer was not watching is another
// object: handlers get the old one's delete and the new one's add, not an
// update (the garbage collector relies on it to see the old owner gone).
func TestInformerRelistTurnsANamesakeWithAnotherUidIntoDeleteAndAdd(t *testing.T) {
	f := newFakeAPI()
	old := pod("default", "web")
	old.Metadata.Uid = "uid-1"
	f.create(old)
	inf, rec := watchThenPause(t, f)
	f.remove("default", "web")
	namesake := pod("default", "web")
	namesake.Metadata.Uid = "uid-2"
	f.create(namesake)
	f.compact()
	f.resume()

	waitFor(t, "re-list", func() bool { l, _ := f.counts(); return l == 2 })
	waitEvents(t, rec, "add default/web@1", "delete default/web", "add default/web@3")
	if got := inf.Lister().List(nil); len(got) != 1 || got[0].GetMetadata().GetUid() != "uid-2" {
		t.Errorf("cache = %v, want the namesake", got)
	}
}

func TestInformerBookmarkAdvancesResumeVersion(t *testing.T) {
	f := newFakeAPI()
	inf := fastInformer(f, Options{})
	start(t, inf)
	waitFor(t, "a watch", func() bool { return f.openStreams() == 1 })
	f.create(pod("default", "x"))
	f.bumpRev()
	f.bumpRev()
	rv := f.bookmark()
	waitFor(t, "the bookmark", func() bool { return inf.LastSyncResourceVersion() == rv })
	f.breakWatches(status.Error(codes.Unavailable, "gone"))
	waitFor(t, "a re-watch", func() bool { _, w := f.counts(); return w == 2 })
	if got := f.watchRequest(1).ResourceVersion; got != rv {
		t.Errorf("re-watch from %q, want the bookmark's %q", got, rv)
	}
	if lists, _ := f.counts(); lists != 1 {
		t.Errorf("lists = %d, want 1", lists)
	}
}

func TestInformerRetriesFailedListsWithBackoff(t *testing.T) {
	f := newFakeAPI()
	f.create(pod("default", "a"))
	f.listErrs = []error{status.Error(codes.Unavailable, "down"), status.Error(codes.PermissionDenied, "not yet authorized")}
	inf := fastInformer(f, Options{})
	rec := &recorder{}
	inf.AddEventHandler(rec.handler())
	start(t, inf)
	if lists, _ := f.counts(); lists != 3 {
		t.Errorf("lists = %d, want 3 (two failures, one success)", lists)
	}
	if got := rec.get(); !slices.Equal(got, []string{"add default/a@1"}) {
		t.Errorf("events = %q", got)
	}
}

// The growth and the cap of the delays are checked exactly by TestBackoff;
// this checks the informer waits them out between failed watches.
func TestInformerWaitsWithBackoffBetweenFailedWatches(t *testing.T) {
	f := newFakeAPI()
	const failures = 5
	for range failures {
		f.watchErrs = append(f.watchErrs, status.Error(codes.Unavailable, "down"))
	}
	inf := New(f.client(), Options{})
	inf.backoffInitial, inf.backoffMax = 20*time.Millisecond, 80*time.Millisecond
	start(t, inf)
	waitFor(t, "a watch that works", func() bool { return f.openStreams() == 1 })

	f.mu.Lock()
	at := slices.Clone(f.watchAt)
	f.mu.Unlock()
	if len(at) != failures+1 {
		t.Fatalf("watch attempts = %d, want %d", len(at), failures+1)
	}
	cur := time.Duration(0)
	for n := 1; n < len(at); n++ {
		cur = min(max(2*cur, 20*time.Millisecond), 80*time.Millisecond)
		if gap := at[n].Sub(at[n-1]); gap < cur/2 {
			t.Errorf("gap before attempt %d = %v, want at least %v", n, gap, cur/2)
		}
	}
}

func TestInformerReopensWatchAtItsLifetime(t *testing.T) {
	f := newFakeAPI()
	inf := fastInformer(f, Options{})
	inf.watchTimeout = 10 * time.Millisecond
	rec := &recorder{}
	inf.AddEventHandler(rec.handler())
	start(t, inf)
	f.create(pod("default", "a"))
	waitFor(t, "several watches", func() bool { _, w := f.counts(); return w >= 4 })
	f.create(pod("default", "b"))
	waitEvents(t, rec, "add default/a@1", "add default/b@2")
	if lists, _ := f.counts(); lists != 1 {
		t.Errorf("lists = %d, want 1", lists)
	}
}

func TestInformerResyncReplaysEveryObjectAsUpdate(t *testing.T) {
	f := newFakeAPI()
	f.create(pod("default", "a"))
	f.create(pod("kube", "b"))
	inf := fastInformer(f, Options{ResyncPeriod: 20 * time.Millisecond})
	rec := &recorder{}
	inf.AddEventHandler(rec.handler())
	start(t, inf)
	waitFor(t, "two resyncs", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.same >= 4
	})
	got := rec.get()
	if !slices.Equal(got[:2], []string{"add default/a@1", "add kube/b@2"}) {
		t.Fatalf("first events = %q, want the adds", got[:2])
	}
	for _, e := range got[2:] {
		if e != "resync default/a" && e != "resync kube/b" {
			t.Fatalf("unexpected event %q among resyncs", e)
		}
	}
}

func TestInformerSlowHandlerDoesNotStallTheWatch(t *testing.T) {
	f := newFakeAPI()
	inf := fastInformer(f, Options{})
	release := make(chan struct{})
	var mu sync.Mutex
	var order []string
	inf.AddEventHandler(Handler[*api.Pod]{OnAdd: func(p *api.Pod) {
		<-release
		mu.Lock()
		order = append(order, p.Metadata.Name)
		mu.Unlock()
	}})
	start(t, inf)
	waitFor(t, "a watch", func() bool { return f.openStreams() == 1 })
	const n = 500
	var want []string
	for k := range n {
		name := fmt.Sprintf("p%03d", k)
		want = append(want, name)
		f.create(pod("default", name))
	}
	// The handler is stuck on the first pod, yet the cache has them all.
	waitFor(t, "the cache to fill", func() bool { return inf.Lister().Len() == n })
	if f.openStreams() != 1 {
		t.Fatal("the watch stream was cut off while a handler was slow")
	}
	close(release)
	waitFor(t, "every add", func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == n })
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(order, want) {
		t.Fatal("adds were not delivered in event order")
	}
}

func TestInformerLateHandlerGetsTheCachedObjectsOnce(t *testing.T) {
	f := newFakeAPI()
	f.create(pod("default", "a"))
	f.create(pod("default", "b"))
	inf := fastInformer(f, Options{})
	first, late := &recorder{}, &recorder{}
	inf.AddEventHandler(first.handler())
	start(t, inf)
	inf.AddEventHandler(late.handler())
	f.create(pod("default", "c"))
	waitFor(t, "late handler events", func() bool { return len(late.get()) == 3 })
	got := late.get()
	slices.Sort(got[:2])
	if !slices.Equal(got, []string{"add default/a@1", "add default/b@2", "add default/c@3"}) {
		t.Errorf("late handler events = %q", got)
	}
	waitEvents(t, first, "add default/a@1", "add default/b@2", "add default/c@3")
}

func TestInformerRunStopsWhenContextEnds(t *testing.T) {
	f := newFakeAPI()
	f.listErrs = slices.Repeat([]error{status.Error(codes.Unavailable, "down")}, 1000)
	inf := fastInformer(f, Options{ResyncPeriod: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); inf.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer wcancel()
	if inf.WaitForSync(wctx) {
		t.Fatal("synced although every list fails")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestInformerRunTwicePanics(t *testing.T) {
	f := newFakeAPI()
	inf := fastInformer(f, Options{})
	start(t, inf)
	defer func() {
		if recover() == nil {
			t.Error("second Run did not panic")
		}
	}()
	inf.Run(context.Background())
}

func TestInformerLabelSelectorInLister(t *testing.T) {
	f := newFakeAPI()
	a := pod("default", "a")
	a.Metadata.Labels = map[string]string{"app": "web"}
	f.create(a)
	f.create(pod("default", "b"))
	inf := fastInformer(f, Options{})
	start(t, inf)
	sel, err := labels.Parse("app=web")
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(inf.Lister().List(sel)); !slices.Equal(got, []string{"default/a"}) {
		t.Errorf("List(app=web) = %v", got)
	}
	if got := keys(inf.Lister().List(labels.Everything())); !slices.Equal(got, []string{"default/a", "default/b"}) {
		t.Errorf("List(everything) = %v", got)
	}
}

func keys[T kinds.Object](objs []T) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, kinds.Key(o))
	}
	slices.Sort(out)
	return out
}

func TestInformerResyncNeverReordersChanges(t *testing.T) {
	f := newFakeAPI()
	f.create(pod("default", "a"))
	inf := fastInformer(f, Options{ResyncPeriod: 2 * time.Millisecond})
	var mu sync.Mutex
	var seen []int
	resyncs := 0 // notifications of a version already seen: resyncs
	record := func(p *api.Pod) {
		rv, err := strconv.Atoi(p.Metadata.ResourceVersion)
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		if len(seen) > 0 && seen[len(seen)-1] == rv {
			resyncs++
		}
		seen = append(seen, rv)
		mu.Unlock()
	}
	resynced := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return resyncs >= 3
	}
	inf.AddEventHandler(Handler[*api.Pod]{
		OnAdd:    record,
		OnUpdate: func(_, n *api.Pod) { record(n) },
	})
	start(t, inf)
	waitFor(t, "a watch", func() bool { return f.openStreams() == 1 })
	// Changes go on until resyncs have landed among them, however slow
	// the machine: the test never races a resync against a fixed batch.
	const minUpdates, maxUpdates = 300, 100_000
	updates := 0
	for ; updates < minUpdates || !resynced(); updates++ {
		if updates == maxUpdates {
			t.Fatalf("no resync among %d changes", maxUpdates)
		}
		p := pod("default", "a")
		p.Metadata.Annotations = map[string]string{"n": strconv.Itoa(updates)}
		f.update(p)
	}
	last := updates + 1
	waitFor(t, "the last update", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) > 0 && seen[len(seen)-1] == last
	})
	mu.Lock()
	defer mu.Unlock()
	for k := 1; k < len(seen); k++ {
		if seen[k] < seen[k-1] {
			t.Fatalf("handler saw resourceVersion %d after %d", seen[k], seen[k-1])
		}
	}
}
