package garbagecollector

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/skiff-dev/skiff/controller-manager/controllerutil"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/informer"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/internal/testcluster"
	"github.com/skiff-dev/skiff/proto/api"
)

// deafToDeletes is a Source whose collector never hears of a delete: the
// cache follows the apiserver, but the event that would send the owner's
// dependents to the collector is lost, as a watch gap or the informer's
// old namesake bug lost it.
type deafToDeletes[T kinds.Object] struct{ *typedSource[T] }

func (s deafToDeletes[T]) register(gc *Collector) {
	h := s.handler(gc)
	h.OnDelete = nil
	s.inf.AddEventHandler(h)
}

func newReplicaSet(name string) *api.ReplicaSet {
	one := int32(1)
	labels := map[string]string{"app": name}
	return &api.ReplicaSet{
		Metadata: &api.ObjectMeta{Namespace: "default", Name: name},
		Spec: &api.ReplicaSetSpec{
			Replicas: &one,
			Selector: &api.LabelSelector{MatchLabels: labels},
			Template: &api.PodTemplateSpec{
				Metadata: &api.ObjectMeta{Labels: labels},
				Spec:     &api.PodSpec{Containers: []*api.Container{{Name: "c", Image: "nginx:1.25"}}},
			},
		},
	}
}

func newOwnedPod(name string, owners ...kinds.Object) *api.Pod {
	p := &api.Pod{
		Metadata: &api.ObjectMeta{Namespace: "default", Name: name},
		Spec:     &api.PodSpec{Containers: []*api.Container{{Name: "c", Image: "nginx:1.25"}}},
	}
	for _, o := range owners {
		p.Metadata.OwnerReferences = append(p.Metadata.OwnerReferences, controllerutil.NewControllerRef(o))
	}
	if len(owners) > 1 {
		for _, r := range p.Metadata.OwnerReferences[1:] {
			r.Controller = nil // one controller at most
		}
	}
	return p
}

// resyncCounter counts the resyncs an informer delivers for each key.
type resyncCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *resyncCounter) handler() informer.Handler[*api.Pod] {
	return informer.Handler[*api.Pod]{OnUpdate: func(old, cur *api.Pod) {
		if old.GetMetadata().GetResourceVersion() != cur.GetMetadata().GetResourceVersion() {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.n[kinds.Key(cur)]++
	}}
}

func (r *resyncCounter) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[key]
}

