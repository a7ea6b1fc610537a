package garbagecollector

import (
	"context"
	"log/slog"
	"testing"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// fakeSource is a cache of one kind held in a map: what an informer's
// lister would answer, with no informer behind it.
type fakeSource struct {
	kind *kinds.Info
	objs map[string]kinds.Object // by "ns/name"
}

func newFakeSource(t *testing.T, kind string, objs ...kinds.Object) *fakeSource {
	t.Helper()
	info, ok := kinds.Lookup(kind)
	if !ok {
		t.Fatalf("unknown kind %s", kind)
	}
	s := &fakeSource{kind: info, objs: map[string]kinds.Object{}}
	for _, o := range objs {
		s.objs[kinds.Key(o)] = o
	}
	return s
}

func (s *fakeSource) info() *kinds.Info { return s.kind }

func (s *fakeSource) get(namespace, name string) (kinds.Object, bool) {
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	o, ok := s.objs[key]
	return o, ok
}

func (s *fakeSource) dependents(uid string) []kinds.Object {
	var out []kinds.Object
	for _, o := range s.objs {
		for _, ref := range o.GetMetadata().GetOwnerReferences() {
			if ref.GetUid() == uid {
				out = append(out, o)
				break
			}
		}
	}
	return out
}

func (s *fakeSource) register(*Collector) {}

func (s *fakeSource) synced(context.Context) bool { return true }

func ref(kind, name, uid string) *api.OwnerReference {
	return &api.OwnerReference{Kind: kind, Name: name, Uid: uid}
}

func podOwnedBy(refs ...*api.OwnerReference) *api.Pod {
	return &api.Pod{Metadata: &api.ObjectMeta{Namespace: "default", Name: "web-1", Uid: "pod-uid", OwnerReferences: refs}}
}

// TestRecheckQueuesOnlyDependentsWhoseOwnerIsNotCached protects the
// resync's safety net and its price: a dependent goes back on the queue
// when its owner's uid is missing from the owner kind's cache, and stays
// off it (so costs no API call) when every owner it names is cached.
func TestRecheckQueuesOnlyDependentsWhoseOwnerIsNotCached(t *testing.T) {
	rs := &api.ReplicaSet{Metadata: &api.ObjectMeta{Namespace: "default", Name: "web-abc", Uid: "rs-uid"}}
	other := &api.ReplicaSet{Metadata: &api.ObjectMeta{Namespace: "default", Name: "web-def", Uid: "rs2-uid"}}
	node := &api.Node{Metadata: &api.ObjectMeta{Name: "n1", Uid: "node-uid"}}
	tests := []struct {
		name   string
		pod    *api.Pod
		queued bool
	}{
		{"owner cached under its uid", podOwnedBy(ref("ReplicaSet", "web-abc", "rs-uid")), false},
		{"every owner cached", podOwnedBy(ref("ReplicaSet", "web-abc", "rs-uid"), ref("ReplicaSet", "web-def", "rs2-uid")), false},
		{"cluster-scoped owner cached", podOwnedBy(ref("Node", "n1", "node-uid")), false},
		{"no ownerReferences", podOwnedBy(), false},
		{"owner gone from the cache", podOwnedBy(ref("ReplicaSet", "web-old", "old-uid")), true},
		{"owner's name taken by a namesake of another uid", podOwnedBy(ref("ReplicaSet", "web-abc", "old-uid")), true},
		{"one of two owners gone", podOwnedBy(ref("ReplicaSet", "web-abc", "rs-uid"), ref("ReplicaSet", "web-old", "old-uid")), true},
		{"cluster-scoped owner gone", podOwnedBy(ref("Node", "n2", "node2-uid")), true},
		{"owner named by another spelling of its kind, gone", podOwnedBy(ref("replicasets", "web-old", "old-uid")), true},
		{"owner named by another spelling of its kind, cached", podOwnedBy(ref("rs", "web-abc", "rs-uid")), false},
		// Only a live read could tell about these: a recheck never makes one.
		{"owner of a kind without a cache", podOwnedBy(ref("Event", "e1", "event-uid")), false},
		{"owner of a kind Skiff does not serve", podOwnedBy(ref("CronJob", "nightly", "cron-uid")), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pods := newFakeSource(t, "Pod", tt.pod)
			// A nil client: any API call would panic.
			gc := New(nil, slog.New(slog.DiscardHandler), nil, Config{},
				pods, newFakeSource(t, "ReplicaSet", rs, other), newFakeSource(t, "Node", node))
			t.Cleanup(func() {
				gc.deletes.ShutDown()
				gc.owners.ShutDown()
			})
			gc.recheck(pods.info(), tt.pod)
			if got := gc.deletes.Len(); got != map[bool]int{false: 0, true: 1}[tt.queued] {
				t.Fatalf("attempt-to-delete queue holds %d keys, want queued=%v", got, tt.queued)
			}
			if !tt.queued {
				return
			}
			if key, _ := gc.deletes.Get(); key != "pods/default/web-1" {
				t.Fatalf("queued %q, want pods/default/web-1", key)
			}
			if n := gc.owners.Len(); n != 0 {
				t.Fatalf("recheck queued %d owners; it looks at dependents only", n)
			}
		})
	}
}

// BenchmarkRecheckOwnerCached is the price a resync pays for each owned
// object whose owner is cached: the common case, which queues nothing.
func BenchmarkRecheckOwnerCached(b *testing.B) {
	rs := &api.ReplicaSet{Metadata: &api.ObjectMeta{Namespace: "default", Name: "web-abc", Uid: "rs-uid"}}
	p := podOwnedBy(ref("ReplicaSet", "web-abc", "rs-uid"))
	pods := &fakeSource{kind: mustLookup(b, "Pod"), objs: map[string]kinds.Object{kinds.Key(p): p}}
	rss := &fakeSource{kind: mustLookup(b, "ReplicaSet"), objs: map[string]kinds.Object{kinds.Key(rs): rs}}
	gc := New(nil, slog.New(slog.DiscardHandler), nil, Config{}, pods, rss)
	b.Cleanup(func() {
		gc.deletes.ShutDown()
		gc.owners.ShutDown()
	})
	b.ReportAllocs()
	for b.Loop() {
		gc.recheck(pods.info(), p)
	}
	if gc.deletes.Len() != 0 {
		b.Fatal("a dependent whose owner is cached was queued")
	}
}

func mustLookup(tb testing.TB, kind string) *kinds.Info {
	tb.Helper()
	info, ok := kinds.Lookup(kind)
	if !ok {
		tb.Fatalf("unknown kind %s", kind)
	}
	return info
}
