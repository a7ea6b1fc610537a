package cmd

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skiff-dev/skiff/ctl/printers"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/proto/api"
)

func TestScaleAndSetImage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ok("create", "deployment", "web", "--image", "nginx:1.25", "--image", "busybox")
	if got := e.ok("scale", "deployment/web", "--replicas=4"); got != "deployment.apps/web scaled\n" {
		t.Errorf("scale printed %q", got)
	}
	if got := e.fails("scale", "deploy", "web", "--replicas=2", "--current-replicas=3"); !strings.Contains(got, "Expected replicas to be 3, was 4") {
		t.Errorf("scale precondition: %q", got)
	}
	if got := e.fails("scale", "ns/default", "--replicas=2"); !strings.Contains(got, "cannot scale namespaces") {
		t.Errorf("scale a namespace: %q", got)
	}
	if got := e.ok("set", "image", "deployment/web", "nginx=nginx:1.26"); got != "deployment.apps/web image updated\n" {
		t.Errorf("set image printed %q", got)
	}
	if got := e.fails("set", "image", "deployment/web", "nope=x"); !strings.Contains(got, `unable to find container named "nope"`) {
		t.Errorf("set image on a missing container: %q", got)
	}
	e.ok("set", "image", "deploy", "web", "*=registry/all:v2")
	d, err := e.client().Deployments().Get(ctx, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	cs := d.GetSpec().GetTemplate().GetSpec().GetContainers()
	if d.GetSpec().GetReplicas() != 4 || cs[0].GetImage() != "registry/all:v2" || cs[1].GetImage() != "registry/all:v2" || cs[1].GetName() != "busybox" {
		t.Errorf("deployment after scale and set image: %v", d.GetSpec())
	}
}

