package cmd

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/ctl/printers"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/proto/api"
)

// simulateControllers does what the deployment and replicaset controllers,
// the scheduler and the kubelet would do for a deployment: a ReplicaSet and
// running pods with status, so get has something real to print.
func simulateControllers(t *testing.T, c *client.Client, d *api.Deployment, ready int32) (*api.ReplicaSet, []*api.Pod) {
	t.Helper()
	ctx := context.Background()
	hash := "75f95db655"
	owner := func(kind, name, uid string) []*api.OwnerReference {
		yes := true
		return []*api.OwnerReference{{ApiVersion: "apps/v1", Kind: kind, Name: name, Uid: uid, Controller: &yes}}
	}
	labels := map[string]string{"app": d.GetMetadata().GetName(), "pod-template-hash": hash}
	rs, err := c.ReplicaSets().Create(ctx, &api.ReplicaSet{
		Metadata: &api.ObjectMeta{Name: d.GetMetadata().GetName() + "-" + hash, Namespace: d.GetMetadata().GetNamespace(), Labels: labels,
			OwnerReferences: owner("Deployment", d.GetMetadata().GetName(), d.GetMetadata().GetUid()),
			Annotations:     map[string]string{"deployment.kubernetes.io/revision": "1"}},
		Spec: &api.ReplicaSetSpec{Replicas: d.GetSpec().Replicas, Selector: &api.LabelSelector{MatchLabels: labels},
			Template: &api.PodTemplateSpec{Metadata: &api.ObjectMeta{Labels: labels}, Spec: d.GetSpec().GetTemplate().GetSpec()}},
	})
	if err != nil {
		t.Fatalf("create replicaset: %v", err)
	}
	var pods []*api.Pod
	for i := int32(0); i < d.GetSpec().GetReplicas(); i++ {
		p, err := c.Pods().Create(ctx, &api.Pod{
			Metadata: &api.ObjectMeta{Name: fmt.Sprintf("%s-%c%c%c%c%c", rs.GetMetadata().GetName(), 'a'+i, 'b', 'c', 'd', 'e'),
				Namespace: rs.GetMetadata().GetNamespace(), Labels: labels,
				OwnerReferences: owner("ReplicaSet", rs.GetMetadata().GetName(), rs.GetMetadata().GetUid())},
			Spec: rs.GetSpec().GetTemplate().GetSpec(),
		})
		if err != nil {
			t.Fatalf("create pod: %v", err)
		}
		isReady := i < ready
		p.Status = &api.PodStatus{Phase: "Running", PodIp: fmt.Sprintf("10.244.1.%d", i+2), PodIps: []*api.PodIP{{Ip: fmt.Sprintf("10.244.1.%d", i+2)}},
			Conditions: []*api.Condition{{Type: "Ready", Status: map[bool]string{true: "True", false: "False"}[isReady]}},
			ContainerStatuses: []*api.ContainerStatus{{Name: "nginx", Ready: isReady, Image: "nginx",
				State: &api.ContainerState{Running: &api.ContainerStateRunning{}}}}}
		if p, err = c.Pods().UpdateStatus(ctx, p); err != nil {
			t.Fatalf("pod status: %v", err)
		}
		pods = append(pods, p)
	}
	rs.Status = &api.ReplicaSetStatus{Replicas: d.GetSpec().GetReplicas(), ReadyReplicas: ready, AvailableReplicas: ready}
	if rs, err = c.ReplicaSets().UpdateStatus(ctx, rs); err != nil {
		t.Fatalf("replicaset status: %v", err)
	}
	d.Status = &api.DeploymentStatus{Replicas: d.GetSpec().GetReplicas(), UpdatedReplicas: d.GetSpec().GetReplicas(), ReadyReplicas: ready, AvailableReplicas: ready, ObservedGeneration: d.GetMetadata().GetGeneration()}
	if _, err := c.Deployments().UpdateStatus(ctx, d); err != nil {
		t.Fatalf("deployment status: %v", err)
	}
	return rs, pods
}

