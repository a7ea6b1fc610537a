package pods

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/kubelet/cni"
	"github.com/skiff-dev/skiff/kubelet/runtime"
	"github.com/skiff-dev/skiff/proto/api"
)

func TestPullPolicyDefaultsLikeKubernetes(t *testing.T) {
	tests := []struct {
		image, policy, want string
	}{
		{"nginx", "", runtime.PullAlways},
		{"nginx:latest", "", runtime.PullAlways},
		{"nginx:1.25", "", runtime.PullIfNotPresent},
		{"127.0.0.1:5000/app:v1", "", runtime.PullIfNotPresent},
		{"nginx", "Never", runtime.PullNever},
		{"nginx:1.25", "Always", runtime.PullAlways},
	}
	for _, tt := range tests {
		if got := pullPolicy(&api.Container{Image: tt.image, ImagePullPolicy: tt.policy}); got != tt.want {
			t.Errorf("pullPolicy(%s, %q) = %s, want %s", tt.image, tt.policy, got, tt.want)
		}
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		limits  map[string]string
		mem     int64
		cpu     int64
		wantErr string
	}{
		{nil, 0, 0, ""},
		{map[string]string{"memory": "64Mi", "cpu": "500m"}, 64 << 20, 500, ""},
		{map[string]string{"memory": "1G", "cpu": "2"}, 1e9, 2000, ""},
		{map[string]string{"cpu": "lots"}, 0, 0, "resources.limits.cpu"},
	}
	for _, tt := range tests {
		mem, cpu, err := limits(&api.Container{Name: "c", Resources: &api.ResourceRequirements{Limits: tt.limits}})
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("limits(%v) err = %v, want %q", tt.limits, err, tt.wantErr)
			}
			continue
		}
		if err != nil || mem != tt.mem || cpu != tt.cpu {
			t.Errorf("limits(%v) = %d, %d, %v; want %d, %d", tt.limits, mem, cpu, err, tt.mem, tt.cpu)
		}
	}
}

func TestHostPortsAndGracePeriod(t *testing.T) {
	w := &worker{}
	g := int64(7)
	pod := &api.Pod{Metadata: &api.ObjectMeta{}, Spec: &api.PodSpec{TerminationGracePeriodSeconds: &g, Containers: []*api.Container{
		{Ports: []*api.ContainerPort{{ContainerPort: 80, HostPort: 8080, Protocol: "TCP"}, {ContainerPort: 81}}},
		{Ports: []*api.ContainerPort{{ContainerPort: 53, HostPort: 5353, Protocol: "UDP", HostIp: "127.0.0.1"}}},
	}}}
	want := []cni.PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}, {HostPort: 5353, ContainerPort: 53, Protocol: "udp", HostIP: "127.0.0.1"}}
	if got := w.hostPorts(pod); !reflect.DeepEqual(got, want) {
		t.Errorf("hostPorts = %+v, want %+v", got, want)
	}
	if got := gracePeriod(pod); got != 7*time.Second {
		t.Errorf("gracePeriod = %v, want the spec's 7s", got)
	}
	d := int64(2)
	pod.Metadata.DeletionGracePeriodSeconds = &d
	if got := gracePeriod(pod); got != 2*time.Second {
		t.Errorf("gracePeriod = %v, want the deletion's 2s", got)
	}
	if got := gracePeriod(&api.Pod{}); got != 30*time.Second {
		t.Errorf("gracePeriod of a bare pod = %v, want 30s", got)
	}
}

func TestResolvConf(t *testing.T) {
	m := &Manager{cfg: Config{ClusterDNS: "10.96.0.10", ClusterDomain: "cluster.local"}}
	w := &worker{m: m}
	pod := &api.Pod{Metadata: &api.ObjectMeta{Namespace: "shop"}, Spec: &api.PodSpec{DnsPolicy: "ClusterFirst"}}
	got, err := w.resolvConf(pod)
	want := "nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
	if err != nil || got != want {
		t.Errorf("resolv.conf = %q, %v; want %q", got, err, want)
	}
}

func TestLatestRuns(t *testing.T) {
	a, b, c := &runtime.Container{RestartCount: 0}, &runtime.Container{RestartCount: 1}, &runtime.Container{RestartCount: 2}
	if cur, prev := latest([]*runtime.Container{a, b, c}); cur != c || prev != b {
		t.Errorf("latest = %v, %v", cur, prev)
	}
	if cur, prev := latest([]*runtime.Container{a}); cur != a || prev != nil {
		t.Errorf("latest of one = %v, %v", cur, prev)
	}
	if cur, prev := latest(nil); cur != nil || prev != nil {
		t.Errorf("latest of none = %v, %v", cur, prev)
	}
}

func TestPodLimitsSumWhenEveryContainerHasOne(t *testing.T) {
	c := func(l map[string]string) *api.Container {
		return &api.Container{Name: "c", Resources: &api.ResourceRequirements{Limits: l}}
	}
	small := c(map[string]string{"memory": "64Mi", "cpu": "500m"})
	tests := []struct {
		name              string
		containers, inits []*api.Container
		mem, cpu          int64
	}{
		{"one container", []*api.Container{small}, nil, 64 << 20, 500},
		{"sum", []*api.Container{small, c(map[string]string{"memory": "32Mi", "cpu": "1"})}, nil, 96 << 20, 1500},
		{"one without a memory limit leaves the pod unlimited in memory", []*api.Container{c(map[string]string{"memory": "64Mi", "cpu": "1"}), c(map[string]string{"cpu": "1"})}, nil, 0, 2000},
		{"none", []*api.Container{c(nil)}, nil, 0, 0},
		// Init containers run alone, before the app containers.
		{"the larger of the app sum and the largest init container", []*api.Container{small, small},
			[]*api.Container{c(map[string]string{"memory": "256Mi", "cpu": "250m"}), c(map[string]string{"memory": "32Mi", "cpu": "2"})}, 256 << 20, 2000},
		{"an init container without a limit leaves the pod unlimited", []*api.Container{small}, []*api.Container{c(map[string]string{"cpu": "1"})}, 0, 1000},
	}
	for _, tt := range tests {
		mem, cpu, err := podLimits(&api.Pod{Spec: &api.PodSpec{Containers: tt.containers, InitContainers: tt.inits}})
		if err != nil || mem != tt.mem || cpu != tt.cpu {
			t.Errorf("%s: podLimits = %d, %d, %v; want %d, %d", tt.name, mem, cpu, err, tt.mem, tt.cpu)
		}
	}
}
