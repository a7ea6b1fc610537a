package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiff-dev/skiff/proto/api"
)

const multiDoc = `# a comment before the first document
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  strategy:
    rollingUpdate: {maxSurge: "25%", maxUnavailable: 1}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 9007199254740993
      containers:
      - name: nginx
        image: nginx
        ports: [{containerPort: 80}]
---
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
`

func TestDecodeMultiDocumentYAML(t *testing.T) {
	docs, err := Decode("web.yaml", []byte(multiDoc))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 {
		t.Fatalf("got %d documents, want 2 (empty documents are skipped)", len(docs))
	}
	d, ok := docs[0].Object.(*api.Deployment)
	if !ok || d.GetSpec().GetReplicas() != 3 || d.GetSpec().GetTemplate().GetSpec().GetContainers()[0].GetPorts()[0].GetContainerPort() != 80 {
		t.Errorf("deployment decoded wrong: %v", docs[0].Object)
	}
	if got := d.GetSpec().GetTemplate().GetSpec().GetTerminationGracePeriodSeconds(); got != 9007199254740993 {
		t.Errorf("64-bit integer lost precision: %d", got)
	}
	if got := d.GetSpec().GetStrategy().GetRollingUpdate().GetMaxSurge().GetStringValue(); got != "25%" {
		t.Errorf("maxSurge = %q, want 25%%", got)
	}
	svc := docs[1].Object.(*api.Service)
	if svc.GetSpec().GetClusterIp() != "10.96.0.10" || svc.GetSpec().GetPorts()[0].GetTargetPort().GetStringValue() != "http" {
		t.Errorf("service decoded wrong (clusterIP is the Kubernetes spelling): %v", svc)
	}
	if docs[0].Index != 2 || docs[1].Index != 4 {
		t.Errorf("document indexes = %d, %d; want 2, 4 (their place in the file)", docs[0].Index, docs[1].Index)
	}
}

