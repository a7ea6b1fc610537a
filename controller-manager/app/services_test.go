package app_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/intstr"
	"github.com/skiff-dev/skiff/proto/api"
)

func TestEndpointsFollowReadyPodsAndResolveNamedPorts(t *testing.T) {
	e := newEnv(t, 2)
	e.startManager(testConfig())
	ctx := context.Background()
	d := newDeployment("web", 3, "nginx")
	d.Spec.Template.Spec.Containers[0].Ports = []*api.ContainerPort{{Name: "http", ContainerPort: 8080}}
	if _, err := e.c.Deployments().Create(ctx, d); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	e.waitDeploymentComplete("web", 3, 30*time.Second)
	svc := &api.Service{
		Metadata: &api.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: &api.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []*api.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
			{Name: "metrics", Port: 9090, TargetPort: intstr.FromInt(9100)},
		}},
	}
	if _, err := e.c.Services().Create(ctx, svc); err != nil {
		t.Fatalf("create service: %v", err)
	}
	wantIPs := func() []string {
		var ips []string
		for _, p := range e.listPods(map[string]string{"app": "web"}) {
			if p.GetMetadata().GetDeletionTimestamp() == nil && p.GetStatus().GetPodIp() != "" {
				ips = append(ips, p.GetStatus().GetPodIp())
			}
		}
		sort.Strings(ips)
		return ips
	}
	check := func() error {
		ep, err := e.c.Endpoints().Get(ctx, "default", "web")
		if err != nil {
			return err
		}
		if len(ep.GetSubsets()) != 1 {
			return errorf("subsets %v", ep.GetSubsets())
		}
		ss := ep.GetSubsets()[0]
		var got []string
		for _, a := range ss.GetAddresses() {
			if a.GetTargetRef().GetKind() != "Pod" || a.GetNodeName() == "" {
				return errorf("address %v lacks its pod or node", a)
			}
			got = append(got, a.GetIp())
		}
		want := wantIPs()
		if len(want) != 3 || len(got) != len(want) {
			return errorf("addresses %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				return errorf("addresses %v, want %v", got, want)
			}
		}
		ports := map[string]int32{}
		for _, p := range ss.GetPorts() {
			ports[p.GetName()] = p.GetPort()
		}
		if ports["http"] != 8080 || ports["metrics"] != 9100 {
			return errorf("ports %v, want http=8080 metrics=9100", ports)
		}
		return nil
	}
	eventually(t, 20*time.Second, "endpoints of the ready pods", check)

	// A replaced pod's IP replaces the old one.
	victim := e.listPods(map[string]string{"app": "web"})[0]
	if _, err := e.c.Pods().Delete(ctx, "default", victim.GetMetadata().GetName(), client.DeleteOptions{}); err != nil {
		t.Fatalf("delete pod: %v", err)
	}
	eventually(t, 30*time.Second, "endpoints after a pod was replaced", func() error {
		if n := runningReady(e.listPods(map[string]string{"app": "web"})); n != 3 {
			return errorf("%d ready pods", n)
		}
		return check()
	})

	if _, err := e.c.Services().Delete(ctx, "default", "web", client.DeleteOptions{}); err != nil {
		t.Fatalf("delete service: %v", err)
	}
	eventually(t, 20*time.Second, "endpoints deleted with the service", func() error {
		if _, err := e.c.Endpoints().Get(ctx, "default", "web"); !client.IsNotFound(err) {
			return errorf("endpoints still there (err %v)", err)
		}
		return nil
	})
}

func TestDeletingNamespaceDeletesItsContentThenItself(t *testing.T) {
	e := newEnv(t, 2)
	e.startManager(testConfig())
	ctx := context.Background()
	if _, err := e.c.Namespaces().Create(ctx, &api.Namespace{Metadata: &api.ObjectMeta{Name: "team-a"}}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	d := newDeployment("web", 2, "nginx")
	d.Metadata.Namespace = "team-a"
	if _, err := e.c.Deployments().Create(ctx, d); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	if _, err := e.c.Services().Create(ctx, &api.Service{Metadata: &api.ObjectMeta{Name: "web", Namespace: "team-a"},
		Spec: &api.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []*api.ServicePort{{Port: 80}}}}); err != nil {
		t.Fatalf("create service: %v", err)
	}
	if _, err := client.For[*api.ConfigMap](e.c).Create(ctx, &api.ConfigMap{Metadata: &api.ObjectMeta{Name: "conf", Namespace: "team-a"},
		Data: map[string]string{"k": "v"}}); err != nil {
		t.Fatalf("create configmap: %v", err)
	}
	eventually(t, 30*time.Second, "pods running in team-a", func() error {
		pods, _, err := e.c.Pods().List(ctx, "team-a", client.ListOptions{})
		if err != nil {
			return err
		}
		if n := runningReady(pods); n != 2 {
			return errorf("%d running pods", n)
		}
		return nil
	})
	if _, err := e.c.Namespaces().Delete(ctx, "", "team-a", client.DeleteOptions{}); err != nil {
		t.Fatalf("delete namespace: %v", err)
	}
	eventually(t, 60*time.Second, "namespace and content gone", func() error {
		ns, err := e.c.Namespaces().Get(ctx, "", "team-a")
		if !client.IsNotFound(err) {
			return errorf("namespace still there: phase %q (err %v)", ns.GetStatus().GetPhase(), err)
		}
		return nil
	})
	// Nothing of team-a survives its namespace.
	pods, _, err := e.c.Pods().List(ctx, "team-a", client.ListOptions{})
	if err == nil && len(pods) > 0 {
		t.Fatalf("%d pods survived their namespace", len(pods))
	}
}