func TestRolloutStatusHistoryUndoRestart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ok("create", "deployment", "web", "--image", "nginx:1", "-r", "3")
	d, _ := e.client().Deployments().Get(ctx, "default", "web")
	rs1, _ := simulateControllers(t, e.client(), d, 0)

	// status: the controller reports progress; status prints each step.
	status := e.startAsync("rollout", "status", "deployment/web")
	setStatus := func(updated, available int32) {
		t.Helper()
		cur, err := e.client().Deployments().Get(ctx, "default", "web")
		if err != nil {
			t.Fatal(err)
		}
		cur.Status = &api.DeploymentStatus{ObservedGeneration: cur.GetMetadata().GetGeneration(), Replicas: 3, UpdatedReplicas: updated, AvailableReplicas: available, ReadyReplicas: available}
		if _, err := e.client().Deployments().UpdateStatus(ctx, cur); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the first progress line", func() bool { return strings.Contains(status.out.String(), "0 of 3 updated replicas are available") })
	setStatus(3, 1)
	eventually(t, "the second progress line", func() bool { return strings.Contains(status.out.String(), "1 of 3 updated") })
	setStatus(3, 3)
	r := status.wait(t)
	want := "Waiting for deployment \"web\" rollout to finish: 0 of 3 updated replicas are available...\n" +
		"Waiting for deployment \"web\" rollout to finish: 1 of 3 updated replicas are available...\n" +
		"deployment \"web\" successfully rolled out\n"
	if r.code != 0 || r.out != want {
		t.Errorf("rollout status: code %d\n%s\nwant\n%s", r.code, r.out, want)
	}

	// A second revision, as the deployment controller would make it.
	e.ok("set", "image", "deployment/web", "nginx=nginx:2")
	d, _ = e.client().Deployments().Get(ctx, "default", "web")
	rs2 := proto.Clone(rs1).(*api.ReplicaSet)
	rs2.Metadata = &api.ObjectMeta{Name: "web-6b7d9c8f4d", Namespace: "default", OwnerReferences: rs1.GetMetadata().GetOwnerReferences(),
		Annotations: map[string]string{printers.RevisionAnnotation: "2", changeCauseAnnotation: "set image nginx=nginx:2"}}
	rs2.Spec.Template = proto.Clone(d.GetSpec().GetTemplate()).(*api.PodTemplateSpec)
	rs2Labels := map[string]string{"app": "web", podTemplateHashLabel: "6b7d9c8f4d"}
	rs2.Spec.Template.Metadata.Labels = rs2Labels
	rs2.Spec.Selector = &api.LabelSelector{MatchLabels: rs2Labels}
	rs2.Status = nil
	if _, err := e.client().ReplicaSets().Create(ctx, rs2); err != nil {
		t.Fatal(err)
	}
	if got, want := e.ok("rollout", "history", "deployment/web"), "deployment.apps/web \nREVISION  CHANGE-CAUSE\n1         <none>\n2         set image nginx=nginx:2\n\n"; got != want {
		t.Errorf("rollout history:\n%q\nwant\n%q", got, want)
	}
	if got := e.ok("rollout", "history", "deployment/web", "--revision=1"); !strings.Contains(got, "with revision #1") || !regexp.MustCompile(`\n +Image: +nginx:1\n`).MatchString(got) {
		t.Errorf("rollout history --revision=1:\n%s", got)
	}
	if got := e.ok("rollout", "undo", "deployment/web"); got != "deployment.apps/web rolled back\n" {
		t.Errorf("rollout undo printed %q", got)
	}
	d, _ = e.client().Deployments().Get(ctx, "default", "web")
	if img := d.GetSpec().GetTemplate().GetSpec().GetContainers()[0].GetImage(); img != "nginx:1" {
		t.Errorf("undo left image %q, want nginx:1", img)
	}
	if _, ok := d.GetSpec().GetTemplate().GetMetadata().GetLabels()[podTemplateHashLabel]; ok {
		t.Error("undo copied the pod-template-hash label into the deployment")
	}
	if got := e.ok("rollout", "undo", "deployment/web", "--to-revision=1"); !strings.Contains(got, "skipped rollback (current template already matches revision 1)") {
		t.Errorf("undo to the current template: %q", got)
	}

	e.setNow(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	if got := e.ok("rollout", "restart", "deploy/web"); got != "deployment.apps/web restarted\n" {
		t.Errorf("rollout restart printed %q", got)
	}
	d, _ = e.client().Deployments().Get(ctx, "default", "web")
	if got := d.GetSpec().GetTemplate().GetMetadata().GetAnnotations()[restartedAtAnnotation]; got != "2026-03-04T05:06:07Z" {
		t.Errorf("restartedAt = %q", got)
	}
	if got := e.ok("rollout", "pause", "deployment/web"); got != "deployment.apps/web paused\n" {
		t.Errorf("pause printed %q", got)
	}
	if got := e.fails("rollout", "restart", "deployment/web"); !strings.Contains(got, "can't restart paused deployment") {
		t.Errorf("restart while paused: %q", got)
	}
	e.ok("rollout", "resume", "deployment/web")
}

func TestRolloutStatusTimesOut(t *testing.T) {
	e := newEnv(t)
	e.ok("create", "deployment", "stuck", "--image", "nginx")
	r := e.run("", "rollout", "status", "deployment/stuck", "--timeout=300ms")
	if r.code == 0 || r.out != "Waiting for deployment spec update to be observed...\n" || r.err != "error: timed out waiting for the condition\n" {
		t.Errorf("rollout status of a deployment no controller handles: %+v", r)
	}
	if got := e.fails("rollout", "status", "pod/x"); !strings.Contains(got, "only deployments roll out") {
		t.Errorf("rollout status of a pod: %q", got)
	}
}

func TestLabelAndAnnotate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ok("create", "deployment", "web", "--image", "nginx")
	e.ok("create", "deployment", "api", "--image", "nginx")
	if got := e.ok("label", "deploy", "web", "tier=front", "env=prod"); got != "deployment.apps/web labeled\n" {
		t.Errorf("label printed %q", got)
	}
	if got := e.fails("label", "deploy", "web", "tier=back"); got != "error: 'tier' already has a value (front), and --overwrite is false\n" {
		t.Errorf("label without --overwrite: %q", got)
	}
	e.ok("label", "deploy/web", "tier=back", "env-", "--overwrite")
	if got := e.ok("label", "deploy/web", "tier=back"); got != "deployment.apps/web not labeled\n" {
		t.Errorf("a label that is already set: %q", got)
	}
	if got := e.fails("label", "deploy/web", "bad key=x"); !strings.Contains(got, "invalid label key") {
		t.Errorf("invalid label key: %q", got)
	}
	if got := e.ok("annotate", "deploy", "--all", "owner=team a"); got != "deployment.apps/api annotated\ndeployment.apps/web annotated\n" {
		t.Errorf("annotate --all printed %q", got)
	}
	d, _ := e.client().Deployments().Get(ctx, "default", "web")
	if l := d.GetMetadata().GetLabels(); l["tier"] != "back" || l["env"] != "" || l["app"] != "web" {
		t.Errorf("labels = %v", l)
	}
	if d.GetMetadata().GetAnnotations()["owner"] != "team a" {
		t.Errorf("annotations = %v", d.GetMetadata().GetAnnotations())
	}
	e.ok("annotate", "deploy", "-l", "tier=back", "owner-")
	d, _ = e.client().Deployments().Get(ctx, "default", "web")
	if _, ok := d.GetMetadata().GetAnnotations()["owner"]; ok {
		t.Error("annotate KEY- did not remove the annotation")
	}
}

