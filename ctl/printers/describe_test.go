package printers

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// TestDescribeMatchesGoldenFiles protects describe's text for every kind,
// with events and related objects.
func TestDescribeMatchesGoldenFiles(t *testing.T) {
	fx := fixtures()
	events := fx["Event"]
	var evs []*api.Event
	for _, e := range events {
		evs = append(evs, e.(*api.Event))
	}
	pods := fx["Pod"]
	var podList []*api.Pod
	for _, p := range pods[:3] {
		podList = append(podList, p.(*api.Pod))
	}
	rs := fx["ReplicaSet"][0].(*api.ReplicaSet)
	rs.GetMetadata().Annotations = map[string]string{RevisionAnnotation: "2"}
	oldRS := &api.ReplicaSet{Metadata: meta("default", "k8s-nginx-5d59d67564", time.Hour, nil),
		Spec: &api.ReplicaSetSpec{Replicas: int32p(1)}, Status: &api.ReplicaSetStatus{Replicas: 1}}
	oldRS.GetMetadata().Annotations = map[string]string{RevisionAnnotation: "1"}
	deploy := fx["Deployment"][0].(*api.Deployment)
	deploy.GetMetadata().Annotations = map[string]string{RevisionAnnotation: "2", "kubectl.kubernetes.io/last-applied-configuration": "{}"}
	deploy.Status.Conditions = []*api.Condition{{Type: "Available", Status: "True", Reason: "MinimumReplicasAvailable"}, {Type: "Progressing", Status: "True", Reason: "NewReplicaSetAvailable"}}
	pod := pods[3].(*api.Pod)
	pod.GetSpec().Containers[0].Ports = []*api.ContainerPort{{ContainerPort: 80, Protocol: "TCP"}}
	pod.GetSpec().Containers[0].Env = []*api.EnvVar{{Name: "MODE", Value: "prod"}}
	pod.GetSpec().Volumes = []*api.Volume{{Name: "cache", EmptyDir: &api.EmptyDirVolumeSource{}}}
	pod.GetSpec().Containers[0].VolumeMounts = []*api.VolumeMount{{Name: "cache", MountPath: "/cache"}}
	pod.GetStatus().HostIp = "10.0.0.1"
	pod.GetSpec().Tolerations = []*api.Toleration{
		{Key: "node.kubernetes.io/not-ready", Operator: "Exists", Effect: "NoExecute", TolerationSeconds: func() *int64 { n := int64(300); return &n }()},
		{Key: "dedicated", Operator: "Equal", Value: "db", Effect: "NoSchedule"},
	}
	pod.GetStatus().Conditions = []*api.Condition{{Type: "Initialized", Status: "True"}, {Type: "Ready", Status: "False"}}
	pod.GetMetadata().OwnerReferences = []*api.OwnerReference{{Kind: "ReplicaSet", Name: "crashing-abc", Controller: func() *bool { b := true; return &b }()}}

	for _, tc := range []struct {
		name string
		d    Described
	}{
		{"pod", Described{Object: pod, Events: evs}},
		{"pod-pending", Described{Object: pods[1]}},
		{"deployment", Described{Object: deploy, ReplicaSets: []*api.ReplicaSet{rs, oldRS}}},
		{"replicaset", Described{Object: rs, Pods: podList}},
		{"service", Described{Object: fx["Service"][1], Endpoints: &api.Endpoints{Subsets: []*api.EndpointSubset{{
			Addresses: []*api.EndpointAddress{{Ip: "10.244.1.5"}, {Ip: "10.244.2.3"}}, Ports: []*api.EndpointPort{{Port: 80}}}}}}},
		{"node", Described{Object: fx["Node"][0], Pods: podList}},
		{"namespace", Described{Object: fx["Namespace"][0]}},
		{"endpoints", Described{Object: fx["Endpoints"][1]}},
		{"configmap", Described{Object: fx["ConfigMap"][0]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := Describe(&out, tc.d, now); err != nil {
				t.Fatal(err)
			}
			golden(t, "describe-"+tc.name+".golden", out.Bytes())
		})
	}
	// Every kind describes without error.
	for _, info := range kinds.All() {
		for _, o := range fx[info.Kind] {
			if err := Describe(&bytes.Buffer{}, Described{Object: o}, now); err != nil {
				t.Errorf("describe %s: %v", info.Kind, err)
			}
		}
	}
}

func TestDescribeHidesLastAppliedConfiguration(t *testing.T) {
	d := fixtures()["Deployment"][0].(*api.Deployment)
	d.GetMetadata().Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{\"big\":1}"}
	var out bytes.Buffer
	if err := Describe(&out, Described{Object: d}, now); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "last-applied") || !regexp.MustCompile(`\nAnnotations: +<none>\n`).MatchString(out.String()) {
		t.Errorf("describe shows the last-applied annotation:\n%s", out.String())
	}
}