func TestDecodeRejectsBadDocuments(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"unknown field", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicsa: 3\n", `document 1): Deployment: unknown field "spec.replicsa"`},
		{"unknown nested field", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: a\n    imagee: x\n", `unknown field "spec.containers[0].imagee"`},
		{"protojson spelling", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIp: 1.2.3.4}\n", `unknown field "spec.clusterIp"`},
		{"unknown kind", "apiVersion: v1\nkind: Widget\nmetadata: {name: x}\n", `no matches for kind "Widget" in version "v1"`},
		{"wrong version", "apiVersion: v1\nkind: Deployment\nmetadata: {name: x}\n", `no matches for kind "Deployment" in version "v1"`},
		{"missing kind", "apiVersion: v1\nmetadata: {name: x}\n", `Object 'Kind' is missing`},
		{"wrong type", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: three}\n", `replicas`},
		{"list where object", "apiVersion: v1\nkind: Pod\nmetadata: [x]\n", `field "metadata": expected an object, got a list`},
		{"bad yaml", "apiVersion: v1\nkind: Pod\n  bad: indentation\n", `error`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode("bad.yaml", []byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestDecodeJSONStreamAndList(t *testing.T) {
	data := `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}},{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"b"}}]}
{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"k":"v"}}`
	docs, err := Decode("x.json", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range docs {
		names = append(names, d.Info.Kind+"/"+d.Object.GetMetadata().GetName())
	}
	if got := strings.Join(names, " "); got != "ConfigMap/a Namespace/b ConfigMap/c" {
		t.Errorf("decoded %s", got)
	}
}

func TestReadDirectoriesAndStdin(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "a.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
	write(filepath.Join(dir, "notes.txt"), "not a manifest")
	write(filepath.Join(sub, "b.json"), `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}`)

	docs, err := Read([]string{dir}, nil, false)
	if err != nil || len(docs) != 1 {
		t.Fatalf("non-recursive read = %d docs, %v; want only a.yaml", len(docs), err)
	}
	docs, err = Read([]string{dir, "-"}, strings.NewReader("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\n"), true)
	if err != nil || len(docs) != 3 || docs[2].Source != "STDIN" {
		t.Fatalf("recursive read with stdin = %d docs, %v", len(docs), err)
	}
	if _, err := Read([]string{filepath.Join(dir, "missing.yaml")}, nil, false); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file: %v", err)
	}
	write(filepath.Join(sub, "bad.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata2: {}\n")
	var de *DecodeError
	if _, err := Read([]string{dir}, nil, true); !errors.As(err, &de) || !strings.HasSuffix(de.Source, "bad.yaml") {
		t.Errorf("a bad document anywhere fails the whole read naming the file: %v", err)
	}
}

func TestRoundTripUsesKubernetesNames(t *testing.T) {
	docs, err := Decode("web.yaml", []byte(multiDoc))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := ToUnstructured(docs[1].Object)
	if err != nil {
		t.Fatal(err)
	}
	spec := tree["spec"].(map[string]any)
	if spec["clusterIP"] != "10.96.0.10" {
		t.Errorf("spec = %v, want clusterIP", spec)
	}
	dtree, _ := ToUnstructured(docs[0].Object)
	tgp := dtree["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["terminationGracePeriodSeconds"]
	if s, ok := tgp.(interface{ String() string }); !ok || s.String() != "9007199254740993" {
		t.Errorf("int64 printed as %#v, want a number", tgp)
	}
}

func TestThreeWayMerge(t *testing.T) {
	live := map[string]any{
		"metadata": map[string]any{"name": "web", "uid": "u1", "labels": map[string]any{"app": "web", "old": "x"}},
		"spec": map[string]any{"replicas": 3, "clusterIP": "10.96.0.5", "containers": []any{
			map[string]any{"name": "a", "image": "nginx:1", "imagePullPolicy": "IfNotPresent"},
			map[string]any{"name": "b", "image": "busybox"},
			map[string]any{"name": "added-by-someone", "image": "x"},
		}},
	}
	last := map[string]any{
		"metadata": map[string]any{"name": "web", "labels": map[string]any{"app": "web", "old": "x"}},
		"spec":     map[string]any{"replicas": 3, "containers": []any{map[string]any{"name": "a", "image": "nginx:1"}, map[string]any{"name": "b", "image": "busybox"}}},
	}
	desired := map[string]any{
		"metadata": map[string]any{"name": "web", "labels": map[string]any{"app": "web"}},
		"spec":     map[string]any{"replicas": 5, "containers": []any{map[string]any{"name": "a", "image": "nginx:2"}}},
	}
	got := ThreeWayMerge(live, desired, last)
	want := map[string]any{
		"metadata": map[string]any{"name": "web", "uid": "u1", "labels": map[string]any{"app": "web"}},
		"spec": map[string]any{"replicas": 5, "clusterIP": "10.96.0.5", "containers": []any{
			map[string]any{"name": "a", "image": "nginx:2", "imagePullPolicy": "IfNotPresent"},
			map[string]any{"name": "added-by-someone", "image": "x"},
		}},
	}
	if !Equal(got, want) {
		t.Errorf("merge:\n got %v\nwant %v", got, want)
	}
	if live["spec"].(map[string]any)["replicas"] != 3 {
		t.Error("the live tree was modified")
	}
}

// TestDecodeKubectlGeneratedManifests protects compatibility with what
// kubectl writes (create --dry-run=client -o yaml, expose -o yaml).
func TestDecodeKubectlGeneratedManifests(t *testing.T) {
	const kubectlOutput = `apiVersion: apps/v1
kind: Deployment
metadata:
  creationTimestamp: null
  labels:
    app: k8s-nginx
  name: k8s-nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: k8s-nginx
  strategy: {}
  template:
    metadata:
      creationTimestamp: null
      labels:
        app: k8s-nginx
    spec:
      containers:
      - image: nginx
        name: nginx
        resources: {}
status: {}
---
apiVersion: v1
kind: Service
metadata:
  creationTimestamp: null
  labels:
    app: k8s-nginx
  name: k8s-nginx
spec:
  ports:
  - port: 80
    protocol: TCP
    targetPort: 80
  selector:
    app: k8s-nginx
  type: NodePort
status:
  loadBalancer: {}
`
	docs, err := Decode("kubectl.yaml", []byte(kubectlOutput))
	if err != nil {
		t.Fatalf("kubectl's own output must decode: %v", err)
	}
	if len(docs) != 2 || docs[0].Object.(*api.Deployment).GetSpec().GetReplicas() != 3 || docs[1].Object.(*api.Service).GetSpec().GetType() != "NodePort" {
		t.Errorf("decoded %v", docs)
	}
}