func TestExposeAndCreateService(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ok("create", "deployment", "web", "--image", "nginx", "--port", "80")
	if got := e.ok("expose", "deployment", "web", "--port", "8080", "--target-port", "80", "--type", "NodePort"); got != "service/web exposed\n" {
		t.Errorf("expose printed %q", got)
	}
	svc, err := e.client().Services().Get(ctx, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	p := svc.GetSpec().GetPorts()[0]
	if svc.GetSpec().GetType() != "NodePort" || p.GetPort() != 8080 || p.GetTargetPort().GetNumberValue() != 80 || svc.GetSpec().GetSelector()["app"] != "web" {
		t.Errorf("exposed service: %v", svc.GetSpec())
	}
	if got := e.ok("expose", "deploy/web", "--name", "web-internal"); got != "service/web-internal exposed\n" {
		t.Errorf("expose with the container port: %q", got)
	}
	if got := e.ok("create", "service", "clusterip", "db", "--tcp=5432:5432"); got != "service/db created\n" {
		t.Errorf("create service printed %q", got)
	}
	db, _ := e.client().Services().Get(ctx, "default", "db")
	if db.GetSpec().GetPorts()[0].GetName() != "5432-5432" || db.GetSpec().GetSelector()["app"] != "db" || db.GetSpec().GetType() != "ClusterIP" {
		t.Errorf("created service: %v", db.GetSpec())
	}
	row := e.ok("get", "svc", "web", "--no-headers")
	if f := strings.Fields(row); len(f) != 6 || f[1] != "NodePort" || !strings.HasPrefix(f[4], "8080:3") || !strings.HasSuffix(f[4], "/TCP") {
		t.Errorf("get svc row: %q", row)
	}
}

func TestDescribeWithEvents(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ok("create", "deployment", "web", "--image", "nginx", "-r", "2")
	d, _ := e.client().Deployments().Get(ctx, "default", "web")
	_, pods := simulateControllers(t, e.client(), d, 2)
	pod := pods[0]
	now := time.Now()
	e.setNow(now)
	_, err := e.client().Events().Create(ctx, &api.Event{Metadata: &api.ObjectMeta{Name: "web.1", Namespace: "default"},
		InvolvedObject: &api.ObjectReference{Kind: "Pod", Name: pod.GetMetadata().GetName(), Namespace: "default", Uid: pod.GetMetadata().GetUid()},
		Reason:         "Scheduled", Message: "Successfully assigned default/x to node-1", Type: "Normal",
		Source: &api.EventSource{Component: "default-scheduler"}, FirstTimestamp: printersTime(now.Add(-time.Minute)), LastTimestamp: printersTime(now.Add(-time.Minute)), Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	out := e.ok("describe", "pod", pod.GetMetadata().GetName())
	for _, want := range []string{"Name:             " + pod.GetMetadata().GetName() + "\n", "Controlled By:  ReplicaSet/web-75f95db655\n",
		"Events:\n  Type    Reason     Age   From               Message\n", "  Normal  Scheduled  60s   default-scheduler  Successfully assigned default/x to node-1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe pod lacks %q:\n%s", want, out)
		}
	}
	// A name prefix describes every match, separated as kubectl does.
	out = e.ok("describe", "pods", "web-75f95db655")
	if strings.Count(out, "\nNamespace:") != 2 || !strings.Contains(out, "\n\n\nName:") {
		t.Errorf("describe by prefix:\n%s", out)
	}
	if out := e.ok("describe", "deploy/web"); !regexp.MustCompile(`\nNewReplicaSet: +web-75f95db655 \(2/2 replicas created\)\n`).MatchString(out) {
		t.Errorf("describe deployment:\n%s", out)
	}
	if got := e.fails("describe", "pod", "zzz"); got != "Error from server (NotFound): pods \"zzz\" not found\n" {
		t.Errorf("describe a missing pod: %q", got)
	}
	if got := e.ok("events"); !strings.Contains(got, "LAST SEEN   TYPE     REASON      OBJECT") || !strings.Contains(got, "pod/"+pod.GetMetadata().GetName()) {
		t.Errorf("events:\n%s", got)
	}
	if r := e.run("", "events", "--types=Warning"); r.out != "" || r.err != "No resources found in default namespace.\n" {
		t.Errorf("events --types=Warning: %+v", r)
	}
	if got := e.ok("events", "--for", "pod/"+pod.GetMetadata().GetName(), "-o", "name"); got != "event/web.1\n" {
		t.Errorf("events --for: %q", got)
	}
}

func TestCordonUncordonDrain(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.client().Nodes().Create(ctx, &api.Node{Metadata: &api.ObjectMeta{Name: "node-1"}}); err != nil {
		t.Fatal(err)
	}
	if got := e.ok("cordon", "node-1"); got != "node/node-1 cordoned\n" {
		t.Errorf("cordon printed %q", got)
	}
	if got := e.ok("cordon", "node-1"); got != "node/node-1 already cordoned\n" {
		t.Errorf("cordon again printed %q", got)
	}
	if row := e.ok("get", "nodes", "--no-headers"); !strings.Contains(row, "Unknown,SchedulingDisabled") {
		t.Errorf("a cordoned node's STATUS: %q", row)
	}
	if got := e.ok("uncordon", "node-1"); got != "node/node-1 uncordoned\n" {
		t.Errorf("uncordon printed %q", got)
	}

	e.ok("create", "deployment", "web", "--image", "nginx", "-r", "1")
	d, _ := e.client().Deployments().Get(ctx, "default", "web")
	_, pods := simulateControllers(t, e.client(), d, 1)
	managed := pods[0]
	bare, err := e.client().Pods().Create(ctx, &api.Pod{Metadata: &api.ObjectMeta{Name: "bare", Namespace: "default"},
		Spec: &api.PodSpec{Containers: []*api.Container{{Name: "c", Image: "busybox"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*api.Pod{managed, bare} {
		if _, err := e.client().Bind(ctx, "default", p.GetMetadata().GetName(), p.GetMetadata().GetUid(), "node-1"); err != nil {
			t.Fatal(err)
		}
	}
	got := e.fails("drain", "node-1")
	if !strings.Contains(got, "cannot delete Pods that declare no controller (use --force to override): default/bare") {
		t.Errorf("drain with an unmanaged pod: %q", got)
	}
	if _, err := e.client().Pods().Get(ctx, "default", "bare"); err != nil {
		t.Errorf("a refused drain deleted pods: %v", err)
	}
	// With no kubelet, pods bound to the node only go once their grace
	// period is 0.
	r := e.run("", "drain", "node-1", "--force", "--grace-period=0")
	if r.code != 0 || !strings.Contains(r.out, "node/node-1 already cordoned\n") || !strings.Contains(r.out, "pod/bare evicted\n") || !strings.HasSuffix(r.out, "node/node-1 drained\n") {
		t.Errorf("drain --force: %+v", r)
	}
	left, _, _ := e.client().Pods().List(ctx, "", clientListOnNode("node-1"))
	if len(left) != 0 {
		t.Errorf("%d pods left on the drained node", len(left))
	}
}

func TestEditUpdatesAndReopensOnError(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ok("create", "deployment", "web", "--image", "nginx")
	script := writeFile(t, t.TempDir(), "editor.sh", "#!/bin/sh\nsed -i 's/replicas: 1/replicas: 5/' \"$1\"\n")
	run := func(editor string, args ...string) result {
		f := e.factory()
		f.Getenv = func(k string) string {
			if k == "EDITOR" {
				return editor
			}
			return ""
		}
		var out, errOut syncBuffer
		code := Execute(ctx, args, IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, f)
		return result{out: out.String(), err: errOut.String(), code: code}
	}
	if r := run("sh "+script, "edit", "deployment/web"); r.code != 0 || r.out != "deployment.apps/web edited\n" {
		t.Fatalf("edit: %+v", r)
	}
	d, _ := e.client().Deployments().Get(ctx, "default", "web")
	if d.GetSpec().GetReplicas() != 5 {
		t.Errorf("replicas after edit = %d", d.GetSpec().GetReplicas())
	}
	if r := run("true", "edit", "deployment/web"); r.code != 0 || r.err != "Edit cancelled, no changes made.\n" {
		t.Errorf("edit without changes: %+v", r)
	}
	// An invalid edit is reopened with the error; saving it unchanged again
	// gives up with a non-zero exit.
	bad := writeFile(t, t.TempDir(), "bad.sh", "#!/bin/sh\ngrep -q 'was not valid' \"$1\" || sed -i 's/replicas: 5/replicas: -1/' \"$1\"\n")
	r := run("sh "+bad, "edit", "deploy", "web")
	if r.code == 0 || !strings.Contains(r.err, "Edit cancelled, no valid changes were saved.") {
		t.Errorf("invalid edit: %+v", r)
	}
	d, _ = e.client().Deployments().Get(ctx, "default", "web")
	if d.GetSpec().GetReplicas() != 5 {
		t.Errorf("an invalid edit changed replicas to %d", d.GetSpec().GetReplicas())
	}
}

func printersTime(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

func clientListOnNode(node string) client.ListOptions {
	return client.ListOptions{FieldSelector: "spec.nodeName=" + node}
}
