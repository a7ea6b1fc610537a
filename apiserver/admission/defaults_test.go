package admission

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/google/go-cmp/cmp"

	"github.com/skiff-dev/skiff/internal/intstr"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

func TestDefaultPullPolicy(t *testing.T) {
	for image, want := range map[string]string{
		"nginx":                            "Always",
		"nginx:latest":                     "Always",
		"docker.io/library/nginx":          "Always",
		"localhost:5000/app":               "Always",
		"nginx:1.25":                       "IfNotPresent",
		"localhost:5000/app:v1":            "IfNotPresent",
		"nginx@sha256:" + sha256Hex:        "IfNotPresent",
		"nginx:latest@sha256:" + sha256Hex: "Always",
		"NOT A REFERENCE":                  "IfNotPresent",
		"":                                 "IfNotPresent",
	} {
		if got := DefaultPullPolicy(image); got != want {
			t.Errorf("DefaultPullPolicy(%q) = %s, want %s", image, got, want)
		}
	}
}

const sha256Hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestDefault(t *testing.T) {
	probe := func() *api.Probe { return &api.Probe{TcpSocket: &api.TCPSocketAction{Port: intstr.FromInt(80)}} }
	defaultedProbe := func() *api.Probe {
		p := probe()
		p.TimeoutSeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold = 1, 10, 1, 3
		return p
	}
	defaultedPodSpec := func(image, pull string) *api.PodSpec {
		return &api.PodSpec{
			Containers: []*api.Container{{
				Name: "app", Image: image, ImagePullPolicy: pull,
				Ports:         []*api.ContainerPort{{ContainerPort: 80, Protocol: "TCP"}, {ContainerPort: 53, Protocol: "UDP"}},
				LivenessProbe: defaultedProbe(),
			}},
			InitContainers:                []*api.Container{{Name: "init", Image: "busybox:1.36", ImagePullPolicy: "IfNotPresent"}},
			RestartPolicy:                 "Always",
			TerminationGracePeriodSeconds: proto.Int64(30),
			DnsPolicy:                     "ClusterFirst",
			SchedulerName:                 "default-scheduler",
		}
	}
	rawPodSpec := func(image string) *api.PodSpec {
		return &api.PodSpec{
			Containers: []*api.Container{{
				Name: "app", Image: image,
				Ports:         []*api.ContainerPort{{ContainerPort: 80}, {ContainerPort: 53, Protocol: "UDP"}},
				LivenessProbe: probe(),
			}},
			InitContainers: []*api.Container{{Name: "init", Image: "busybox:1.36"}},
		}
	}
	for _, tc := range []struct {
		name string
		in   kinds.Object
		want kinds.Object
	}{
		{
			name: "pod",
			in:   &api.Pod{Spec: rawPodSpec("nginx")},
			want: &api.Pod{Spec: defaultedPodSpec("nginx", "Always")},
		},
		{
			name: "pod keeps what is set",
			in: &api.Pod{Spec: &api.PodSpec{
				Containers:    []*api.Container{{Name: "app", Image: "nginx", ImagePullPolicy: "Never", ReadinessProbe: &api.Probe{TimeoutSeconds: 5, PeriodSeconds: 2, SuccessThreshold: 2, FailureThreshold: 1}}},
				RestartPolicy: "Never", TerminationGracePeriodSeconds: proto.Int64(0), DnsPolicy: "Default", SchedulerName: "mine",
			}},
			want: &api.Pod{Spec: &api.PodSpec{
				Containers:    []*api.Container{{Name: "app", Image: "nginx", ImagePullPolicy: "Never", ReadinessProbe: &api.Probe{TimeoutSeconds: 5, PeriodSeconds: 2, SuccessThreshold: 2, FailureThreshold: 1}}},
				RestartPolicy: "Never", TerminationGracePeriodSeconds: proto.Int64(0), DnsPolicy: "Default", SchedulerName: "mine",
			}},
		},
		{
			name: "pod without spec",
			in:   &api.Pod{},
			want: &api.Pod{Spec: &api.PodSpec{RestartPolicy: "Always", TerminationGracePeriodSeconds: proto.Int64(30), DnsPolicy: "ClusterFirst", SchedulerName: "default-scheduler"}},
		},
		{
			name: "deployment: RollingUpdate 25%/25%, template defaulted, selector left alone",
			in:   &api.Deployment{Spec: &api.DeploymentSpec{Template: &api.PodTemplateSpec{Metadata: &api.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: rawPodSpec("nginx:1.25")}}},
			want: &api.Deployment{Spec: &api.DeploymentSpec{
				Replicas: proto.Int32(1),
				Strategy: &api.DeploymentStrategy{Type: "RollingUpdate", RollingUpdate: &api.RollingUpdateDeployment{
					MaxUnavailable: intstr.FromString("25%"), MaxSurge: intstr.FromString("25%"),
				}},
				RevisionHistoryLimit:    proto.Int32(10),
				ProgressDeadlineSeconds: proto.Int32(600),
				Template:                &api.PodTemplateSpec{Metadata: &api.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: defaultedPodSpec("nginx:1.25", "IfNotPresent")},
			}},
		},
		{
			name: "deployment: Recreate gets no rolling parameters",
			in:   &api.Deployment{Spec: &api.DeploymentSpec{Replicas: proto.Int32(0), Strategy: &api.DeploymentStrategy{Type: "Recreate"}, RevisionHistoryLimit: proto.Int32(0)}},
			want: &api.Deployment{Spec: &api.DeploymentSpec{Replicas: proto.Int32(0), Strategy: &api.DeploymentStrategy{Type: "Recreate"}, RevisionHistoryLimit: proto.Int32(0), ProgressDeadlineSeconds: proto.Int32(600)}},
		},
		{
			name: "deployment: one rolling parameter given",
			in:   &api.Deployment{Spec: &api.DeploymentSpec{Strategy: &api.DeploymentStrategy{RollingUpdate: &api.RollingUpdateDeployment{MaxSurge: intstr.FromInt(1)}}}},
			want: &api.Deployment{Spec: &api.DeploymentSpec{
				Replicas: proto.Int32(1),
				Strategy: &api.DeploymentStrategy{Type: "RollingUpdate", RollingUpdate: &api.RollingUpdateDeployment{
					MaxUnavailable: intstr.FromString("25%"), MaxSurge: intstr.FromInt(1),
				}},
				RevisionHistoryLimit: proto.Int32(10), ProgressDeadlineSeconds: proto.Int32(600),
			}},
		},
		{
			name: "replicaset",
			in:   &api.ReplicaSet{Spec: &api.ReplicaSetSpec{Template: &api.PodTemplateSpec{Spec: rawPodSpec("nginx:latest")}}},
			want: &api.ReplicaSet{Spec: &api.ReplicaSetSpec{Replicas: proto.Int32(1), Template: &api.PodTemplateSpec{Spec: defaultedPodSpec("nginx:latest", "Always")}}},
		},
		{
			name: "service: ClusterIP, TCP, targetPort = port",
			in:   &api.Service{Spec: &api.ServiceSpec{Ports: []*api.ServicePort{{Port: 80}, {Port: 53, Protocol: "UDP", TargetPort: intstr.FromString("dns")}}}},
			want: &api.Service{Spec: &api.ServiceSpec{Type: "ClusterIP", Ports: []*api.ServicePort{
				{Port: 80, Protocol: "TCP", TargetPort: intstr.FromInt(80)},
				{Port: 53, Protocol: "UDP", TargetPort: intstr.FromString("dns")},
			}}},
		},
		{
			name: "endpoints: port protocol TCP",
			in:   &api.Endpoints{Subsets: []*api.EndpointSubset{{Ports: []*api.EndpointPort{{Port: 80}, {Port: 53, Protocol: "UDP"}}}}},
			want: &api.Endpoints{Subsets: []*api.EndpointSubset{{Ports: []*api.EndpointPort{{Port: 80, Protocol: "TCP"}, {Port: 53, Protocol: "UDP"}}}}},
		},
		{
			name: "secret: stringData folded into data over it, type Opaque",
			in: &api.Secret{Data: map[string][]byte{"user": []byte("old"), "password": []byte("x")},
				StringData: map[string]string{"user": "admin", "note": "n"}},
			want: &api.Secret{Type: "Opaque", Data: map[string][]byte{"user": []byte("admin"), "password": []byte("x"), "note": []byte("n")}},
		},
		{
			name: "secret: stringData alone, type kept",
			in:   &api.Secret{Type: "kubernetes.io/basic-auth", StringData: map[string]string{"user": "admin"}},
			want: &api.Secret{Type: "kubernetes.io/basic-auth", Data: map[string][]byte{"user": []byte("admin")}},
		},
		{
			name: "kinds without defaults are untouched",
			in:   validConfigMap(),
			want: validConfigMap(),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			Default(tc.in)
			if diff := cmp.Diff(tc.want, tc.in, protocmp.Transform()); diff != "" {
				t.Errorf("Default (-want +got):\n%s", diff)
			}
			again := proto.Clone(tc.in).(kinds.Object)
			Default(again)
			if !proto.Equal(again, tc.in) {
				t.Error("Default is not idempotent")
			}
		})
	}
}

