package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/client"
)

func TestDeletingDeploymentPropagatesByPolicy(t *testing.T) {
	tests := []struct {
		policy string
		// keep: the replicaset and pods survive, released by their owner.
		keep bool
	}{
		{policy: "Background"},
		{policy: "Foreground"},
		{policy: "Orphan", keep: true},
	}
	e := newEnv(t, 2)
	e.startManager(testConfig())
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			name := "web-" + map[string]string{"Background": "bg", "Foreground": "fg", "Orphan": "orphan"}[tt.policy]
			if _, err := e.c.Deployments().Create(ctx, newDeployment(name, 3, "nginx")); err != nil {
				t.Fatalf("create: %v", err)
			}
			d := e.waitDeploymentComplete(name, 3, 30*time.Second)
			sel := map[string]string{"app": name}
			rsUID := e.listReplicaSets(sel)[0].GetMetadata().GetUid()

			if _, err := e.c.Deployments().Delete(ctx, "default", name, client.DeleteOptions{PropagationPolicy: tt.policy}); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if tt.policy == "Foreground" {
				// The deployment waits, held by its finalizer, while its
				// dependents go.
				got, err := e.c.Deployments().Get(ctx, "default", name)
				if err == nil && got.GetMetadata().GetDeletionTimestamp() == nil {
					t.Fatalf("foreground-deleted deployment has no deletionTimestamp")
				}
			}
			eventually(t, 30*time.Second, "deployment gone", func() error {
				if _, err := e.c.Deployments().Get(ctx, "default", name); !client.IsNotFound(err) {
					return errorf("deployment still there (err %v)", err)
				}
				return nil
			})
			if tt.policy == "Foreground" {
				// Foreground: the owner goes last.
				if rss, pods := e.listReplicaSets(sel), e.listPods(sel); len(rss)+len(pods) > 0 {
					t.Fatalf("deployment gone before its dependents: %d replicasets, %d pods left", len(rss), len(pods))
				}
			}
			if !tt.keep {
				eventually(t, 30*time.Second, "replicasets and pods gone", func() error {
					if rss := e.listReplicaSets(sel); len(rss) > 0 {
						return errorf("%d replicasets left", len(rss))
					}
					if pods := e.listPods(sel); len(pods) > 0 {
						return errorf("%d pods left", len(pods))
					}
					return nil
				})
				return
			}
			// Orphaned: the replicaset lives on without an owner and keeps
			// its pods.
			time.Sleep(2 * time.Second)
			rss := e.listReplicaSets(sel)
			if len(rss) != 1 || rss[0].GetMetadata().GetUid() != rsUID {
				t.Fatalf("orphaned replicaset gone: %v", rss)
			}
			if refs := rss[0].GetMetadata().GetOwnerReferences(); len(refs) != 0 {
				t.Fatalf("orphaned replicaset still has ownerReferences %v", refs)
			}
			if n := runningReady(e.listPods(sel)); n != 3 {
				t.Fatalf("%d orphaned pods running, want 3", n)
			}
			_ = d
		})
	}
}
