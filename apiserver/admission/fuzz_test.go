package admission

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/skiff-dev/skiff/ctl/manifest"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// Seed manifests, written as a person writes them for Kubernetes. The
// valid ones must pass admission; every one seeds FuzzDecodeManifest.
var validManifests = []string{
	`apiVersion: apps/v1
kind: Deployment
metadata:
  name: k8s-nginx
  namespace: default
  labels: {app: k8s-nginx}
spec:
  replicas: 3
  selector:
    matchLabels: {app: k8s-nginx}
  strategy:
    rollingUpdate: {maxSurge: 1, maxUnavailable: "25%"}
  template:
    metadata:
      labels: {app: k8s-nginx}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports:
        - {name: http, containerPort: 80}
        resources:
          requests: {cpu: 100m, memory: 64Mi}
          limits: {cpu: "1", memory: 128Mi}
        readinessProbe:
          httpGet: {path: /, port: http}
        livenessProbe:
          tcpSocket: {port: 80}
          initialDelaySeconds: 5
`,
	`apiVersion: v1
kind: Pod
metadata:
  generateName: busybox-
  namespace: default
spec:
  restartPolicy: Never
  nodeSelector: {kubernetes.io/hostname: worker-1}
  tolerations:
  - {operator: Exists}
  containers:
  - name: sh
    image: busybox
    command: [sh, -c, "sleep 3600"]
    env:
    - {name: GREETING, value: hello}
    volumeMounts:
    - {name: data, mountPath: /data}
  volumes:
  - name: data
    emptyDir: {}
`,
	`apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http, nodePort: 30080}
  - {name: dns, port: 53, protocol: UDP, targetPort: 5353}
`,
	`apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web-75f95db655, namespace: default}
spec:
  replicas: 2
  selector:
    matchExpressions:
    - {key: app, operator: In, values: [web]}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "localhost:5000/web:v2"}]
`,
	`apiVersion: v1
kind: Namespace
metadata: {name: team-a}
`,
	`apiVersion: v1
kind: ConfigMap
metadata: {name: nginx-conf, namespace: default}
data: {nginx.conf: "events {}"}
`,
	`apiVersion: v1
kind: Node
metadata: {name: worker-1}
spec:
  taints: [{key: dedicated, value: db, effect: NoSchedule}]
`,
	`apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: controller-manager, namespace: skiff-system}
spec: {holderIdentity: cm-1, leaseDurationSeconds: 15}
`,
	`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: "ops:admins"}
roleRef: {name: admin}
subjects: [{kind: Group, name: ops}]
`,
}

// kubeSpelledManifests use Kubernetes' field spellings (clusterIP,
// podCIDR), which ctl's decoder maps onto the proto names; plain protojson
// would drop them.
var kubeSpelledManifests = []string{
	`apiVersion: v1
kind: Service
metadata: {name: dns, namespace: skiff-system}
spec:
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10]
  selector: {app: dns}
  ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53}]
`,
	`apiVersion: v1
kind: Service
metadata: {name: headless, namespace: default}
spec: {clusterIP: None, selector: {app: db}}
`,
	`apiVersion: v1
kind: Node
metadata: {name: worker-2}
spec: {podCIDR: 10.244.2.0/24, podCIDRs: [10.244.2.0/24]}
`,
}

// invalidManifests map a manifest to the one field path admission names.
var invalidManifests = []struct {
	manifest string
	path     string
}{
	{`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: -1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
`, "spec.replicas"},
	{`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: web, image: nginx}]}
`, "spec.template.metadata.labels"},
	{`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
`, "spec.strategy.rollingUpdate.maxUnavailable"},
	{`apiVersion: v1
kind: Pod
metadata: {name: bad, namespace: default}
spec:
  containers:
  - name: web
    image: nginx
    readinessProbe: {httpGet: {port: 1.5}}
`, "spec.containers[0].readinessProbe.httpGet.port"},
	{`apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  ports: [{port: 80, nodePort: 30080}]
`, "spec.ports[0].nodePort"},
}

// decodeManifest is the path a manifest takes into the apiserver: YAML to
// JSON, JSON to the kind's proto message, then defaulting.
func decodeManifest(data []byte) (kinds.Object, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	var tm struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(js, &tm); err != nil {
		return nil, fmt.Errorf("kind: %w", err)
	}
	info, ok := kinds.Lookup(tm.Kind)
	if !ok {
		return nil, fmt.Errorf("unknown kind %q", tm.Kind)
	}
	obj := info.New()
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(js, obj); err != nil {
		return nil, fmt.Errorf("decode %s: %w", info.Kind, err)
	}
	Default(obj)
	return obj, nil
}

// decodeWithCtl is how manifests really reach the API: ctl's decoder, which
// knows Kubernetes' spellings, then the apiserver's defaulting.
func decodeWithCtl(data []byte) ([]kinds.Object, error) {
	docs, err := manifest.Decode("fuzz.yaml", data)
	if err != nil {
		return nil, err
	}
	objs := make([]kinds.Object, 0, len(docs))
	for _, d := range docs {
		Default(d.Object)
		objs = append(objs, d.Object)
	}
	return objs, nil
}