func TestDefaultToleratesNilObjects(t *testing.T) {
	for _, info := range kinds.All() {
		Default(info.New())
	}
	Default((*api.Pod)(nil))
	Default((*api.Deployment)(nil))
	Default(&api.Deployment{Spec: &api.DeploymentSpec{Template: &api.PodTemplateSpec{Spec: &api.PodSpec{Containers: []*api.Container{nil}}}}})
	Default(&api.Service{Spec: &api.ServiceSpec{Ports: []*api.ServicePort{nil}}})
}

// A manifest that names only what Kubernetes requires is valid once
// defaulted: defaulting and validation agree.
func TestDefaultedMinimalObjectsAreValid(t *testing.T) {
	spec := func() *api.PodSpec {
		return &api.PodSpec{Containers: []*api.Container{{Name: "nginx", Image: "nginx", Ports: []*api.ContainerPort{{ContainerPort: 80}}}}}
	}
	sel := func() *api.LabelSelector { return &api.LabelSelector{MatchLabels: map[string]string{"app": "web"}} }
	tmpl := func() *api.PodTemplateSpec {
		return &api.PodTemplateSpec{Metadata: &api.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: spec()}
	}
	m := func() *api.ObjectMeta { return &api.ObjectMeta{Name: "web", Namespace: "default"} }
	for _, obj := range []kinds.Object{
		&api.Pod{Metadata: m(), Spec: spec()},
		&api.Deployment{Metadata: m(), Spec: &api.DeploymentSpec{Selector: sel(), Template: tmpl()}},
		&api.ReplicaSet{Metadata: m(), Spec: &api.ReplicaSetSpec{Selector: sel(), Template: tmpl()}},
		&api.Service{Metadata: m(), Spec: &api.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []*api.ServicePort{{Port: 80}}}},
		&api.Endpoints{Metadata: m(), Subsets: []*api.EndpointSubset{{Addresses: []*api.EndpointAddress{{Ip: "10.244.0.5"}}, Ports: []*api.EndpointPort{{Port: 80}}}}},
		&api.Namespace{Metadata: &api.ObjectMeta{Name: "web"}},
		&api.Node{Metadata: &api.ObjectMeta{Name: "worker-1"}},
		&api.ConfigMap{Metadata: m()},
		&api.Secret{Metadata: m()},
		&api.Lease{Metadata: m()},
		&api.Event{Metadata: m(), InvolvedObject: &api.ObjectReference{Kind: "Pod", Name: "web"}},
		&api.RoleBinding{Metadata: &api.ObjectMeta{Name: "admins"}, RoleRef: &api.RoleRef{Name: "admin"}},
	} {
		Default(obj)
		if err := ValidateCreate(obj); err != nil {
			t.Errorf("%T: %v", obj, err)
		}
	}
}

