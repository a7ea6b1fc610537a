package integration

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skiff-dev/skiff/apiserver/app"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/testcluster"
	"github.com/skiff-dev/skiff/proto/api"
)

// collect reads n non-bookmark events from w.
func collect(t testing.TB, w *client.Watcher[*api.Pod], n int) []client.Event[*api.Pod] {
	t.Helper()
	var out []client.Event[*api.Pod]
	for len(out) < n {
		ev, err := w.Next()
		if err != nil {
			t.Fatalf("after %d of %d events: %v", len(out), n, err)
		}
		if ev.Type == client.Bookmark {
			continue
		}
		out = append(out, ev)
	}
	return out
}

func TestWatchResumesWithNoEventLostOrRepeated(t *testing.T) {
	c := testcluster.Start(t)
	ctx := ctx(t)
	pods := c.Client.Pods()
	var revs []string
	for i := 0; i < 30; i++ {
		p, err := pods.Create(ctx, nginxPod(fmt.Sprintf("p%02d", i)))
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, p.Metadata.ResourceVersion)
	}
	// From every starting point, the watch yields exactly the later events,
	// in order.
	for iteration, start := range []int{0, 7, 15, 29} {
		w, err := pods.Watch(ctx, "default", client.ListOptions{ResourceVersion: revs[start]})
		if err != nil {
			t.Fatal(err)
		}
		want := 29 - start
		// One more change after the watch opened must arrive too.
		if _, err := pods.Create(ctx, nginxPod(fmt.Sprintf("late-%d", start))); err != nil {
			t.Fatal(err)
		}
		// Earlier iterations' late pods come after p29, in order.
		evs := collect(t, w, want+iteration+1)
		for i, ev := range evs[:want] {
			if wantName := fmt.Sprintf("p%02d", start+1+i); ev.Object.Metadata.Name != wantName || ev.Type != client.Added {
				t.Fatalf("from %d: event %d = %v %s, want ADDED %s", start, i, ev.Type, ev.Object.Metadata.Name, wantName)
			}
			if ev.ResourceVersion != revs[start+1+i] || ev.Object.Metadata.ResourceVersion != revs[start+1+i] {
				t.Fatalf("event rv %s / object rv %s, want %s", ev.ResourceVersion, ev.Object.Metadata.ResourceVersion, revs[start+1+i])
			}
		}
		for i, prevStart := range []int{0, 7, 15, 29}[:iteration+1] {
			if got := evs[want+i].Object.Metadata.Name; got != fmt.Sprintf("late-%d", prevStart) {
				t.Fatalf("from %d: event %d after replay = %s, want late-%d", start, i, got, prevStart)
			}
		}
	}
}

