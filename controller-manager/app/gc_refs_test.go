package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiff-dev/skiff/controller-manager/app"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/proto/api"
)

func TestGarbageCollectorDropsDanglingReferencesAndDeletesOrphanedDependents(t *testing.T) {
	e := newEnv(t, 1)
	e.startManager(testConfig())
	ctx := context.Background()
	owner, err := e.c.Services().Create(ctx, &api.Service{Metadata: &api.ObjectMeta{Name: "owner", Namespace: "default"},
		Spec: &api.ServiceSpec{Ports: []*api.ServicePort{{Port: 80}}}})
	if err != nil {
		t.Fatalf("create owner: %v", err)
	}
	live := &api.OwnerReference{ApiVersion: "v1", Kind: "Service", Name: "owner", Uid: owner.GetMetadata().GetUid()}
	gone := &api.OwnerReference{ApiVersion: "v1", Kind: "Service", Name: "ghost", Uid: "00000000-0000-0000-0000-000000000000"}
	cms := client.For[*api.ConfigMap](e.c)
	if _, err := cms.Create(ctx, &api.ConfigMap{Metadata: &api.ObjectMeta{Name: "shared", Namespace: "default",
		OwnerReferences: []*api.OwnerReference{live, gone}}}); err != nil {
		t.Fatalf("create shared: %v", err)
	}
	if _, err := cms.Create(ctx, &api.ConfigMap{Metadata: &api.ObjectMeta{Name: "abandoned", Namespace: "default",
		OwnerReferences: []*api.OwnerReference{gone}}}); err != nil {
		t.Fatalf("create abandoned: %v", err)
	}
	eventually(t, 20*time.Second, "dangling reference dropped, abandoned object deleted", func() error {
		shared, err := cms.Get(ctx, "default", "shared")
		if err != nil {
			return err
		}
		if refs := shared.GetMetadata().GetOwnerReferences(); len(refs) != 1 || refs[0].GetUid() != live.GetUid() {
			return errorf("shared ownerReferences %v", refs)
		}
		if _, err := cms.Get(ctx, "default", "abandoned"); !client.IsNotFound(err) {
			return errorf("abandoned still there (err %v)", err)
		}
		return nil
	})
	// The owner goes: so does its last dependent.
	if _, err := e.c.Services().Delete(ctx, "default", "owner", client.DeleteOptions{}); err != nil {
		t.Fatalf("delete owner: %v", err)
	}
	eventually(t, 20*time.Second, "dependent deleted with its owner", func() error {
		if _, err := cms.Get(ctx, "default", "shared"); !client.IsNotFound(err) {
			return errorf("shared still there (err %v)", err)
		}
		return nil
	})
}

func TestMetricsReportQueuesAndSyncs(t *testing.T) {
	e := newEnv(t, 1)
	reg := prometheus.NewRegistry()
	m, err := app.New(testConfig(), e.c, &eventLog{}, reg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	if _, err := e.c.Deployments().Create(context.Background(), newDeployment("web", 1, "nginx")); err != nil {
		t.Fatal(err)
	}
	e.waitDeploymentComplete("web", 1, 30*time.Second)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				seen[f.GetName()+"/"+l.GetValue()] = true
			}
		}
	}
	for _, want := range []string{
		"skiff_controller_sync_duration_seconds/deployment",
		"skiff_controller_sync_duration_seconds/replicaset",
		"skiff_workqueue_depth/replicaset",
		"skiff_workqueue_adds_total/deployment",
	} {
		if !seen[want] {
			var names []string
			for k := range seen {
				names = append(names, k)
			}
			t.Fatalf("metric %s missing; have %s", want, strings.Join(names, " "))
		}
	}
	if err := m.Ready(); err != nil {
		t.Fatalf("not ready: %v", err)
	}
}
