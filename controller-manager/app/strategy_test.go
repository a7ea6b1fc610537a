package app_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/controller-manager/controllerutil"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/proto/api"
)

func TestRecreateNeverRunsOldAndNewPodsTogether(t *testing.T) {
	e := newEnv(t, 2)
	e.startManager(testConfig())
	d := newDeployment("web", 3, "nginx:1")
	d.Spec.Strategy = &api.DeploymentStrategy{Type: "Recreate"}
	if _, err := e.c.Deployments().Create(context.Background(), d); err != nil {
		t.Fatalf("create: %v", err)
	}
	e.waitDeploymentComplete("web", 3, 30*time.Second)

	var overlap atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			images := map[string]bool{}
			for _, p := range e.listPods(map[string]string{"app": "web"}) {
				images[p.GetSpec().GetContainers()[0].GetImage()] = true
			}
			if len(images) > 1 {
				overlap.Store(true)
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
	e.updateDeployment("web", func(d *api.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "nginx:2" })
	e.waitDeploymentComplete("web", 3, 30*time.Second)
	close(stop)
	wg.Wait()
	if overlap.Load() {
		t.Fatal("old and new pods existed at the same time during a Recreate rollout")
	}
}

func TestPausedDeploymentScalesButDoesNotRollOut(t *testing.T) {
	e := newEnv(t, 2)
	e.startManager(testConfig())
	if _, err := e.c.Deployments().Create(context.Background(), newDeployment("web", 2, "nginx:1")); err != nil {
		t.Fatalf("create: %v", err)
	}
	e.waitDeploymentComplete("web", 2, 30*time.Second)
	e.updateDeployment("web", func(d *api.Deployment) {
		d.Spec.Paused = true
		d.Spec.Template.Spec.Containers[0].Image = "nginx:2"
		d.Spec.Replicas = ptr(int32(4))
	})
	eventually(t, 30*time.Second, "paused deployment scaled", func() error {
		rss := e.listReplicaSets(map[string]string{"app": "web"})
		if len(rss) != 1 {
			return errorf("%d replicasets: a paused deployment rolled out", len(rss))
		}
		if n := runningReady(e.listPods(map[string]string{"app": "web"})); n != 4 {
			return errorf("%d pods", n)
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond)
	if rss := e.listReplicaSets(map[string]string{"app": "web"}); len(rss) != 1 {
		t.Fatalf("%d replicasets while paused", len(rss))
	}
	e.updateDeployment("web", func(d *api.Deployment) { d.Spec.Paused = false })
	e.waitDeploymentComplete("web", 4, 30*time.Second)
	for _, p := range e.listPods(map[string]string{"app": "web"}) {
		if img := p.GetSpec().GetContainers()[0].GetImage(); img != "nginx:2" && p.GetMetadata().GetDeletionTimestamp() == nil {
			t.Fatalf("pod %s runs %s after resume", p.GetMetadata().GetName(), img)
		}
	}
}

func TestRevisionHistoryLimitDeletesOldestReplicaSets(t *testing.T) {
	e := newEnv(t, 2)
	e.startManager(testConfig())
	d := newDeployment("web", 1, "nginx:0")
	d.Spec.RevisionHistoryLimit = ptr(int32(1))
	if _, err := e.c.Deployments().Create(context.Background(), d); err != nil {
		t.Fatalf("create: %v", err)
	}
	e.waitDeploymentComplete("web", 1, 30*time.Second)
	for _, img := range []string{"nginx:1", "nginx:2", "nginx:3"} {
		e.updateDeployment("web", func(d *api.Deployment) { d.Spec.Template.Spec.Containers[0].Image = img })
		e.waitDeploymentComplete("web", 1, 30*time.Second)
	}
	eventually(t, 30*time.Second, "history trimmed to one old replicaset", func() error {
		rss := e.listReplicaSets(map[string]string{"app": "web"})
		if len(rss) != 2 {
			return errorf("%d replicasets, want the current one and one old", len(rss))
		}
		for _, rs := range rss {
			img := rs.GetSpec().GetTemplate().GetSpec().GetContainers()[0].GetImage()
			if img != "nginx:3" && img != "nginx:2" {
				return errorf("kept replicaset of %s", img)
			}
		}
		return nil
	})
}

func TestReplicaSetAdoptsOrphansAndReleasesPodsThatStopMatching(t *testing.T) {
	e := newEnv(t, 2)
	e.startManager(testConfig())
	ctx := context.Background()
	lbl := map[string]string{"app": "adopt"}
	orphan := &api.Pod{Metadata: &api.ObjectMeta{Name: "orphan", Namespace: "default", Labels: lbl},
		Spec: &api.PodSpec{Containers: []*api.Container{{Name: "c", Image: "nginx"}}}}
	if _, err := e.c.Pods().Create(ctx, orphan); err != nil {
		t.Fatalf("create orphan: %v", err)
	}
	rs := &api.ReplicaSet{
		Metadata: &api.ObjectMeta{Name: "adopt", Namespace: "default"},
		Spec: &api.ReplicaSetSpec{Replicas: ptr(int32(2)), Selector: &api.LabelSelector{MatchLabels: lbl},
			Template: &api.PodTemplateSpec{Metadata: &api.ObjectMeta{Labels: lbl},
				Spec: &api.PodSpec{Containers: []*api.Container{{Name: "c", Image: "nginx"}}}}},
	}
	created, err := e.c.ReplicaSets().Create(ctx, rs)
	if err != nil {
		t.Fatalf("create replicaset: %v", err)
	}
	eventually(t, 30*time.Second, "orphan adopted, one pod created", func() error {
		pods := e.listPods(lbl)
		if len(pods) != 2 {
			return errorf("%d pods, want the orphan and one more", len(pods))
		}
		for _, p := range pods {
			if !controllerutil.IsControlledBy(p.GetMetadata(), created.GetMetadata().GetUid()) {
				return errorf("pod %s not controlled by the replicaset", p.GetMetadata().GetName())
			}
		}
		return nil
	})

	// Relabel the orphan: it is released and replaced.
	err = controllerutil.RetryOnConflict(ctx, func() error {
		p, err := e.c.Pods().Get(ctx, "default", "orphan")
		if err != nil {
			return err
		}
		p = proto.Clone(p).(*api.Pod)
		p.Metadata.Labels = map[string]string{"app": "elsewhere"}
		_, err = e.c.Pods().Update(ctx, p)
		return err
	})
	if err != nil {
		t.Fatalf("relabel: %v", err)
	}
	eventually(t, 30*time.Second, "released and replaced", func() error {
		p, err := e.c.Pods().Get(ctx, "default", "orphan")
		if err != nil {
			return err
		}
		if len(p.GetMetadata().GetOwnerReferences()) != 0 {
			return errorf("released pod still owned: %v", p.GetMetadata().GetOwnerReferences())
		}
		if n := len(e.listPods(lbl)); n != 2 {
			return errorf("%d matching pods, want 2", n)
		}
		return nil
	})
	if _, err := e.c.Pods().Get(ctx, "default", "orphan"); client.IsNotFound(err) {
		t.Fatal("the released pod was deleted")
	}
}