func TestWatchFromEmptyVersionStartsWithCurrentState(t *testing.T) {
	c := testcluster.Start(t)
	ctx := ctx(t)
	pods := c.Client.Pods()
	for i := 0; i < 3; i++ {
		if _, err := pods.Create(ctx, nginxPod(fmt.Sprintf("p%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	w, err := pods.Watch(ctx, "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range collect(t, w, 3) {
		if ev.Type != client.Added {
			t.Fatalf("initial event type %v", ev.Type)
		}
	}
	if _, err := pods.Delete(ctx, "default", "p1", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if ev := collect(t, w, 1)[0]; ev.Type != client.Deleted || ev.Object.Metadata.Name != "p1" {
		t.Fatalf("got %v %s, want DELETED p1", ev.Type, ev.Object.Metadata.Name)
	}
}

func TestWatchSelectorTurnsLeavingObjectsIntoDeletes(t *testing.T) {
	c := testcluster.Start(t)
	ctx := ctx(t)
	pods := c.Client.Pods()
	w, err := pods.Watch(ctx, "default", client.ListOptions{FieldSelector: "spec.nodeName=node-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Create(ctx, nginxPod("web")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.Bind(ctx, "default", "web", "", "node-1"); err != nil {
		t.Fatal(err)
	}
	if ev := collect(t, w, 1)[0]; ev.Type != client.Added || ev.Object.Spec.NodeName != "node-1" {
		t.Fatalf("pod bound to the node: %v, want ADDED", ev.Type)
	}
	w2, err := pods.Watch(ctx, "default", client.ListOptions{LabelSelector: "app=nginx"})
	if err != nil {
		t.Fatal(err)
	}
	collect(t, w2, 1)
	p, _ := pods.Get(ctx, "default", "web")
	p.Metadata.Labels["app"] = "other"
	if _, err := pods.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	if ev := collect(t, w2, 1)[0]; ev.Type != client.Deleted {
		t.Fatalf("pod that stopped matching arrived as %v, want DELETED", ev.Type)
	}
}

func TestWatchTooOldVersionIsExpiredAndRelistWorks(t *testing.T) {
	c := testcluster.Start(t, func(cfg *app.Config) { cfg.WatchCache.Capacity = 10 })
	ctx := ctx(t)
	pods := c.Client.Pods()
	first, err := pods.Create(ctx, nginxPod("first"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := pods.Create(ctx, nginxPod(fmt.Sprintf("p%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	w, err := pods.Watch(ctx, "default", client.ListOptions{ResourceVersion: first.Metadata.ResourceVersion})
	if err == nil {
		_, err = w.Next()
	}
	if !client.IsExpired(err) {
		t.Fatalf("watch from an evicted version: %v, want expired (OutOfRange)", err)
	}
	list, rv, err := pods.List(ctx, "default", client.ListOptions{})
	if err != nil || len(list) != 21 {
		t.Fatalf("re-list: %d pods, %v", len(list), err)
	}
	w, err = pods.Watch(ctx, "default", client.ListOptions{ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Create(ctx, nginxPod("after")); err != nil {
		t.Fatal(err)
	}
	if ev := collect(t, w, 1)[0]; ev.Object.Metadata.Name != "after" {
		t.Fatalf("watch after re-list got %s", ev.Object.Metadata.Name)
	}
}

func TestSlowWatcherIsCutOffWithoutStallingOthers(t *testing.T) {
	c := testcluster.Start(t, func(cfg *app.Config) { cfg.WatchCache.WatcherBuffer = 64 })
	ctx := ctx(t)
	pods := c.Client.Pods()
	slow, err := pods.Watch(ctx, "default", client.ListOptions{ResourceVersion: "1"})
	if err != nil {
		t.Fatal(err)
	}
	fast, err := pods.Watch(ctx, "default", client.ListOptions{ResourceVersion: "1"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1500
	var wg sync.WaitGroup
	wg.Add(1)
	var fastErr error
	go func() {
		defer wg.Done()
		for got := 0; got < n; {
			ev, err := fast.Next()
			if err != nil {
				fastErr = err
				return
			}
			if ev.Type == client.Added {
				got++
			}
		}
	}()
	for i := 0; i < n; i++ {
		p := nginxPod(fmt.Sprintf("p%04d", i))
		p.Metadata.Annotations = map[string]string{"padding": fmt.Sprintf("%02000d", i)}
		if _, err := pods.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		// Writes come at a rate a reading watcher can follow on a quiet
		// machine too; the watcher that never reads still falls behind.
		if i%8 == 7 {
			time.Sleep(time.Millisecond)
		}
	}
	wg.Wait()
	if fastErr != nil {
		t.Fatalf("the reading watcher was disturbed: %v", fastErr)
	}
	// The watcher that never read has been cut off; once it reads, it sees
	// what was queued and then the reason.
	var lastRV string
	for {
		ev, err := slow.Next()
		if err != nil {
			if status.Code(err) != codes.ResourceExhausted {
				t.Fatalf("slow watcher ended with %v, want ResourceExhausted", err)
			}
			break
		}
		lastRV = ev.ResourceVersion
	}
	// It resumes from the last version it saw and misses nothing.
	resumed, err := pods.Watch(ctx, "default", client.ListOptions{ResourceVersion: lastRV})
	if err != nil {
		t.Fatal(err)
	}
	last, _ := strconv.Atoi(lastRV)
	evs := collect(t, resumed, 1)
	if got, _ := strconv.Atoi(evs[0].ResourceVersion); got != last+1 {
		t.Fatalf("resumed at rv %d, want %d", got, last+1)
	}
}

func TestThousandWatchersEachSeeEveryEvent(t *testing.T) {
	c := testcluster.Start(t)
	ctx, cancel := context.WithTimeout(ctx(t), 90*time.Second)
	defer cancel()
	pods := c.Client.Pods()
	const watchers, events = 1000, 10
	var ready, done sync.WaitGroup
	ready.Add(watchers)
	done.Add(watchers)
	errs := make(chan error, watchers)
	for i := 0; i < watchers; i++ {
		go func() {
			defer done.Done()
			w, err := pods.Watch(ctx, "default", client.ListOptions{ResourceVersion: "1"})
			ready.Done()
			if err != nil {
				errs <- err
				return
			}
			for got := 0; got < events; {
				ev, err := w.Next()
				if err != nil {
					errs <- err
					return
				}
				if ev.Type == client.Added {
					got++
				}
			}
		}()
	}
	ready.Wait()
	for i := 0; i < events; i++ {
		if _, err := pods.Create(ctx, nginxPod(fmt.Sprintf("p%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	done.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a watcher failed: %v", err)
	}
}

func TestBookmarksCarryTheLatestVersion(t *testing.T) {
	c := testcluster.Start(t)
	ctx := ctx(t)
	w, err := c.Client.Pods().Watch(ctx, "default", client.ListOptions{AllowBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := w.Next()
	if err != nil || ev.Type != client.Bookmark || ev.ResourceVersion == "" {
		t.Fatalf("first event %v %q, %v; want a bookmark", ev.Type, ev.ResourceVersion, err)
	}
	if _, err := c.Client.Pods().Create(ctx, nginxPod("p")); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for sawAdd := false; ; {
		select {
		case <-deadline:
			t.Fatal("no bookmark after the change")
		default:
		}
		ev, err := w.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == client.Added {
			sawAdd = true
		}
		if ev.Type == client.Bookmark && sawAdd {
			break
		}
	}
}
