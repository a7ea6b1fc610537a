package app_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/controller-manager/deployment"
	"github.com/skiff-dev/skiff/internal/client"
)

func TestDeploymentCreatesNamedReplicaSetAndRunningPods(t *testing.T) {
	e := newEnv(t, 2)
	e.startManager(testConfig())
	ctx := context.Background()

	d, err := e.c.Deployments().Create(ctx, newDeployment("k8s-nginx", 3, "nginx"))
	if err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	d = e.waitDeploymentComplete("k8s-nginx", 3, 30*time.Second)

	rss := e.listReplicaSets(map[string]string{"app": "k8s-nginx"})
	if len(rss) != 1 {
		t.Fatalf("%d replicasets, want 1", len(rss))
	}
	rs := rss[0]
	hash := deployment.ComputeHash(d.GetSpec().GetTemplate(), nil)
	if want := "k8s-nginx-" + hash; rs.GetMetadata().GetName() != want {
		t.Fatalf("replicaset %s, want %s", rs.GetMetadata().GetName(), want)
	}
	if !regexp.MustCompile(`^k8s-nginx-[bcdfghjklmnpqrstvwxz2456789]{8,10}$`).MatchString(rs.GetMetadata().GetName()) {
		t.Fatalf("replicaset name %s does not look like NAME-<pod-template-hash>", rs.GetMetadata().GetName())
	}
	if got := rs.GetSpec().GetTemplate().GetMetadata().GetLabels()[deployment.LabelPodTemplateHash]; got != hash {
		t.Fatalf("template pod-template-hash %q, want %q", got, hash)
	}
	if got := d.GetMetadata().GetAnnotations()[deployment.AnnotationRevision]; got != "1" {
		t.Fatalf("deployment revision %q, want 1", got)
	}
	podName := regexp.MustCompile("^" + regexp.QuoteMeta(rs.GetMetadata().GetName()) + "-[a-z0-9]{5}$")
	pods := e.listPods(map[string]string{"app": "k8s-nginx"})
	for _, p := range pods {
		if !podName.MatchString(p.GetMetadata().GetName()) {
			t.Errorf("pod %s not named %s-<5 chars>", p.GetMetadata().GetName(), rs.GetMetadata().GetName())
		}
		if ref := p.GetMetadata().GetOwnerReferences(); len(ref) != 1 || ref[0].GetUid() != rs.GetMetadata().GetUid() || !ref[0].GetController() {
			t.Errorf("pod %s ownerReferences %v, want the replicaset as controller", p.GetMetadata().GetName(), ref)
		}
		if p.GetStatus().GetPodIp() == "" {
			t.Errorf("pod %s has no IP", p.GetMetadata().GetName())
		}
	}
	if !e.mgr.events.has("ScalingReplicaSet") || !e.mgr.events.has("SuccessfulCreate") {
		t.Errorf("missing events: %v", e.mgr.events.events)
	}

	// A deleted pod is replaced.
	victim := pods[0]
	if _, err := e.c.Pods().Delete(ctx, "default", victim.GetMetadata().GetName(), client.DeleteOptions{}); err != nil {
		t.Fatalf("delete pod: %v", err)
	}
	eventually(t, 30*time.Second, "replacement pod", func() error {
		pods := e.listPods(map[string]string{"app": "k8s-nginx"})
		for _, p := range pods {
			if p.GetMetadata().GetUid() == victim.GetMetadata().GetUid() {
				return errorf("pod %s still there", victim.GetMetadata().GetName())
			}
		}
		if n := runningReady(pods); n != 3 {
			return errorf("%d running ready pods, want 3", n)
		}
		return nil
	})
}