// TestSeedScenario walks the seed scenario and checks every output byte
// for byte against kubectl's layout.
func TestSeedScenario(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	if got := e.ok("create", "deployment", "k8s-nginx", "--image", "nginx", "-r", "3"); got != "deployment.apps/k8s-nginx created\n" {
		t.Fatalf("create printed %q", got)
	}
	d, err := e.client().Deployments().Get(ctx, "default", "k8s-nginx")
	if err != nil {
		t.Fatal(err)
	}
	c := d.GetSpec().GetTemplate().GetSpec().GetContainers()
	if d.GetSpec().GetReplicas() != 3 || d.GetSpec().GetSelector().GetMatchLabels()["app"] != "k8s-nginx" ||
		d.GetMetadata().GetLabels()["app"] != "k8s-nginx" || len(c) != 1 || c[0].GetName() != "nginx" || c[0].GetImage() != "nginx" {
		t.Fatalf("created deployment is not kubectl's: %v", d)
	}
	e.setNow(d.GetMetadata().GetCreationTimestamp().AsTime().Add(95 * time.Second))

	if got, want := e.ok("get", "deployments"), "NAME        READY   UP-TO-DATE   AVAILABLE   AGE\nk8s-nginx   0/3     0            0           95s\n"; got != want {
		t.Errorf("get deployments before the controllers ran:\n%s\nwant:\n%s", got, want)
	}
	rs, pods := simulateControllers(t, e.client(), d, 2)
	// Every object is printed 95s after the deployment was made; the
	// children were made a moment later, so their AGE is what the clock says.
	now := d.GetMetadata().GetCreationTimestamp().AsTime().Add(95 * time.Second)
	rsAge := printers.Age(rs.GetMetadata().GetCreationTimestamp(), now)

	if got, want := e.ok("get", "deploy"), "NAME        READY   UP-TO-DATE   AVAILABLE   AGE\nk8s-nginx   2/3     3            2           95s\n"; got != want {
		t.Errorf("get deploy:\n%s\nwant:\n%s", got, want)
	}
	rsName := rs.GetMetadata().GetName()
	if got, want := e.ok("get", "rs"), "NAME                   DESIRED   CURRENT   READY   AGE\n"+rsName+"   3         3         2       "+rsAge+"\n"; got != want {
		t.Errorf("get rs:\n%s\nwant:\n%s", got, want)
	}
	var b strings.Builder
	b.WriteString("NAME                         READY   STATUS    RESTARTS   AGE   IP           NODE     NOMINATED NODE   READINESS GATES\n")
	for i, p := range pods {
		ready := "0/1"
		if i < 2 {
			ready = "1/1"
		}
		fmt.Fprintf(&b, "%s   %s     Running   0          %s   %s   <none>   <none>           <none>\n", p.GetMetadata().GetName(), ready,
			printers.Age(p.GetMetadata().GetCreationTimestamp(), now), p.GetStatus().GetPodIp())
	}
	if got := e.ok("get", "po", "-o", "wide"); got != b.String() {
		t.Errorf("get po -o wide:\n%s\nwant:\n%s", got, b.String())
	}
	if got := e.ok("get", "pods", "-l", "app=k8s-nginx", "-o", "name"); !strings.HasPrefix(got, "pod/k8s-nginx-75f95db655-abcde\n") || strings.Count(got, "\n") != 3 {
		t.Errorf("get pods -o name: %q", got)
	}

	victim := pods[0].GetMetadata().GetName()
	if got := e.ok("delete", "pod", victim); got != fmt.Sprintf("pod %q deleted\n", victim) {
		t.Errorf("delete pod printed %q", got)
	}
	if _, err := e.client().Pods().Get(ctx, "default", victim); !client.IsNotFound(err) {
		t.Errorf("delete --wait returned before the pod was gone: %v", err)
	}
	if got := e.ok("delete", "deployment", "k8s-nginx", "--wait=false"); got != "deployment.apps \"k8s-nginx\" deleted\n" {
		t.Errorf("delete deployment printed %q", got)
	}
}

