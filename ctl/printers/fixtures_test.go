package printers

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// now is the fixed clock every golden file is printed against.
var now = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

func ago(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(-d)) }

func int32p(n int32) *int32 { return &n }

func meta(ns, name string, age time.Duration, labels map[string]string) *api.ObjectMeta {
	return &api.ObjectMeta{Name: name, Namespace: ns, Uid: "uid-" + name, ResourceVersion: "42",
		CreationTimestamp: ago(age), Labels: labels}
}

func running(name string, restarts int32, ready bool) *api.ContainerStatus {
	return &api.ContainerStatus{Name: name, Ready: ready, RestartCount: restarts,
		State: &api.ContainerState{Running: &api.ContainerStateRunning{StartedAt: ago(time.Minute)}}}
}

func podFixtures() []kinds.Object {
	spec := func(containers ...string) *api.PodSpec {
		s := &api.PodSpec{NodeName: "node-1"}
		for _, c := range containers {
			s.Containers = append(s.Containers, &api.Container{Name: c, Image: "nginx"})
		}
		return s
	}
	readyCond := []*api.Condition{{Type: "Ready", Status: "True"}}
	return []kinds.Object{
		&api.Pod{Metadata: meta("default", "web-75f95db655-x2x7k", 3*time.Minute, map[string]string{"app": "web", "pod-template-hash": "75f95db655"}),
			Spec: spec("nginx"),
			Status: &api.PodStatus{Phase: "Running", PodIp: "10.244.1.5", PodIps: []*api.PodIP{{Ip: "10.244.1.5"}}, Conditions: readyCond,
				ContainerStatuses: []*api.ContainerStatus{running("nginx", 0, true)}}},
		&api.Pod{Metadata: meta("default", "pending", 10*time.Second, nil),
			Spec:   &api.PodSpec{Containers: []*api.Container{{Name: "c", Image: "busybox"}}},
			Status: &api.PodStatus{Phase: "Pending"}},
		&api.Pod{Metadata: meta("default", "creating", 5*time.Second, nil), Spec: spec("app", "sidecar"),
			Status: &api.PodStatus{Phase: "Pending", ContainerStatuses: []*api.ContainerStatus{
				{Name: "app", State: &api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: "ContainerCreating"}}},
				{Name: "sidecar", State: &api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: "ContainerCreating"}}},
			}}},
		&api.Pod{Metadata: meta("kube", "crashing", 2*time.Hour, nil), Spec: spec("app"),
			Status: &api.PodStatus{Phase: "Running", PodIps: []*api.PodIP{{Ip: "10.244.1.9"}}, ContainerStatuses: []*api.ContainerStatus{
				{Name: "app", RestartCount: 5,
					State:     &api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
					LastState: &api.ContainerState{Terminated: &api.ContainerStateTerminated{ExitCode: 1, Reason: "Error", FinishedAt: ago(5 * time.Minute)}}},
			}}},
		&api.Pod{Metadata: meta("default", "done", 26*time.Hour, nil), Spec: spec("job"),
			Status: &api.PodStatus{Phase: "Succeeded", ContainerStatuses: []*api.ContainerStatus{
				{Name: "job", State: &api.ContainerState{Terminated: &api.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}},
			}}},
		&api.Pod{Metadata: meta("default", "killed", 40*24*time.Hour, nil), Spec: spec("job"),
			Status: &api.PodStatus{Phase: "Failed", ContainerStatuses: []*api.ContainerStatus{
				{Name: "job", State: &api.ContainerState{Terminated: &api.ContainerStateTerminated{ExitCode: 137, Signal: 9}}},
			}}},
		&api.Pod{Metadata: func() *api.ObjectMeta {
			m := meta("default", "terminating", 90*time.Second, nil)
			m.DeletionTimestamp = ago(time.Second)
			return m
		}(), Spec: spec("nginx"),
			Status: &api.PodStatus{Phase: "Running", Conditions: readyCond, ContainerStatuses: []*api.ContainerStatus{running("nginx", 0, true)}}},
		&api.Pod{Metadata: meta("default", "init-waiting", 30*time.Second, nil),
			Spec: &api.PodSpec{InitContainers: []*api.Container{{Name: "i1"}, {Name: "i2"}}, Containers: []*api.Container{{Name: "app"}},
				ReadinessGates: []*api.PodReadinessGate{{ConditionType: "example.com/lb"}}},
			Status: &api.PodStatus{Phase: "Pending", NominatedNodeName: "node-2",
				Conditions: []*api.Condition{{Type: "example.com/lb", Status: "False"}},
				InitContainerStatuses: []*api.ContainerStatus{
					{Name: "i1", State: &api.ContainerState{Terminated: &api.ContainerStateTerminated{ExitCode: 0}}},
					{Name: "i2", State: &api.ContainerState{Running: &api.ContainerStateRunning{}}},
				}}},
		&api.Pod{Metadata: meta("default", "init-failed", 30*time.Second, nil),
			Spec: &api.PodSpec{InitContainers: []*api.Container{{Name: "i1"}}, Containers: []*api.Container{{Name: "app"}}},
			Status: &api.PodStatus{Phase: "Pending", InitContainerStatuses: []*api.ContainerStatus{
				{Name: "i1", RestartCount: 2, State: &api.ContainerState{Terminated: &api.ContainerStateTerminated{ExitCode: 3}}},
			}}},
		&api.Pod{Metadata: meta("default", "evicted", 3*24*time.Hour, nil), Spec: spec("app"),
			Status: &api.PodStatus{Phase: "Failed", Reason: "Evicted"}},
	}
}

