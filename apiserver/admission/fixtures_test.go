package admission

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/internal/intstr"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// Valid, defaulted objects of every kind; each test row changes one thing.

func meta(name string) *api.ObjectMeta {
	return &api.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "web"}}
}

func podSpec() *api.PodSpec {
	return &api.PodSpec{
		Containers: []*api.Container{{
			Name:  "nginx",
			Image: "nginx:1.25",
			Ports: []*api.ContainerPort{{Name: "http", ContainerPort: 80}},
			Resources: &api.ResourceRequirements{
				Requests: map[string]string{"cpu": "100m", "memory": "64Mi"},
				Limits:   map[string]string{"cpu": "1", "memory": "128Mi"},
			},
			ReadinessProbe: &api.Probe{HttpGet: &api.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}},
			VolumeMounts:   []*api.VolumeMount{{Name: "cache", MountPath: "/cache"}},
		}},
		Volumes: []*api.Volume{{Name: "cache", EmptyDir: &api.EmptyDirVolumeSource{}}},
	}
}

func validPod() *api.Pod {
	p := &api.Pod{Metadata: meta("web-1"), Spec: podSpec()}
	Default(p)
	return p
}

func validDeployment() *api.Deployment {
	d := &api.Deployment{
		Metadata: meta("web"),
		Spec: &api.DeploymentSpec{
			Selector: &api.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: &api.PodTemplateSpec{Metadata: &api.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "front"}}, Spec: podSpec()},
		},
	}
	Default(d)
	return d
}

func validReplicaSet() *api.ReplicaSet {
	rs := &api.ReplicaSet{
		Metadata: meta("web-75f95db655"),
		Spec: &api.ReplicaSetSpec{
			Selector: &api.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: &api.PodTemplateSpec{Metadata: &api.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: podSpec()},
		},
	}
	Default(rs)
	return rs
}

func validService() *api.Service {
	s := &api.Service{
		Metadata: meta("web"),
		Spec: &api.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []*api.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}, {Name: "metrics", Port: 9090}},
		},
	}
	Default(s)
	return s
}

func validEndpoints() *api.Endpoints {
	ep := &api.Endpoints{
		Metadata: meta("web"),
		Subsets: []*api.EndpointSubset{{
			Addresses:         []*api.EndpointAddress{{Ip: "10.244.1.5", NodeName: "worker-1"}},
			NotReadyAddresses: []*api.EndpointAddress{{Ip: "fd00::5"}},
			Ports:             []*api.EndpointPort{{Name: "http", Port: 80}},
		}},
	}
	Default(ep)
	return ep
}

func validNode() *api.Node {
	return &api.Node{
		Metadata: &api.ObjectMeta{Name: "worker-1", Labels: map[string]string{"kubernetes.io/hostname": "worker-1"}},
		Spec:     &api.NodeSpec{PodCidr: "10.244.1.0/24", PodCidrs: []string{"10.244.1.0/24"}, Taints: []*api.Taint{{Key: "dedicated", Value: "db", Effect: "NoSchedule"}}},
		Status: &api.NodeStatus{
			Capacity:   map[string]string{"cpu": "2", "memory": "8Gi", "pods": "110"},
			Addresses:  []*api.NodeAddress{{Type: "InternalIP", Address: "192.168.1.10"}, {Type: "Hostname", Address: "worker-1"}},
			Conditions: []*api.Condition{{Type: "Ready", Status: "True"}},
		},
	}
}

func validNamespace() *api.Namespace {
	return &api.Namespace{Metadata: &api.ObjectMeta{Name: "team-a"}, Spec: &api.NamespaceSpec{Finalizers: []string{"kubernetes"}}}
}

func validEvent() *api.Event {
	return &api.Event{
		Metadata:       meta("web-1.17f3a2b4c5d6e7f8"),
		InvolvedObject: &api.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-1", Uid: "u1"},
		Reason:         "Scheduled", Message: "assigned", Type: "Normal", Count: 1,
	}
}

func validConfigMap() *api.ConfigMap {
	return &api.ConfigMap{Metadata: meta("conf"), Data: map[string]string{"nginx.conf": "x"}, BinaryData: map[string][]byte{"blob.bin": {1}}}
}

func validSecret() *api.Secret {
	return &api.Secret{Metadata: meta("creds"), Data: map[string][]byte{"password": []byte("x")}, StringData: map[string]string{"user": "u"}, Type: "Opaque"}
}

func validLease() *api.Lease {
	l := &api.Lease{Metadata: meta("worker-1"), Spec: &api.LeaseSpec{HolderIdentity: "worker-1", LeaseDurationSeconds: proto.Int32(40)}}
	l.Metadata.Namespace = "skiff-system"
	return l
}

func validRoleBinding() *api.RoleBinding {
	return &api.RoleBinding{
		Metadata: &api.ObjectMeta{Name: "system:node:worker-1"},
		RoleRef:  &api.RoleRef{Name: "node"},
		Subjects: []*api.Subject{{Kind: "User", Name: "system:node:worker-1"}, {Kind: "Group", Name: "system:nodes"}},
	}
}

// with builds a row's object: a fresh valid object changed by mutate.
func with[T kinds.Object](base func() T, mutate func(T)) func() kinds.Object {
	return func() kinds.Object {
		o := base()
		if mutate != nil {
			mutate(o)
		}
		return o
	}
}

// rule is one validation rule: the object breaking it and the single field
// path (and error type) it must be reported at; path "" means valid.
type rule struct {
	name string
	obj  func() kinds.Object
	path string
	typ  field.ErrorType
}

func runRules(t *testing.T, rules []rule) {
	t.Helper()
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			err := ValidateCreate(r.obj())
			if r.path == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			assertInvalidAt(t, err, r.path, r.typ)
		})
	}
}

// assertInvalidAt requires an *InvalidError whose every cause is at path,
// at least one of them of type typ, so a row proves exactly its rule.
func assertInvalidAt(t *testing.T, err error, path string, typ field.ErrorType) {
	t.Helper()
	var inv *InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("want *InvalidError at %s, got %v", path, err)
	}
	found := false
	for _, fe := range inv.Errs {
		if fe.Field != path {
			t.Errorf("unexpected cause at %s: %v", fe.Field, fe)
			continue
		}
		if fe.Type == typ {
			found = true
		}
	}
	if !found {
		t.Errorf("no %q error at %s in: %v", typ, path, err)
	}
}