func TestGetErrorsLikeKubectl(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "deployment", "nope"}, "Error from server (NotFound): deployments.apps \"nope\" not found\n"},
		{[]string{"get", "pod", "nope"}, "Error from server (NotFound): pods \"nope\" not found\n"},
		{[]string{"get", "podz"}, "error: the server doesn't have a resource type \"podz\"\n\nDid you mean this?\n\tpods\n"},
		{[]string{"gte", "pods"}, "error: unknown command \"gte\" for \"ctl\"\n\nDid you mean this?\n\tget\n"},
		{[]string{"get", "pods", "--bogus"}, "error: unknown flag: --bogus\nSee 'ctl get --help' for usage.\n"},
		{[]string{"get", "pods", "-o", "xml"}, "error: unable to match a printer suitable for the output format \"xml\", allowed formats are: custom-columns,json,jsonpath,name,wide,yaml\n"},
	} {
		if got := e.fails(tc.args...); got != tc.want {
			t.Errorf("ctl %s printed\n%q\nwant\n%q", strings.Join(tc.args, " "), got, tc.want)
		}
	}
}

func TestGetEmptyListSaysSoOnStderr(t *testing.T) {
	e := newEnv(t)
	r := e.run("", "get", "pods")
	if r.code != 0 || r.out != "" || r.err != "No resources found in default namespace.\n" {
		t.Errorf("get pods on an empty namespace: %+v", r)
	}
	r = e.run("", "get", "pods", "-A")
	if r.code != 0 || r.err != "No resources found\n" {
		t.Errorf("get pods -A on an empty cluster: %+v", r)
	}
	r = e.run("", "get", "pods", "-n", "skiff-system")
	if r.err != "No resources found in skiff-system namespace.\n" {
		t.Errorf("get pods -n skiff-system: %+v", r)
	}
}

func TestGetOutputFormats(t *testing.T) {
	e := newEnv(t)
	e.ok("create", "deployment", "web", "--image", "registry.local:5000/team/web:v1", "--port", "8080")
	e.ok("create", "namespace", "prod")
	e.ok("create", "deployment", "api", "--image", "api", "-n", "prod", "-r", "2")

	y := e.ok("get", "deployment", "web", "-o", "yaml")
	for _, want := range []string{"apiVersion: apps/v1\n", "kind: Deployment\n", "  name: web\n", "  replicas: 1\n", "      - containerPort: 8080\n", "        name: web\n", "  generation: 1\n"} {
		if !strings.Contains(y, want) {
			t.Errorf("-o yaml lacks %q:\n%s", want, y)
		}
	}
	if strings.Contains(y, "kind: List") {
		t.Error("a single named object must print bare, not in a List")
	}
	if j := e.ok("get", "deployments", "-o", "json"); !strings.Contains(j, "\"kind\": \"List\"") || !strings.Contains(j, "\n    \"items\": [") {
		t.Errorf("-o json of a list:\n%s", j)
	}
	if got := e.ok("get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"); got != "registry.local:5000/team/web:v1" {
		t.Errorf("jsonpath printed %q", got)
	}
	all := e.ok("get", "deploy", "-A", "--no-headers")
	lines := strings.Split(strings.TrimSpace(all), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "default ") || !strings.HasPrefix(lines[1], "prod ") {
		t.Errorf("get deploy -A:\n%s", all)
	}
	if got := e.ok("get", "deploy", "--show-labels"); !strings.Contains(got, "LABELS\n") || !strings.Contains(got, "app=web\n") {
		t.Errorf("--show-labels:\n%s", got)
	}
	if got := e.ok("get", "deploy,ns"); !strings.Contains(got, "deployment.apps/web") || !strings.Contains(got, "\n\nNAME") || !strings.Contains(got, "namespace/prod") {
		t.Errorf("two kinds print two tables with kind-qualified names:\n%s", got)
	}
	if got := e.ok("get", "all"); !strings.HasPrefix(got, "NAME                READY   UP-TO-DATE   AVAILABLE   AGE\ndeployment.apps/web   ") && !strings.Contains(got, "deployment.apps/web ") {
		t.Errorf("get all:\n%s", got)
	}
	if got := e.ok("get", "deploy/web", "ns/prod", "-o", "name"); got != "deployment.apps/web\nnamespace/prod\n" {
		t.Errorf("kind/name arguments: %q", got)
	}
	r := e.run("", "get", "deploy", "web", "nope")
	if r.code != 1 || !strings.Contains(r.out, "web") || !strings.Contains(r.err, "deployments.apps \"nope\" not found") {
		t.Errorf("a missing name among found ones: %+v", r)
	}
}

