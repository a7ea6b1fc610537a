package app_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/controller-manager/controllerutil"
	"github.com/skiff-dev/skiff/controller-manager/deployment"
	"github.com/skiff-dev/skiff/internal/intstr"
	"github.com/skiff-dev/skiff/proto/api"
)

// updateDeployment applies change to the live deployment, retrying conflicts.
func (e *env) updateDeployment(name string, change func(d *api.Deployment)) {
	e.t.Helper()
	ctx := context.Background()
	err := controllerutil.RetryOnConflict(ctx, func() error {
		d, err := e.c.Deployments().Get(ctx, "default", name)
		if err != nil {
			return err
		}
		change(d)
		_, err = e.c.Deployments().Update(ctx, d)
		return err
	})
	if err != nil {
		e.t.Fatalf("update deployment %s: %v", name, err)
	}
}

func TestScaleUpAndDown(t *testing.T) {
	e := newEnv(t, 3)
	e.startManager(testConfig())
	if _, err := e.c.Deployments().Create(context.Background(), newDeployment("web", 3, "nginx")); err != nil {
		t.Fatalf("create: %v", err)
	}
	e.waitDeploymentComplete("web", 3, 30*time.Second)
	for _, n := range []int32{10, 0, 2} {
		e.updateDeployment("web", func(d *api.Deployment) { d.Spec.Replicas = ptr(n) })
		e.waitDeploymentComplete("web", n, 60*time.Second)
		if rss := e.listReplicaSets(map[string]string{"app": "web"}); len(rss) != 1 || rss[0].GetSpec().GetReplicas() != n {
			t.Fatalf("after scaling to %d: replicasets %v", n, rss)
		}
	}
}

// TestRollingUpdateKeepsAvailabilityAndUndoRestoresTemplate watches every
// pod change during a rollout: ready pods never drop below replicas −
// maxUnavailable, and only the new ReplicaSet is left scaled up. Undo
// (ctl copies the old template back) brings back the old ReplicaSet.
func TestRollingUpdateKeepsAvailabilityAndUndoRestoresTemplate(t *testing.T) {
	e := newEnv(t, 3)
	e.startManager(testConfig())
	const replicas, maxUnavailable = 6, 1
	d := newDeployment("web", replicas, "nginx:1.24")
	d.Spec.Strategy = &api.DeploymentStrategy{Type: "RollingUpdate", RollingUpdate: &api.RollingUpdateDeployment{
		MaxUnavailable: intstr.FromInt(maxUnavailable), MaxSurge: intstr.FromString("25%"),
	}}
	if _, err := e.c.Deployments().Create(context.Background(), d); err != nil {
		t.Fatalf("create: %v", err)
	}
	e.waitDeploymentComplete("web", replicas, 30*time.Second)
	oldRS := e.listReplicaSets(map[string]string{"app": "web"})[0]

	// Sample readiness throughout both rollouts.
	var minReady atomic.Int32
	minReady.Store(replicas)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			n := int32(runningReady(e.listPods(map[string]string{"app": "web"})))
			if n < minReady.Load() {
				minReady.Store(n)
			}
		}
	})
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	})

	e.updateDeployment("web", func(d *api.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "nginx:1.25" })
	done := e.waitDeploymentComplete("web", replicas, 60*time.Second)
	checkOnlyNewScaledUp(t, e, done, replicas, "nginx:1.25")
	if got := done.GetMetadata().GetAnnotations()[deployment.AnnotationRevision]; got != "2" {
		t.Fatalf("revision after update %q, want 2", got)
	}

	// rollout undo: copy the old ReplicaSet's template, minus its hash label.
	tmpl := proto.Clone(oldRS.GetSpec().GetTemplate()).(*api.PodTemplateSpec)
	delete(tmpl.Metadata.Labels, deployment.LabelPodTemplateHash)
	e.updateDeployment("web", func(d *api.Deployment) { d.Spec.Template = tmpl })
	done = e.waitDeploymentComplete("web", replicas, 60*time.Second)
	newRS := checkOnlyNewScaledUp(t, e, done, replicas, "nginx:1.24")
	if newRS.GetMetadata().GetUid() != oldRS.GetMetadata().GetUid() {
		t.Fatalf("undo made a new replicaset %s instead of reusing %s", newRS.GetMetadata().GetName(), oldRS.GetMetadata().GetName())
	}
	if got := newRS.GetMetadata().GetAnnotations()[deployment.AnnotationRevision]; got != "3" {
		t.Fatalf("revision after undo %q, want 3", got)
	}
	if got := newRS.GetMetadata().GetAnnotations()[deployment.AnnotationRevisionHistory]; got != "1" {
		t.Fatalf("revision-history after undo %q, want 1", got)
	}
	close(stop)
	wg.Wait()
	if got := minReady.Load(); got < replicas-maxUnavailable {
		t.Fatalf("ready pods fell to %d during the rollouts, below replicas-maxUnavailable = %d", got, replicas-maxUnavailable)
	}
}

// checkOnlyNewScaledUp asserts every pod runs image and only the
// deployment's current ReplicaSet has replicas; it returns that one.
func checkOnlyNewScaledUp(t *testing.T, e *env, d *api.Deployment, replicas int32, image string) *api.ReplicaSet {
	t.Helper()
	var cur *api.ReplicaSet
	eventually(t, 30*time.Second, "old replicasets scaled to zero", func() error {
		cur = nil
		for _, rs := range e.listReplicaSets(map[string]string{"app": "web"}) {
			if deployment.EqualIgnoreHash(rs.GetSpec().GetTemplate(), d.GetSpec().GetTemplate()) {
				cur = rs
				if rs.GetSpec().GetReplicas() != replicas {
					return errorf("new replicaset %s has %d replicas", rs.GetMetadata().GetName(), rs.GetSpec().GetReplicas())
				}
				continue
			}
			if rs.GetSpec().GetReplicas() != 0 || rs.GetStatus().GetReplicas() != 0 {
				return errorf("old replicaset %s still has %d/%d replicas", rs.GetMetadata().GetName(), rs.GetSpec().GetReplicas(), rs.GetStatus().GetReplicas())
			}
		}
		if cur == nil {
			return errorf("no replicaset with the deployment's template")
		}
		for _, p := range e.listPods(map[string]string{"app": "web"}) {
			if got := p.GetSpec().GetContainers()[0].GetImage(); got != image && p.GetMetadata().GetDeletionTimestamp() == nil {
				return errorf("pod %s runs %s, want %s", p.GetMetadata().GetName(), got, image)
			}
		}
		return nil
	})
	return cur
}