func fixtures() map[string][]kinds.Object {
	return map[string][]kinds.Object{
		"Pod": podFixtures(),
		"Deployment": {
			&api.Deployment{Metadata: meta("default", "k8s-nginx", 90*time.Second, map[string]string{"app": "k8s-nginx"}),
				Spec: &api.DeploymentSpec{Replicas: int32p(3), Selector: &api.LabelSelector{MatchLabels: map[string]string{"app": "k8s-nginx"}},
					Template: &api.PodTemplateSpec{Spec: &api.PodSpec{Containers: []*api.Container{{Name: "nginx", Image: "nginx"}}}}},
				Status: &api.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 2}},
			&api.Deployment{Metadata: meta("prod", "api", 400*24*time.Hour, nil),
				Spec: &api.DeploymentSpec{Replicas: int32p(0), Selector: &api.LabelSelector{MatchLabels: map[string]string{"app": "api", "tier": "be"}},
					Template: &api.PodTemplateSpec{Spec: &api.PodSpec{Containers: []*api.Container{{Name: "api", Image: "api:v2"}, {Name: "proxy", Image: "envoy:1.30"}}}}}},
		},
		"ReplicaSet": {
			&api.ReplicaSet{Metadata: meta("default", "k8s-nginx-75f95db655", 90*time.Second, map[string]string{"app": "k8s-nginx", "pod-template-hash": "75f95db655"}),
				Spec: &api.ReplicaSetSpec{Replicas: int32p(3), Selector: &api.LabelSelector{MatchLabels: map[string]string{"app": "k8s-nginx", "pod-template-hash": "75f95db655"}},
					Template: &api.PodTemplateSpec{Spec: &api.PodSpec{Containers: []*api.Container{{Name: "nginx", Image: "nginx"}}}}},
				Status: &api.ReplicaSetStatus{Replicas: 3, ReadyReplicas: 1}},
		},
		"Service": {
			&api.Service{Metadata: meta("default", "kubernetes", 10*24*time.Hour, nil),
				Spec: &api.ServiceSpec{Type: "ClusterIP", ClusterIp: "10.96.0.1", ClusterIps: []string{"10.96.0.1"},
					Ports: []*api.ServicePort{{Name: "https", Protocol: "TCP", Port: 443, TargetPort: structpb.NewNumberValue(6443)}}}},
			&api.Service{Metadata: meta("default", "k8s-nginx", 30*time.Second, map[string]string{"app": "k8s-nginx"}),
				Spec: &api.ServiceSpec{Type: "NodePort", ClusterIp: "10.96.12.7", Selector: map[string]string{"app": "k8s-nginx"},
					Ports: []*api.ServicePort{{Protocol: "TCP", Port: 80, NodePort: 30080}, {Protocol: "UDP", Port: 53, NodePort: 30053}}}},
			&api.Service{Metadata: meta("default", "headless", 30*time.Second, nil),
				Spec: &api.ServiceSpec{Type: "ClusterIP", ClusterIp: "None", ExternalIps: []string{"192.0.2.1", "192.0.2.2"}}},
		},
		"Endpoints": {
			&api.Endpoints{Metadata: meta("default", "kubernetes", 10*24*time.Hour, nil),
				Subsets: []*api.EndpointSubset{{Addresses: []*api.EndpointAddress{{Ip: "192.168.1.10"}}, Ports: []*api.EndpointPort{{Port: 6443}}}}},
			&api.Endpoints{Metadata: meta("default", "k8s-nginx", 30*time.Second, nil),
				Subsets: []*api.EndpointSubset{{Addresses: []*api.EndpointAddress{{Ip: "10.244.1.5"}, {Ip: "10.244.2.3"}, {Ip: "10.244.1.6"}, {Ip: "10.244.2.9"}},
					Ports: []*api.EndpointPort{{Port: 80}}}}},
			&api.Endpoints{Metadata: meta("default", "empty", 30*time.Second, nil)},
		},
		"Namespace": {
			&api.Namespace{Metadata: meta("", "default", 10*24*time.Hour, nil), Status: &api.NamespaceStatus{Phase: "Active"}},
			&api.Namespace{Metadata: meta("", "old", 3*time.Hour, nil), Status: &api.NamespaceStatus{Phase: "Terminating"}},
		},
		"Node": {
			&api.Node{Metadata: meta("", "node-1", 10*24*time.Hour, map[string]string{"node-role.kubernetes.io/control-plane": ""}),
				Status: &api.NodeStatus{Conditions: []*api.Condition{{Type: "Ready", Status: "True"}},
					Addresses: []*api.NodeAddress{{Type: "InternalIP", Address: "10.0.0.1"}, {Type: "Hostname", Address: "node-1"}},
					NodeInfo:  &api.NodeSystemInfo{KubeletVersion: "v0.1.0", OsImage: "Debian GNU/Linux 12 (bookworm)", KernelVersion: "6.1.0-18-amd64", ContainerRuntimeVersion: "containerd://1.6.20"}}},
			&api.Node{Metadata: meta("", "node-2", 2*time.Hour, nil), Spec: &api.NodeSpec{Unschedulable: true},
				Status: &api.NodeStatus{Conditions: []*api.Condition{{Type: "Ready", Status: "Unknown"}}}},
			&api.Node{Metadata: meta("", "node-3", time.Minute, map[string]string{"kubernetes.io/role": "worker"})},
		},
		"Event": {
			&api.Event{Metadata: meta("default", "web.1", time.Minute, nil), Type: "Normal", Reason: "Scheduled",
				InvolvedObject: &api.ObjectReference{Kind: "Pod", Name: "web-75f95db655-x2x7k", Namespace: "default"},
				Message:        "Successfully assigned default/web-75f95db655-x2x7k to node-1", Source: &api.EventSource{Component: "default-scheduler"},
				FirstTimestamp: ago(time.Minute), LastTimestamp: ago(time.Minute), Count: 1},
			&api.Event{Metadata: meta("default", "web.2", 10*time.Minute, nil), Type: "Warning", Reason: "BackOff",
				InvolvedObject: &api.ObjectReference{Kind: "Pod", Name: "crashing", FieldPath: "spec.containers{app}"},
				Message:        "Back-off restarting failed container\n", Source: &api.EventSource{Component: "kubelet", Host: "node-1"},
				FirstTimestamp: ago(10 * time.Minute), LastTimestamp: ago(20 * time.Second), Count: 7},
		},
		"ConfigMap": {
			&api.ConfigMap{Metadata: meta("default", "settings", time.Hour, nil), Data: map[string]string{"a": "1", "b": "2"}},
		},
		"Secret": {
			&api.Secret{Metadata: meta("default", "token", time.Hour, nil), Type: "Opaque", Data: map[string][]byte{"t": []byte("x")}},
		},
		"Lease": {
			&api.Lease{Metadata: meta("skiff-system", "node-1", time.Hour, nil), Spec: &api.LeaseSpec{HolderIdentity: "node-1"}},
		},
		"RoleBinding": {
			&api.RoleBinding{Metadata: meta("", "admins", time.Hour, nil), RoleRef: &api.RoleRef{Name: "admin"},
				Subjects: []*api.Subject{{Kind: "User", Name: "alice"}, {Kind: "Group", Name: "ops"}}},
		},
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}
