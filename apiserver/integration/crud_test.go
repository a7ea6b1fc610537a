package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/internal/testcluster"
	"github.com/skiff-dev/skiff/proto/api"
)

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	t.Cleanup(cancel)
	return c
}

func nginxPod(name string) *api.Pod {
	return &api.Pod{
		Metadata: &api.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "nginx"}},
		Spec:     &api.PodSpec{Containers: []*api.Container{{Name: "nginx", Image: "nginx"}}},
	}
}

func wantCode(t *testing.T, err error, code codes.Code, substr string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("error = %v, want code %v", err, code)
	}
	if substr != "" && !strings.Contains(status.Convert(err).Message(), substr) {
		t.Fatalf("error message %q does not mention %q", status.Convert(err).Message(), substr)
	}
}

func TestCRUDEveryKind(t *testing.T) {
	c := testcluster.Start(t)
	ctx := ctx(t)
	for _, obj := range validObjects("crud-1") {
		info, err := kinds.For(obj)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(info.Kind, func(t *testing.T) {
			rc := client.ForKind(c.Client, info)
			ns := obj.GetMetadata().GetNamespace()
			created, err := rc.Create(ctx, obj)
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			m := created.GetMetadata()
			if m.GetUid() == "" || m.GetResourceVersion() == "" || m.GetCreationTimestamp() == nil || m.GetGeneration() != 1 {
				t.Fatalf("server-set metadata missing: %v", m)
			}
			if _, err := rc.Create(ctx, obj); status.Code(err) != codes.AlreadyExists {
				t.Fatalf("second create: %v, want AlreadyExists", err)
			}
			got, err := rc.Get(ctx, ns, "crud-1")
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			if !proto.Equal(got, created) {
				t.Fatalf("get returned\n%v\nwant\n%v", got, created)
			}
			list, rv, err := rc.List(ctx, ns, client.ListOptions{LabelSelector: "app=web"})
			if err != nil || rv == "" {
				t.Fatalf("list: %v (rv %q)", err, rv)
			}
			found := false
			for _, o := range list {
				found = found || o.GetMetadata().GetName() == "crud-1"
			}
			if !found {
				t.Fatalf("list does not contain the object")
			}
			changed := proto.Clone(got).(kinds.Object)
			kinds.Meta(changed).Labels["changed"] = "yes"
			updated, err := rc.Update(ctx, changed)
			if err != nil {
				t.Fatalf("update: %v", err)
			}
			if updated.GetMetadata().GetResourceVersion() == got.GetMetadata().GetResourceVersion() {
				t.Fatal("update did not move resourceVersion")
			}
			// got still carries the old resourceVersion: a conflict.
			kinds.Meta(got).Labels["stale"] = "yes"
			if _, err := rc.Update(ctx, got); status.Code(err) != codes.Aborted {
				t.Fatalf("stale update: %v, want Aborted", err)
			}
			if _, err := rc.Delete(ctx, ns, "crud-1", client.DeleteOptions{}); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if info.Kind == "Namespace" {
				// Namespaces wait for the namespace controller to empty them.
				ns, err := rc.Get(ctx, "", "crud-1")
				if err != nil || ns.GetMetadata().GetDeletionTimestamp() == nil || ns.(*api.Namespace).GetStatus().GetPhase() != "Terminating" {
					t.Fatalf("namespace after delete = %v, %v; want Terminating", ns, err)
				}
				return
			}
			if _, err := rc.Get(ctx, ns, "crud-1"); status.Code(err) != codes.NotFound {
				t.Fatalf("get after delete: %v, want NotFound", err)
			}
		})
	}
}

func TestValidationErrorsNameTheFieldAndStoreNothing(t *testing.T) {
	c := testcluster.Start(t)
	ctx := ctx(t)
	neg := int32(-1)
	tests := []struct {
		name  string
		obj   kinds.Object
		field string
	}{
		{"negative replicas", &api.Deployment{Metadata: meta("bad", "default"), Spec: &api.DeploymentSpec{
			Replicas: &neg, Selector: &api.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, Template: template()}}, "spec.replicas"},
		{"no containers", &api.Pod{Metadata: meta("bad", "default"), Spec: &api.PodSpec{}}, "spec.containers"},
		{"bad name", &api.Pod{Metadata: meta("Bad_Name", "default"), Spec: podSpec()}, "metadata.name"},
		{"missing image", &api.Pod{Metadata: meta("bad", "default"), Spec: &api.PodSpec{Containers: []*api.Container{{Name: "c"}}}}, "spec.containers[0].image"},
		{"port out of range", &api.Service{Metadata: meta("bad", "default"), Spec: &api.ServiceSpec{Ports: []*api.ServicePort{{Port: 70000}}}}, "spec.ports[0].port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, _ := kinds.For(tt.obj)
			rc := client.ForKind(c.Client, info)
			_, err := rc.Create(ctx, tt.obj)
			wantCode(t, err, codes.InvalidArgument, tt.field)
			list, _, err := rc.List(ctx, "", client.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 0 {
				t.Fatalf("invalid create stored %d objects", len(list))
			}
		})
	}
}

