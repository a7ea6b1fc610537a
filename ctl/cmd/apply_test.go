package cmd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/proto/api"
)

const webManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 80
`

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestApplyCreatesConfiguresAndKeepsServerFields(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	path := writeFile(t, dir, "web.yaml", webManifest)

	if got := e.ok("apply", "-f", path); got != "deployment.apps/web created\nservice/web created\n" {
		t.Fatalf("first apply printed %q", got)
	}
	svc, err := e.client().Services().Get(ctx, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	clusterIP := svc.GetSpec().GetClusterIp()
	if got := e.ok("apply", "-f", path); got != "deployment.apps/web unchanged\nservice/web unchanged\n" {
		t.Errorf("re-applying the same file printed %q", got)
	}

	// Change the image and replicas, drop a label: configured, and the
	// label a previous apply set is removed while server fields stay.
	changed := strings.Replace(strings.Replace(strings.Replace(webManifest, "nginx:1.25", "nginx:1.26", 1), "replicas: 2", "replicas: 4", 1), ", tier: front", "", 1)
	writeFile(t, dir, "web.yaml", changed)
	if got := e.ok("apply", "-f", path); got != "deployment.apps/web configured\nservice/web unchanged\n" {
		t.Errorf("apply after a change printed %q", got)
	}
	d, err := e.client().Deployments().Get(ctx, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	if d.GetSpec().GetReplicas() != 4 || d.GetSpec().GetTemplate().GetSpec().GetContainers()[0].GetImage() != "nginx:1.26" {
		t.Errorf("apply did not change the spec: %v", d.GetSpec())
	}
	if _, ok := d.GetMetadata().GetLabels()["tier"]; ok {
		t.Error("a label removed from the file must be removed from the object")
	}
	if d.GetSpec().GetTemplate().GetSpec().GetContainers()[0].GetImagePullPolicy() == "" {
		t.Error("defaults filled in by the server were lost")
	}
	svc, err = e.client().Services().Get(ctx, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	if svc.GetSpec().GetClusterIp() != clusterIP || clusterIP == "" {
		t.Errorf("clusterIP changed from %q to %q", clusterIP, svc.GetSpec().GetClusterIp())
	}

	// A change someone made with another tool to a field the file does
	// not set survives apply.
	d.GetMetadata().GetAnnotations()["team"] = "a"
	if _, err := e.client().Deployments().Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	if got := e.ok("apply", "-f", path); got != "deployment.apps/web unchanged\nservice/web unchanged\n" {
		t.Errorf("apply printed %q", got)
	}
	d, _ = e.client().Deployments().Get(ctx, "default", "web")
	if d.GetMetadata().GetAnnotations()["team"] != "a" {
		t.Error("an annotation the file never set was removed")
	}
}

func TestApplyFromStdinAndDirectory(t *testing.T) {
	e := newEnv(t)
	if got := e.run(webManifest, "apply", "-f", "-"); got.code != 0 || got.out != "deployment.apps/web created\nservice/web created\n" {
		t.Fatalf("apply -f -: %+v", got)
	}
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n")
	writeFile(t, dir, "b.json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}`)
	if got := e.ok("apply", "-f", dir); got != "configmap/a created\nconfigmap/b created\n" {
		t.Errorf("apply -f DIR printed %q", got)
	}
}

func TestBadManifestChangesNothing(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	bad := webManifest + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndatta: {}\n"
	path := writeFile(t, dir, "bad.yaml", bad)
	for _, verb := range []string{"create", "apply"} {
		got := e.fails(verb, "-f", path)
		if !strings.Contains(got, "bad.yaml") || !strings.Contains(got, "document 3") || !strings.Contains(got, `unknown field "datta"`) {
			t.Errorf("%s -f with a bad third document printed %q; want the file, document and field", verb, got)
		}
	}
	if _, err := e.client().Deployments().Get(context.Background(), "default", "web"); !client.IsNotFound(err) {
		t.Errorf("a bad manifest must change nothing, but the deployment exists (err %v)", err)
	}
}

func TestCreateFromFileReportsExistingObjects(t *testing.T) {
	e := newEnv(t)
	path := writeFile(t, t.TempDir(), "web.yaml", webManifest)
	if got := e.ok("create", "-f", path); got != "deployment.apps/web created\nservice/web created\n" {
		t.Fatalf("create -f printed %q", got)
	}
	r := e.run("", "create", "-f", path)
	want := "Error from server (AlreadyExists): error when creating \"" + path + "\": deployments.apps \"web\" already exists\n"
	if r.code != 1 || !strings.HasPrefix(r.err, want) {
		t.Errorf("create -f again: code %d, stderr %q; want it to start with %q", r.code, r.err, want)
	}
}

func TestNamespaceMismatchIsRefused(t *testing.T) {
	e := newEnv(t)
	manifest := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: skiff-system}\n"
	got := e.run(manifest, "apply", "-f", "-", "-n", "default")
	if got.code == 0 || !strings.Contains(got.err, "does not match the namespace \"default\"") {
		t.Errorf("apply with a conflicting -n: %+v", got)
	}
	if got := e.run(manifest, "apply", "-f", "-"); got.code != 0 {
		t.Errorf("the manifest's own namespace is used without -n: %+v", got)
	}
}

// TestServerRejectedDocumentChangesNothing protects the dry run: a
// document that parses but that admission refuses stops create and apply
// before the valid documents before it are sent.
func TestServerRejectedDocumentChangesNothing(t *testing.T) {
	e := newEnv(t)
	bad := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: first}\n---\n" +
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bad}\nspec:\n  replicas: -1\n  selector: {matchLabels: {app: bad}}\n" +
		"  template:\n    metadata: {labels: {app: bad}}\n    spec: {containers: [{name: c, image: nginx}]}\n"
	for _, verb := range []string{"create", "apply"} {
		r := e.run(bad, verb, "-f", "-")
		if r.code == 0 || !strings.Contains(r.err, "spec.replicas") || r.out != "" {
			t.Errorf("%s with a document admission refuses: %+v", verb, r)
		}
	}
	if _, err := client.For[*api.ConfigMap](e.client()).Get(context.Background(), "default", "first"); !client.IsNotFound(err) {
		t.Errorf("the valid document before the refused one was created (err %v)", err)
	}
}

func TestApplyNamespaceAndItsObjectsTogether(t *testing.T) {
	e := newEnv(t)
	m := "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: team}\ndata: {k: v}\n"
	if r := e.run(m, "apply", "-f", "-"); r.code != 0 || r.out != "namespace/team created\nconfigmap/c created\n" {
		t.Errorf("apply a namespace with an object in it: %+v", r)
	}
}