// countingClient is a client of its own connection to addr that counts
// its calls.
func countingClient(t *testing.T, addr string, calls *atomic.Int64) *client.Client {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			calls.Add(1)
			return invoker(ctx, method, req, reply, cc, opts...)
		}))
	if err != nil {
		t.Fatalf("dial apiserver: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return client.New(conn)
}

func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestResyncCollectsDependentsWhoseOwnersDeleteWasMissed protects the
// safety net behind the delete events: the collector never hears that a
// ReplicaSet went, yet at the next resync it finds the pods that point at
// a uid no longer cached and collects them; a pod whose owner exists is
// never touched.
func TestResyncCollectsDependentsWhoseOwnersDeleteWasMissed(t *testing.T) {
	tc := testcluster.Start(t)
	ctx := t.Context()
	rss, pods := tc.Client.ReplicaSets(), tc.Client.Pods()

	type outcome int
	const (
		untouched outcome = iota
		collected
		// released: the reference to the gone owner is dropped, the pod
		// stays with its other owner.
		released
	)
	tests := []struct {
		name string
		// owners of the pod; the first is the one the case acts on.
		owners []string
		// act changes the first owner while the collector is deaf to deletes.
		act  func(t *testing.T, name string)
		want outcome
	}{
		{
			name: "owner deleted", owners: []string{"deleted"},
			act: func(t *testing.T, name string) {
				if _, err := rss.Delete(ctx, "default", name, client.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			},
			want: collected,
		},
		{
			name: "owner replaced by a namesake with another uid", owners: []string{"replaced"},
			act: func(t *testing.T, name string) {
				if _, err := rss.Delete(ctx, "default", name, client.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
				if _, err := rss.Create(ctx, newReplicaSet(name)); err != nil {
					t.Fatal(err)
				}
			},
			want: collected,
		},
		{
			name: "one of two owners deleted", owners: []string{"half-gone", "half-kept"},
			act: func(t *testing.T, name string) {
				if _, err := rss.Delete(ctx, "default", name, client.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			},
			want: released,
		},
		{
			name: "owner present", owners: []string{"present"},
			act:  func(*testing.T, string) {},
			want: untouched,
		},
	}

	created := map[string]*api.Pod{}
	keptOwner := map[string]string{} // pod → uid of the owner it keeps
	for _, tt := range tests {
		var owners []kinds.Object
		for _, name := range tt.owners {
			rs, err := rss.Create(ctx, newReplicaSet(name))
			if err != nil {
				t.Fatal(err)
			}
			owners = append(owners, rs)
		}
		if tt.want == released {
			keptOwner[tt.owners[0]] = owners[1].GetMetadata().GetUid()
		}
		p, err := pods.Create(ctx, newOwnedPod(tt.owners[0], owners...))
		if err != nil {
			t.Fatal(err)
		}
		created[tt.owners[0]] = p
	}

	// The collector starts with every owner present, so its first look
	// (the informers' adds) leaves every pod alone. Resyncs are frequent
	// so the test does not wait long for the safety net.
	opts := informer.Options{ResyncPeriod: 200 * time.Millisecond}
	podInf := informer.New(pods, opts)
	rsInf := informer.New(rss, opts)
	counter := &resyncCounter{n: map[string]int{}}
	var calls atomic.Int64 // the collector's API calls
	gc := New(countingClient(t, tc.Addr, &calls), slog.New(slog.DiscardHandler), nil, Config{Workers: 2},
		Watch(podInf, pods.Info()),
		deafToDeletes[*api.ReplicaSet]{&typedSource[*api.ReplicaSet]{inf: rsInf, kind: rss.Info()}})
	podInf.AddEventHandler(counter.handler()) // after the collector's: it sees each resync second
	runCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	for _, run := range []func(context.Context){podInf.Run, rsInf.Run, gc.Run} {
		wg.Go(func() { run(runCtx) })
	}
	if !podInf.WaitForSync(ctx) || !rsInf.WaitForSync(ctx) {
		t.Fatal("informers did not sync")
	}
	// Wait for one resync of every pod with all owners present: nothing
	// may be collected before the owners change.
	for key := range created {
		eventually(t, "first resync of "+key, func() error {
			if counter.count("default/"+key) == 0 {
				return fmt.Errorf("no resync yet")
			}
			return nil
		})
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("the collector made %d API calls while every owner was cached", n)
	}
	for name, p := range created {
		got, err := pods.Get(ctx, "default", name)
		if err != nil || got.GetMetadata().GetResourceVersion() != p.GetMetadata().GetResourceVersion() {
			t.Fatalf("pod %s changed while its owners were all present (err %v)", name, err)
		}
	}

	for _, tt := range tests {
		tt.act(t, tt.owners[0])
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := tt.owners[0]
			switch tt.want {
			case collected:
				eventually(t, "pod "+name+" collected", func() error {
					if _, err := pods.Get(ctx, "default", name); !client.IsNotFound(err) {
						return fmt.Errorf("still there (err %v)", err)
					}
					return nil
				})
			case released:
				eventually(t, "pod "+name+" released by its gone owner", func() error {
					got, err := pods.Get(ctx, "default", name)
					if err != nil {
						return err
					}
					if refs := got.GetMetadata().GetOwnerReferences(); len(refs) != 1 || refs[0].GetUid() != keptOwner[name] {
						return fmt.Errorf("ownerReferences %v", refs)
					}
					return nil
				})
			case untouched:
				// Two more resyncs of this pod after the owners changed:
				// the collector has re-checked it at least once since.
				key := "default/" + name
				after := counter.count(key)
				eventually(t, "two more resyncs of "+key, func() error {
					if counter.count(key) < after+2 {
						return fmt.Errorf("%d resyncs", counter.count(key)-after)
					}
					return nil
				})
				got, err := pods.Get(ctx, "default", name)
				if err != nil {
					t.Fatalf("pod whose owner exists: %v", err)
				}
				want := created[name].GetMetadata()
				if got.GetMetadata().GetUid() != want.GetUid() || got.GetMetadata().GetResourceVersion() != want.GetResourceVersion() {
					t.Fatalf("pod whose owner exists was touched: rv %s → %s", want.GetResourceVersion(), got.GetMetadata().GetResourceVersion())
				}
			}
		})
	}
}
