package server_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/testcluster"
	"github.com/skiff-dev/skiff/proto/api"
)

func pod(name string, finalizers ...string) *api.Pod {
	return &api.Pod{
		Metadata: &api.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"case": name}, Finalizers: finalizers},
		Spec:     &api.PodSpec{Containers: []*api.Container{{Name: "c", Image: "nginx:1.25"}}},
	}
}

func wantCode(t *testing.T, err error, code codes.Code, substr string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), substr) {
		t.Fatalf("error = %v, want %v mentioning %q", err, code, substr)
	}
}

func grace(s int64) *int64 { return &s }

// TestDelete protects what a delete does to the stored object and to the
// watch: graceful pod deletion, finalizers, preconditions (checked against
// the object as it is now, never a lagging cache's copy), dry runs, and
// repeated deletes that change nothing.
func TestDelete(t *testing.T) {
	tc := testcluster.Start(t)
	ctx := t.Context()
	pods := tc.Client.Pods()
	tests := []struct {
		name string
		pod  *api.Pod
		// do deletes the created pod p and checks what each call returns.
		do func(t *testing.T, p *api.Pod)
		// stored: the pod is still there afterwards.
		stored bool
		// events after the pod's creation, in order.
		events []client.EventType
	}{
		{
			name: "unbound pod without finalizers goes at once",
			pod:  pod("at-once"),
			do: func(t *testing.T, p *api.Pod) {
				got, err := pods.Delete(ctx, "default", "at-once", client.DeleteOptions{})
				if err != nil || got.GetMetadata().GetDeletionTimestamp() == nil {
					t.Fatalf("delete returned %v, %v; want the object with its deletionTimestamp", got.GetMetadata(), err)
				}
			},
			events: []client.EventType{client.Deleted},
		},
		{
			name: "finalizer pending keeps the object and a repeated delete changes nothing",
			pod:  pod("held", "example.com/wait"),
			do: func(t *testing.T, p *api.Pod) {
				first, err := pods.Delete(ctx, "default", "held", client.DeleteOptions{})
				if err != nil || first.GetMetadata().GetDeletionTimestamp() == nil {
					t.Fatalf("first delete: %v, %v", first.GetMetadata(), err)
				}
				again, err := pods.Delete(ctx, "default", "held", client.DeleteOptions{})
				if err != nil || again.GetMetadata().GetResourceVersion() != first.GetMetadata().GetResourceVersion() {
					t.Fatalf("repeated delete: rv %s (err %v), want %s unchanged", again.GetMetadata().GetResourceVersion(), err, first.GetMetadata().GetResourceVersion())
				}
			},
			stored: true,
			events: []client.EventType{client.Modified},
		},
		{
			name: "emptying the finalizers of a deleted object removes it",
			pod:  pod("released", "example.com/wait"),
			do: func(t *testing.T, p *api.Pod) {
				marked, err := pods.Delete(ctx, "default", "released", client.DeleteOptions{})
				if err != nil {
					t.Fatal(err)
				}
				marked.Metadata.Finalizers = nil
				if _, err := pods.Update(ctx, marked); err != nil {
					t.Fatal(err)
				}
			},
			events: []client.EventType{client.Modified, client.Deleted},
		},
		{
			name: "orphan policy adds its finalizer",
			pod:  pod("orphan"),
			do: func(t *testing.T, p *api.Pod) {
				got, err := pods.Delete(ctx, "default", "orphan", client.DeleteOptions{PropagationPolicy: "Orphan"})
				if err != nil || len(got.GetMetadata().GetFinalizers()) != 1 || got.GetMetadata().GetFinalizers()[0] != "orphan" {
					t.Fatalf("orphan delete: %v, %v", got.GetMetadata(), err)
				}
			},
			stored: true,
			events: []client.EventType{client.Modified},
		},
		{
			name: "uid precondition of another object is refused",
			pod:  pod("other-uid"),
			do: func(t *testing.T, p *api.Pod) {
				_, err := pods.Delete(ctx, "default", "other-uid", client.DeleteOptions{Preconditions: &api.Preconditions{Uid: "not-" + p.GetMetadata().GetUid()}})
				wantCode(t, err, codes.Aborted, "Precondition failed")
			},
			stored: true,
		},
		{
			name: "resourceVersion precondition of an older version is refused",
			pod:  pod("old-rv"),
			do: func(t *testing.T, p *api.Pod) {
				p.Metadata.Labels["touched"] = "yes"
				if _, err := pods.Update(ctx, p); err != nil {
					t.Fatal(err)
				}
				_, err := pods.Delete(ctx, "default", "old-rv", client.DeleteOptions{Preconditions: &api.Preconditions{ResourceVersion: p.GetMetadata().GetResourceVersion()}})
				wantCode(t, err, codes.Aborted, "has been modified")
			},
			stored: true,
			events: []client.EventType{client.Modified},
		},
		{
			name: "preconditions of the version just written hold",
			pod:  pod("just-written"),
			do: func(t *testing.T, p *api.Pod) {
				p.Metadata.Labels["touched"] = "yes"
				up, err := pods.Update(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := pods.Delete(ctx, "default", "just-written", client.DeleteOptions{Preconditions: &api.Preconditions{
					Uid: up.GetMetadata().GetUid(), ResourceVersion: up.GetMetadata().GetResourceVersion(),
				}}); err != nil {
					t.Fatalf("delete with the preconditions of the write just made: %v", err)
				}
			},
			events: []client.EventType{client.Modified, client.Deleted},
		},
		{
			name: "uid precondition of a namesake just created holds",
			pod:  pod("namesake"),
			do: func(t *testing.T, p *api.Pod) {
				if _, err := pods.Delete(ctx, "default", "namesake", client.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
				again, err := pods.Create(ctx, pod("namesake"))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := pods.Delete(ctx, "default", "namesake", client.DeleteOptions{Preconditions: &api.Preconditions{Uid: again.GetMetadata().GetUid()}}); err != nil {
					t.Fatalf("delete the namesake by its uid: %v", err)
				}
			},
			events: []client.EventType{client.Deleted, client.Added, client.Deleted},
		},
		{
			name: "dry run stores nothing",
			pod:  pod("dry"),
			do: func(t *testing.T, p *api.Pod) {
				out, err := tc.Client.API.Delete(ctx, &api.DeleteRequest{Resource: "pods", Namespace: "default", Name: "dry", DryRun: true})
				if err != nil {
					t.Fatal(err)
				}
				got := &api.Pod{}
				if err := anypb.UnmarshalTo(out, got, proto.UnmarshalOptions{}); err != nil {
					t.Fatal(err)
				}
				if got.GetMetadata().GetDeletionTimestamp() == nil {
					t.Fatalf("dry run returned %v, want the object as the delete would leave it", got.GetMetadata())
				}
			},
			stored: true,
		},
		{
			name: "bound pod is deleted gracefully, a shorter grace period wins, zero removes it",
			pod:  pod("bound"),
			do: func(t *testing.T, p *api.Pod) {
				if _, err := tc.Client.Bind(ctx, "default", "bound", p.GetMetadata().GetUid(), "node-1"); err != nil {
					t.Fatal(err)
				}
				for _, step := range []struct {
					grace *int64
					want  int64
				}{{nil, 30}, {grace(10), 10}, {grace(20), 10}} {
					got, err := pods.Delete(ctx, "default", "bound", client.DeleteOptions{GracePeriodSeconds: step.grace})
					if err != nil {
						t.Fatal(err)
					}
					m := got.GetMetadata()
					if m.GetDeletionGracePeriodSeconds() != step.want || m.GetDeletionTimestamp() == nil ||
						m.GetDeletionTimestamp().AsTime().Before(time.Now().Add(time.Duration(step.want-5)*time.Second)) {
						t.Fatalf("delete with grace %v: grace %d, deletionTimestamp %v; want grace %d from now", step.grace, m.GetDeletionGracePeriodSeconds(), m.GetDeletionTimestamp().AsTime(), step.want)
					}
				}
				if _, err := pods.Delete(ctx, "default", "bound", client.DeleteOptions{GracePeriodSeconds: grace(0)}); err != nil {
					t.Fatal(err)
				}
			},
			// bind, graceful mark, shorter grace, removal; the longer grace
			// asked for in between changes nothing.
			events: []client.EventType{client.Modified, client.Modified, client.Modified, client.Deleted},
		},
		{
			name: "missing object is NotFound",
			pod:  pod("missing"),
			do: func(t *testing.T, p *api.Pod) {
				_, err := pods.Delete(ctx, "default", "never-created", client.DeleteOptions{})
				wantCode(t, err, codes.NotFound, "not found")
			},
			stored: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := tt.pod.GetMetadata().GetName()
			created, err := pods.Create(ctx, tt.pod)
			if err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithCancel(ctx)
			t.Cleanup(cancel)
			w, err := pods.Watch(wctx, "default", client.ListOptions{LabelSelector: "case=" + name, ResourceVersion: created.GetMetadata().GetResourceVersion()})
			if err != nil {
				t.Fatal(err)
			}
			tt.do(t, created)

			// A marker written last: every event of the case comes before it.
			marker := pod(name + "-end")
			marker.Metadata.Labels["case"] = name
			if _, err := pods.Create(ctx, marker); err != nil {
				t.Fatal(err)
			}
			var got []client.EventType
			for {
				ev, err := w.Next()
				if err != nil {
					t.Fatalf("watch after %v: %v", got, err)
				}
				if ev.Type == client.Bookmark {
					continue
				}
				if ev.Object.GetMetadata().GetName() == marker.GetMetadata().GetName() {
					break
				}
				got = append(got, ev.Type)
			}
			if !slices.Equal(got, tt.events) {
				t.Errorf("watch events %v, want %v", got, tt.events)
			}
			_, err = pods.Get(ctx, "default", name)
			if stored := err == nil; stored != tt.stored {
				t.Errorf("stored after the case = %v (err %v), want %v", stored, err, tt.stored)
			}
		})
	}
}
