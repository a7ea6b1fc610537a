package endpoints

import (
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skiff-dev/skiff/internal/intstr"
	"github.com/skiff-dev/skiff/proto/api"
)

func epPod(name, ip string, ready bool, port int32) *api.Pod {
	p := &api.Pod{
		Metadata: &api.ObjectMeta{Name: name, Namespace: "default", Uid: name + "-uid"},
		Spec: &api.PodSpec{NodeName: "n1", Containers: []*api.Container{{Name: "c",
			Ports: []*api.ContainerPort{{Name: "http", ContainerPort: port}}}}},
		Status: &api.PodStatus{Phase: "Running", PodIp: ip},
	}
	if ready {
		p.Status.Conditions = []*api.Condition{{Type: "Ready", Status: "True"}}
	}
	return p
}

func TestBuildSubsets(t *testing.T) {
	svc := &api.Service{Metadata: &api.ObjectMeta{Name: "web"}, Spec: &api.ServiceSpec{Ports: []*api.ServicePort{
		{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
	}}}
	terminating := epPod("gone", "10.0.0.9", true, 8080)
	terminating.Metadata.DeletionTimestamp = timestamppb.Now()
	noIP := epPod("starting", "", false, 8080)
	pods := []*api.Pod{
		epPod("b", "10.0.0.2", true, 8080),
		epPod("a", "10.0.0.1", true, 8080),
		epPod("slow", "10.0.0.3", false, 8080),
		epPod("other-port", "10.0.0.4", true, 9090),
		terminating, noIP,
	}
	subsets := BuildSubsets(svc, pods)
	if len(subsets) != 2 {
		t.Fatalf("%d subsets, want 2 (one per resolved port set): %v", len(subsets), subsets)
	}
	// Sorted by port signature: 8080 before 9090.
	s8080, s9090 := subsets[0], subsets[1]
	if s8080.Ports[0].GetPort() != 8080 || s8080.Ports[0].GetProtocol() != "TCP" || s9090.Ports[0].GetPort() != 9090 {
		t.Fatalf("ports %v / %v", s8080.Ports, s9090.Ports)
	}
	if len(s8080.Addresses) != 2 || s8080.Addresses[0].GetIp() != "10.0.0.1" || s8080.Addresses[1].GetIp() != "10.0.0.2" {
		t.Fatalf("ready addresses %v", s8080.Addresses)
	}
	if len(s8080.NotReadyAddresses) != 1 || s8080.NotReadyAddresses[0].GetTargetRef().GetName() != "slow" {
		t.Fatalf("not ready addresses %v", s8080.NotReadyAddresses)
	}

	// A named port a pod lacks leaves the pod out.
	missing := &api.Service{Metadata: &api.ObjectMeta{Name: "web"}, Spec: &api.ServiceSpec{Ports: []*api.ServicePort{
		{Name: "grpc", Port: 81, TargetPort: intstr.FromString("grpc")},
	}}}
	if got := BuildSubsets(missing, pods); len(got) != 0 {
		t.Fatalf("pods without the named port selected: %v", got)
	}
}