func TestNamespaceMustExist(t *testing.T) {
	c := testcluster.Start(t)
	ctx := ctx(t)
	p := nginxPod("web")
	p.Metadata.Namespace = "nowhere"
	_, err := c.Client.Pods().Create(ctx, p)
	wantCode(t, err, codes.NotFound, `namespaces "nowhere" not found`)
	for _, name := range []string{"default", "skiff-system"} {
		if _, err := c.Client.Namespaces().Get(ctx, "", name); err != nil {
			t.Fatalf("namespace %s missing at start: %v", name, err)
		}
		_, err := c.Client.Namespaces().Delete(ctx, "", name, client.DeleteOptions{})
		wantCode(t, err, codes.PermissionDenied, "may not be deleted")
	}
	if _, err := c.Client.Namespaces().Create(ctx, &api.Namespace{Metadata: &api.ObjectMeta{Name: "going"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.Namespaces().Delete(ctx, "", "going", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	p.Metadata.Namespace = "going"
	_, err = c.Client.Pods().Create(ctx, p)
	wantCode(t, err, codes.FailedPrecondition, "being terminated")
}

func TestGenerateNameMakesUniqueNames(t *testing.T) {
	c := testcluster.Start(t)
	ctx := ctx(t)
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		p := nginxPod("")
		p.Metadata.GenerateName = "web-75f95db655-"
		got, err := c.Client.Pods().Create(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		name := got.Metadata.Name
		if !strings.HasPrefix(name, "web-75f95db655-") || len(name) != len("web-75f95db655-")+5 {
			t.Fatalf("generated name %q", name)
		}
		if seen[name] {
			t.Fatalf("name %q generated twice", name)
		}
		seen[name] = true
	}
}

func TestLabelAndFieldSelectors(t *testing.T) {
	c := testcluster.Start(t)
	ctx := ctx(t)
	for i := 0; i < 6; i++ {
		p := nginxPod(fmt.Sprintf("p%d", i))
		if i%2 == 0 {
			p.Metadata.Labels["tier"] = "front"
		}
		if _, err := c.Client.Pods().Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Client.Bind(ctx, "default", "p0", "", "node-1"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		labels, fields string
		want           int
	}{
		{"tier=front", "", 3},
		{"tier!=front", "", 3},
		{"", "spec.nodeName=node-1", 1},
		{"", "spec.nodeName=", 5},
		{"tier=front", "spec.nodeName=", 2},
		{"", "metadata.name=p3", 1},
	}
	for _, tt := range tests {
		list, _, err := c.Client.Pods().List(ctx, "default", client.ListOptions{LabelSelector: tt.labels, FieldSelector: tt.fields})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != tt.want {
			t.Errorf("labels %q fields %q: %d pods, want %d", tt.labels, tt.fields, len(list), tt.want)
		}
	}
	_, _, err := c.Client.Deployments().List(ctx, "default", client.ListOptions{FieldSelector: "spec.nodeName=x"})
	wantCode(t, err, codes.InvalidArgument, "spec.nodeName")
}

func TestUpdateSplitsSpecAndStatus(t *testing.T) {
	c := testcluster.Start(t)
	ctx := ctx(t)
	pod, err := c.Client.Pods().Create(ctx, nginxPod("web"))
	if err != nil {
		t.Fatal(err)
	}
	// Update ignores status; generation stays when only metadata changes.
	pod.Status.Phase = "Running"
	pod.Metadata.Labels["x"] = "y"
	pod, err = c.Client.Pods().Update(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	if pod.Status.Phase != "Pending" || pod.Metadata.Generation != 1 {
		t.Fatalf("after Update: phase %q generation %d, want Pending 1", pod.Status.Phase, pod.Metadata.Generation)
	}
	// UpdateStatus changes only status.
	pod.Status.Phase = "Running"
	pod.Status.PodIp = "10.244.1.7"
	pod.Metadata.Labels["ignored"] = "yes"
	pod, err = c.Client.Pods().UpdateStatus(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	if pod.Status.Phase != "Running" || pod.Metadata.Labels["ignored"] != "" {
		t.Fatalf("after UpdateStatus: phase %q labels %v", pod.Status.Phase, pod.Metadata.Labels)
	}
	// A spec change moves generation.
	d, err := c.Client.Deployments().Create(ctx, validObjects("gen")[8].(*api.Deployment))
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Template.Spec.Containers[0].Image = "nginx:1.26"
	d, err = c.Client.Deployments().Update(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if d.Metadata.Generation != 2 {
		t.Fatalf("generation %d after spec change, want 2", d.Metadata.Generation)
	}
	// resourceVersion is required.
	d.Metadata.ResourceVersion = ""
	_, err = c.Client.Deployments().Update(ctx, d)
	wantCode(t, err, codes.InvalidArgument, "metadata.resourceVersion")
}

func TestGracefulPodDeletionAndBinding(t *testing.T) {
	c := testcluster.Start(t)
	ctx := ctx(t)
	pods := c.Client.Pods()
	if _, err := pods.Create(ctx, nginxPod("bound")); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Create(ctx, nginxPod("unbound")); err != nil {
		t.Fatal(err)
	}
	bound, err := c.Client.Bind(ctx, "default", "bound", "", "node-1")
	if err != nil {
		t.Fatal(err)
	}
	if bound.Spec.NodeName != "node-1" {
		t.Fatalf("nodeName %q", bound.Spec.NodeName)
	}
	_, err = c.Client.Bind(ctx, "default", "bound", "", "node-2")
	wantCode(t, err, codes.FailedPrecondition, "already assigned")
	_, err = c.Client.Bind(ctx, "default", "unbound", "wrong-uid", "node-2")
	wantCode(t, err, codes.Aborted, "")

	// An unbound pod goes at once.
	if _, err := pods.Delete(ctx, "default", "unbound", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "default", "unbound"); status.Code(err) != codes.NotFound {
		t.Fatalf("unbound pod after delete: %v", err)
	}
	// A bound pod waits for its kubelet: Terminating with a grace period.
	marked, err := pods.Delete(ctx, "default", "bound", client.DeleteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if marked.Metadata.DeletionTimestamp == nil || marked.Metadata.GetDeletionGracePeriodSeconds() != 30 {
		t.Fatalf("bound pod after delete: %v", marked.Metadata)
	}
	if _, err := pods.Get(ctx, "default", "bound"); err != nil {
		t.Fatalf("bound pod removed before its kubelet confirmed: %v", err)
	}
	zero := int64(0)
	if _, err := pods.Delete(ctx, "default", "bound", client.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "default", "bound"); status.Code(err) != codes.NotFound {
		t.Fatalf("pod after grace 0 delete: %v", err)
	}
}

func TestFinalizersHoldDeletion(t *testing.T) {
	c := testcluster.Start(t)
	ctx := ctx(t)
	cms := client.For[*api.ConfigMap](c.Client)
	cm := validObjects("held")[6].(*api.ConfigMap)
	cm.Metadata.Finalizers = []string{"example.com/wait"}
	if _, err := cms.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Delete(ctx, "default", "held", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	held, err := cms.Get(ctx, "default", "held")
	if err != nil || held.Metadata.DeletionTimestamp == nil {
		t.Fatalf("object with finalizer: %v, %v; want it kept with deletionTimestamp", held, err)
	}
	held.Metadata.Finalizers = nil
	if _, err := cms.Update(ctx, held); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Get(ctx, "default", "held"); status.Code(err) != codes.NotFound {
		t.Fatalf("after last finalizer removed: %v, want NotFound", err)
	}
	// Orphan and foreground deletion add the garbage collector's finalizers.
	for policy, finalizer := range map[string]string{"Orphan": "orphan", "Foreground": "foregroundDeletion"} {
		d := validObjects("d-" + strings.ToLower(policy))[8].(*api.Deployment)
		if _, err := c.Client.Deployments().Create(ctx, d); err != nil {
			t.Fatal(err)
		}
		got, err := c.Client.Deployments().Delete(ctx, "default", d.Metadata.Name, client.DeleteOptions{PropagationPolicy: policy})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Metadata.Finalizers) != 1 || got.Metadata.Finalizers[0] != finalizer || got.Metadata.DeletionTimestamp == nil {
			t.Fatalf("%s delete: metadata %v", policy, got.Metadata)
		}
	}
	_, err = c.Client.Deployments().Delete(ctx, "default", "x", client.DeleteOptions{PropagationPolicy: "Sideways"})
	wantCode(t, err, codes.InvalidArgument, "propagationPolicy")
}

func TestServiceAddressesAllocatedOnceAndFreed(t *testing.T) {
	c := testcluster.Start(t)
	ctx := ctx(t)
	svcs := c.Client.Services()
	seen := map[string]bool{}
	for i := 0; i < 10; i++ {
		s := validObjects(fmt.Sprintf("svc-%d", i))[3].(*api.Service)
		s.Spec.Type = "NodePort"
		got, err := svcs.Create(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		ip := got.Spec.ClusterIp
		if !strings.HasPrefix(ip, "10.") || seen[ip] {
			t.Fatalf("clusterIP %q (seen before: %v)", ip, seen[ip])
		}
		seen[ip] = true
		if np := got.Spec.Ports[0].NodePort; np < 30000 || np > 32767 {
			t.Fatalf("nodePort %d", np)
		}
	}
	first, _ := svcs.Get(ctx, "default", "svc-0")
	taken := validObjects("taken")[3].(*api.Service)
	taken.Spec.ClusterIp = first.Spec.ClusterIp
	_, err := svcs.Create(ctx, taken)
	wantCode(t, err, codes.InvalidArgument, "spec.clusterIP")
	if _, err := svcs.Delete(ctx, "default", "svc-0", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svcs.Create(ctx, taken); err != nil {
		t.Fatalf("address not freed by delete: %v", err)
	}
}

func TestRestartKeepsEveryObject(t *testing.T) {
	c := testcluster.Start(t)
	ctx := ctx(t)
	var want []kinds.Object
	for _, obj := range validObjects("keep") {
		info, _ := kinds.For(obj)
		got, err := client.ForKind(c.Client, info).Create(ctx, obj)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, got)
	}
	c.Restart(t)
	for _, w := range want {
		info, _ := kinds.For(w)
		got, err := client.ForKind(c.Client, info).Get(ctx, w.GetMetadata().GetNamespace(), "keep")
		if err != nil {
			t.Fatalf("%s after restart: %v", info.Kind, err)
		}
		if !proto.Equal(got, w) {
			t.Fatalf("%s changed across restart:\n%v\nwant\n%v", info.Kind, got, w)
		}
	}
}

func TestOversizedRequestIsRefused(t *testing.T) {
	c := testcluster.Start(t)
	ctx := ctx(t)
	cm := validObjects("big")[6].(*api.ConfigMap)
	cm.Data["blob"] = strings.Repeat("x", 4<<20)
	_, err := client.For[*api.ConfigMap](c.Client).Create(ctx, cm)
	wantCode(t, err, codes.ResourceExhausted, "")
	if _, err := client.For[*api.ConfigMap](c.Client).Get(ctx, "default", "big"); status.Code(err) != codes.NotFound {
		t.Fatalf("oversized object stored: %v", err)
	}
}

// A dry-run create answers as the create would (defaulted object, a taken
// name refused) and stores nothing.
func TestDryRunCreateStoresNothing(t *testing.T) {
	c := testcluster.Start(t)
	ctx := ctx(t)
	pods := c.Client.Pods()
	if _, err := pods.Create(ctx, &api.Pod{Metadata: meta("taken", "default"), Spec: podSpec()}); err != nil {
		t.Fatal(err)
	}
	dryRun := func(name string) error {
		a, err := anypb.New(&api.Pod{Metadata: meta(name, "default"), Spec: podSpec()})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Client.API.Create(ctx, &api.CreateRequest{Object: a, DryRun: true})
		return err
	}
	tests := []struct {
		name string
		code codes.Code
	}{
		{"free", codes.OK},
		{"taken", codes.AlreadyExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := dryRun(tt.name); status.Code(err) != tt.code {
				t.Fatalf("dry-run create of %q: %v, want %v", tt.name, err, tt.code)
			}
		})
	}
	list, _, err := pods.List(ctx, "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Errorf("dry runs stored objects: %d pods, want only the one created", len(list))
	}
}