func TestDefaultUpdateKeepsAllocatedServiceValues(t *testing.T) {
	old := validService()
	old.Spec.Type = "NodePort"
	old.Spec.ClusterIp, old.Spec.ClusterIps = "10.96.0.10", []string{"10.96.0.10"}
	old.Spec.Ports[0].NodePort, old.Spec.Ports[1].NodePort = 30080, 30090

	// The user re-applies the manifest, which names none of the allocated values.
	manifest := &api.Service{Metadata: proto.Clone(old.Metadata).(*api.ObjectMeta), Spec: &api.ServiceSpec{
		Type:     "NodePort",
		Selector: map[string]string{"app": "web"},
		Ports:    []*api.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}, {Name: "metrics", Port: 9090, NodePort: 31000}},
	}}
	DefaultUpdate(manifest, old)
	if manifest.Spec.ClusterIp != "10.96.0.10" || len(manifest.Spec.ClusterIps) != 1 {
		t.Errorf("clusterIP not kept: %q %q", manifest.Spec.ClusterIp, manifest.Spec.ClusterIps)
	}
	if got := manifest.Spec.Ports[0].NodePort; got != 30080 {
		t.Errorf("nodePort of port 80 = %d, want 30080 (kept)", got)
	}
	if got := manifest.Spec.Ports[1].NodePort; got != 31000 {
		t.Errorf("nodePort of port 9090 = %d, want 31000 (as given)", got)
	}
	if err := ValidateUpdate(manifest, old); err != nil {
		t.Errorf("re-applied manifest rejected: %v", err)
	}
}