func TestManifests(t *testing.T) {
	for i, m := range validManifests {
		obj, err := decodeManifest([]byte(m))
		if err != nil {
			t.Fatalf("manifest %d: %v", i, err)
		}
		if err := ValidateCreate(obj); err != nil {
			t.Errorf("manifest %d: %v", i, err)
		}
	}
	for i, m := range append(append([]string(nil), validManifests...), kubeSpelledManifests...) {
		objs, err := decodeWithCtl([]byte(m))
		if err != nil || len(objs) != 1 {
			t.Fatalf("manifest %d through ctl: %d objects, %v", i, len(objs), err)
		}
		if err := ValidateCreate(objs[0]); err != nil {
			t.Errorf("manifest %d through ctl: %v", i, err)
		}
	}
	for i, m := range invalidManifests {
		obj, err := decodeManifest([]byte(m.manifest))
		if err != nil {
			t.Fatalf("invalid manifest %d: %v", i, err)
		}
		var inv *InvalidError
		if err := ValidateCreate(obj); !errors.As(err, &inv) || len(inv.Errs) != 1 || inv.Errs[0].Field != m.path {
			t.Errorf("invalid manifest %d: want one cause at %s, got %v", i, m.path, err)
		}
	}
}

// checkAdmission runs what the apiserver runs on a decoded object and fails
// on anything but nil or an *InvalidError; a panic fails the fuzzer itself.
func checkAdmission(t *testing.T, obj kinds.Object) {
	Default(obj)
	again := proto.Clone(obj).(kinds.Object)
	Default(again)
	if !proto.Equal(obj, again) {
		t.Fatalf("Default is not idempotent")
	}
	for _, err := range []error{ValidateCreate(obj), ValidateUpdate(obj, again), ValidateUpdate(obj, obj.ProtoReflect().Type().New().Interface().(kinds.Object))} {
		if err == nil {
			continue
		}
		var inv *InvalidError
		if !errors.As(err, &inv) || len(inv.Errs) == 0 {
			t.Fatalf("want nil or *InvalidError, got %T: %v", err, err)
		}
		_ = err.Error()
	}
}

// FuzzDecodeManifest feeds arbitrary manifests through both decoders (plain
// protojson and ctl's) and then admission: nothing may panic, Default must
// be idempotent, and a rejection is always an *InvalidError.
func FuzzDecodeManifest(f *testing.F) {
	for _, m := range validManifests {
		f.Add([]byte(m))
	}
	for _, m := range kubeSpelledManifests {
		f.Add([]byte(m))
	}
	for _, m := range invalidManifests {
		f.Add([]byte(m.manifest))
	}
	f.Add([]byte("---\napiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: Pod, spec: {containers: [{}]}}]\n"))
	f.Add([]byte("kind: Pod\nspec: {containers: [null, {ports: [{}]}]}\n"))
	f.Add([]byte("kind: Deployment\nspec: {strategy: {rollingUpdate: {maxSurge: [1]}}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if obj, err := decodeManifest(data); err == nil {
			checkAdmission(t, obj)
		}
		if objs, err := decodeWithCtl(data); err == nil {
			for _, obj := range objs {
				checkAdmission(t, obj)
			}
		}
	})
}

// fuzzWire seeds a fuzzer with the wire form of valid objects and checks
// whatever protobuf bytes decode into T.
func fuzzWire[T kinds.Object](f *testing.F, seeds ...T) {
	for _, s := range seeds {
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var zero T
		obj := zero.ProtoReflect().Type().New().Interface().(T)
		if err := proto.Unmarshal(data, obj); err != nil {
			return
		}
		checkAdmission(t, obj)
	})
}

func FuzzValidatePod(f *testing.F) {
	broken := validPod()
	broken.Spec.Containers[0].ReadinessProbe.TcpSocket = &api.TCPSocketAction{}
	broken.Spec.Volumes = nil
	fuzzWire(f, validPod(), broken, &api.Pod{})
}

func FuzzValidateDeployment(f *testing.F) {
	recreate := validDeployment()
	recreate.Spec.Strategy.Type = "Recreate"
	fuzzWire(f, validDeployment(), recreate, &api.Deployment{})
}

func FuzzValidateReplicaSet(f *testing.F) { fuzzWire(f, validReplicaSet(), &api.ReplicaSet{}) }

func FuzzValidateService(f *testing.F) {
	np := validService()
	nodePortService(np)
	fuzzWire(f, validService(), np, &api.Service{})
}

func FuzzValidateNode(f *testing.F) { fuzzWire(f, validNode(), &api.Node{}) }

func FuzzValidateEndpoints(f *testing.F) { fuzzWire(f, validEndpoints(), &api.Endpoints{}) }
