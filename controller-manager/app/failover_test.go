package app_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/proto/api"
)

func TestStandbyTakesOverWhenLeaderStops(t *testing.T) {
	e := newEnv(t, 2)
	cfg := testConfig()
	cfg.LeaderElect = true
	cfg.LeaseDuration, cfg.RenewDeadline, cfg.RetryPeriod = 6*time.Second, 4*time.Second, 500*time.Millisecond
	cfgA, cfgB := cfg, cfg
	cfgA.Identity, cfgB.Identity = "cm-a", "cm-b"
	a := startManager(t, e.c, cfgA)
	b := startManager(t, e.c, cfgB)

	var leader, standby *manager
	findLeader := func() {
		eventually(t, 15*time.Second, "a leader", func() error {
			switch {
			case a.Leading() && b.Leading():
				return errorf("both controller-managers lead")
			case a.Leading():
				leader, standby = a, b
			case b.Leading():
				leader, standby = b, a
			default:
				return errorf("no leader yet")
			}
			return nil
		})
	}
	findLeader()
	ctx := context.Background()
	if _, err := e.c.Deployments().Create(ctx, newDeployment("web", 3, "nginx")); err != nil {
		t.Fatalf("create: %v", err)
	}
	e.waitDeploymentComplete("web", 3, 30*time.Second)
	findLeader() // on a loaded machine the lease may have moved already

	if err := leader.stop(); err != nil {
		t.Fatalf("stop leader: %v", err)
	}
	eventually(t, cfg.LeaseDuration+5*time.Second, "standby leads", func() error {
		if !standby.Leading() {
			return errorf("standby not leading")
		}
		return nil
	})
	e.updateDeployment("web", func(d *api.Deployment) { d.Spec.Replicas = ptr(int32(5)) })
	e.waitDeploymentComplete("web", 5, 30*time.Second)
	victim := e.listPods(map[string]string{"app": "web"})[0]
	if _, err := e.c.Pods().Delete(ctx, "default", victim.GetMetadata().GetName(), client.DeleteOptions{}); err != nil {
		t.Fatalf("delete pod: %v", err)
	}
	e.waitDeploymentComplete("web", 5, 30*time.Second)
}

// TestNeverMorePodsThanDesired scales up while the apiserver restarts and
// the replica count changes under the controllers' feet; no sample of the
// live pods ever exceeds the largest count asked for.
func TestNeverMorePodsThanDesired(t *testing.T) {
	e := newEnv(t, 3)
	cfg := testConfig()
	cfg.NodeMonitorGracePeriod = time.Minute // the restart must not look like dead nodes
	e.startManager(cfg)
	ctx := context.Background()
	const most = 40
	if _, err := e.c.Deployments().Create(ctx, newDeployment("web", 0, "nginx")); err != nil {
		t.Fatalf("create: %v", err)
	}
	e.waitDeploymentComplete("web", 0, 30*time.Second)

	var maxSeen, samples atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			pods, _, err := e.c.Pods().List(ctx, "default", client.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				continue // the apiserver is restarting
			}
			live := int32(0)
			for _, p := range pods {
				if p.GetMetadata().GetDeletionTimestamp() == nil {
					live++
				}
			}
			samples.Add(1)
			if live > maxSeen.Load() {
				maxSeen.Store(live)
			}
		}
	})
	stopSampling := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	t.Cleanup(stopSampling)

	e.updateDeployment("web", func(d *api.Deployment) { d.Spec.Replicas = ptr(int32(most)) })
	eventually(t, 30*time.Second, "scale-up under way", func() error {
		if maxSeen.Load() < 4 {
			return errorf("%d pods", maxSeen.Load())
		}
		return nil
	})
	e.cluster.Restart(t)
	eventually(t, 30*time.Second, "apiserver back", func() error {
		_, err := e.c.Deployments().Get(ctx, "default", "web")
		return err
	})
	e.updateDeployment("web", func(d *api.Deployment) { d.Spec.Replicas = ptr(int32(25)) })
	e.updateDeployment("web", func(d *api.Deployment) { d.Spec.Replicas = ptr(int32(most)) })
	e.waitDeploymentComplete("web", most, 90*time.Second)
	time.Sleep(time.Second) // any late duplicate would show up now
	stopSampling()
	if got := maxSeen.Load(); got > most {
		t.Fatalf("saw %d live pods, more than the %d ever desired", got, most)
	}
	if n := len(e.listPods(map[string]string{"app": "web"})); n != most {
		t.Fatalf("%d pods at the end, want %d", n, most)
	}
	t.Logf("%d samples, at most %d live pods", samples.Load(), maxSeen.Load())
}