func TestGetWatchPrintsChanges(t *testing.T) {
	e := newEnv(t)
	e.ok("create", "deployment", "long-named-deployment", "--image", "nginx")
	w := e.startAsync("get", "deploy", "-w")
	eventually(t, "the initial list", func() bool { return strings.Contains(w.out.String(), "long-named-deployment ") })
	e.ok("create", "deployment", "web", "--image", "nginx")
	eventually(t, "the new deployment's row", func() bool { return strings.Contains(w.out.String(), "\nweb ") })
	r := w.stop()
	if r.code != 0 {
		t.Errorf("get -w ended with %d: %s", r.code, r.err)
	}
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "NAME") || strings.Count(r.out, "NAME") != 1 {
		t.Fatalf("watch output:\n%s", r.out)
	}
	// Later rows keep the widths of the rows printed before them.
	col := strings.Index(lines[0], "READY")
	for _, l := range lines[1:] {
		if len(l) <= col || l[col-1] != ' ' {
			t.Errorf("row %q not aligned under READY (col %d)", l, col)
		}
	}
}

func TestGetSortByAndCreateDeploymentCommand(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, n := range []string{"b", "c", "a"} {
		e.ok("create", "deployment", n, "--image", "busybox", "--", "httpd", "-f")
	}
	d, _ := e.client().Deployments().Get(ctx, "default", "a")
	if got := d.GetSpec().GetTemplate().GetSpec().GetContainers()[0].GetCommand(); strings.Join(got, " ") != "httpd -f" {
		t.Errorf("create deployment -- COMMAND set command %q", got)
	}
	if got := e.ok("get", "deploy", "-o", "name"); got != "deployment.apps/a\ndeployment.apps/b\ndeployment.apps/c\n" {
		t.Errorf("default order is by name: %q", got)
	}
	if got := e.ok("get", "deploy", "-o", "name", "--sort-by", ".metadata.resourceVersion"); got != "deployment.apps/b\ndeployment.apps/c\ndeployment.apps/a\n" {
		t.Errorf("--sort-by resourceVersion (numeric): %q", got)
	}
}

func TestGetWatchYAMLSeparatesDocuments(t *testing.T) {
	e := newEnv(t)
	e.ok("create", "deployment", "a", "--image", "nginx")
	w := e.startAsync("get", "deploy", "-w", "-o", "yaml")
	eventually(t, "the first document", func() bool { return strings.Contains(w.out.String(), "name: a\n") })
	e.ok("create", "deployment", "b", "--image", "nginx")
	eventually(t, "the second document", func() bool { return strings.Contains(w.out.String(), "name: b\n") })
	r := w.stop()
	if !strings.HasPrefix(r.out, "apiVersion: apps/v1\n") || strings.Count(r.out, "\n---\napiVersion: apps/v1\n") != 1 || strings.Contains(r.out, "kind: List") {
		t.Errorf("get -w -o yaml:\n%s", r.out)
	}
}

func TestGetWatchOneNamedObject(t *testing.T) {
	e := newEnv(t)
	e.ok("create", "deployment", "a", "--image", "nginx")
	e.ok("create", "deployment", "b", "--image", "nginx")
	w := e.startAsync("get", "deploy", "a", "-w", "--no-headers")
	eventually(t, "the object", func() bool { return strings.Contains(w.out.String(), "a ") })
	e.ok("scale", "deploy/b", "--replicas=2")
	e.ok("scale", "deploy/a", "--replicas=2")
	eventually(t, "the change", func() bool { return strings.Count(w.out.String(), "\n") == 2 })
	r := w.stop()
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "a ") || !strings.HasPrefix(lines[1], "a ") || !strings.Contains(lines[1], "0/2") {
		t.Errorf("get deploy a -w printed:\n%s", r.out)
	}
}
