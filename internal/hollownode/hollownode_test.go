package hollownode_test

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/hollownode"
	"github.com/skiff-dev/skiff/internal/testcluster"
	"github.com/skiff-dev/skiff/proto/api"
)

func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not after %v: %v", what, timeout, err)
}

func boundPod(name, node string) *api.Pod {
	return &api.Pod{
		Metadata: &api.ObjectMeta{Name: name, Namespace: "default"},
		Spec: &api.PodSpec{NodeName: node, Containers: []*api.Container{
			{Name: "web", Image: "nginx"}, {Name: "sidecar", Image: "busybox"},
		}},
	}
}

func runningWithIP(c *client.Client, name string, prefix netip.Prefix) func() error {
	return func() error {
		p, err := c.Pods().Get(context.Background(), "default", name)
		if err != nil {
			return err
		}
		st := p.GetStatus()
		if st.GetPhase() != "Running" || len(st.GetContainerStatuses()) != 2 {
			return fmt.Errorf("status %v", st)
		}
		ready := false
		for _, c := range st.GetConditions() {
			if c.GetType() == "Ready" && c.GetStatus() == "True" {
				ready = true
			}
		}
		for _, cs := range st.GetContainerStatuses() {
			if !cs.GetReady() || cs.GetState().GetRunning() == nil {
				return fmt.Errorf("container %v", cs)
			}
		}
		ip, err := netip.ParseAddr(st.GetPodIp())
		if err != nil || !prefix.Contains(ip) || !ready || st.GetHostIp() == "" {
			return fmt.Errorf("ready %v, pod IP %q (want in %s), host IP %q", ready, st.GetPodIp(), prefix, st.GetHostIp())
		}
		return nil
	}
}

func TestHollowNodeRegistersHeartbeatsAndRunsItsPods(t *testing.T) {
	cl := testcluster.Start(t)
	c := cl.Client
	ctx := context.Background()
	n, err := hollownode.Start(ctx, c, "n1", hollownode.Options{
		Labels:       map[string]string{"zone": "a"},
		FleetOptions: hollownode.FleetOptions{HeartbeatInterval: 100 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)

	node, err := c.Nodes().Get(ctx, "", "n1")
	if err != nil {
		t.Fatal(err)
	}
	if got := node.GetStatus().GetCapacity(); got["cpu"] != "4" || got["memory"] != "16Gi" || got["pods"] != "110" {
		t.Fatalf("capacity %v", got)
	}
	if node.GetMetadata().GetLabels()["zone"] != "a" || node.GetMetadata().GetLabels()["kubernetes.io/hostname"] != "n1" {
		t.Fatalf("labels %v", node.GetMetadata().GetLabels())
	}
	renewTime := func() time.Time {
		l, err := c.Leases().Get(ctx, hollownode.LeaseNamespace, "n1")
		if err != nil {
			t.Fatalf("lease: %v", err)
		}
		return l.GetSpec().GetRenewTime().AsTime()
	}
	first := renewTime()
	if l, _ := c.Leases().Get(ctx, hollownode.LeaseNamespace, "n1"); len(l.GetMetadata().GetOwnerReferences()) != 1 ||
		l.GetMetadata().GetOwnerReferences()[0].GetUid() != node.GetMetadata().GetUid() {
		t.Fatalf("lease ownerReferences %v, want the node", l.GetMetadata().GetOwnerReferences())
	}
	eventually(t, 5*time.Second, "lease renewed", func() error {
		if !renewTime().After(first) {
			return fmt.Errorf("renewTime still %v", first)
		}
		return nil
	})

	// Without a podCIDR the node uses a fake range; with one, that one.
	if _, err := c.Pods().Create(ctx, boundPod("a", "n1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "pod a running", runningWithIP(c, "a", netip.MustParsePrefix("172.16.0.0/12")))
	node, err = c.Nodes().Get(ctx, "", "n1")
	if err != nil {
		t.Fatal(err)
	}
	upd := proto.Clone(node).(*api.Node)
	upd.Spec.PodCidr = "10.244.7.0/24"
	if _, err := c.Nodes().Update(ctx, upd); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the node looks its podCIDR up at most once a second
	if _, err := c.Pods().Create(ctx, boundPod("b", "n1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "pod b running in the podCIDR", runningWithIP(c, "b", netip.MustParsePrefix("10.244.7.0/24")))

	// Graceful deletion: the hollow kubelet finishes it at once.
	if _, err := c.Pods().Delete(ctx, "default", "a", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "pod a removed", func() error {
		if _, err := c.Pods().Get(ctx, "default", "a"); !client.IsNotFound(err) {
			return fmt.Errorf("still there (err %v)", err)
		}
		return nil
	})

	// A silent node neither heartbeats nor runs pods.
	n.StopHeartbeat()
	time.Sleep(300 * time.Millisecond)
	stopped := renewTime()
	if _, err := c.Pods().Create(ctx, boundPod("c", "n1")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if !renewTime().Equal(stopped) {
		t.Fatal("a stopped node renewed its lease")
	}
	if p, _ := c.Pods().Get(ctx, "default", "c"); p.GetStatus().GetPhase() == "Running" {
		t.Fatal("a stopped node ran a pod")
	}
	if err := n.ResumeHeartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "pod c running after resume", runningWithIP(c, "c", netip.MustParsePrefix("10.244.7.0/24")))
}

func TestFleetRunsManyNodesOnAFewGoroutines(t *testing.T) {
	cl := testcluster.Start(t)
	c := cl.Client
	ctx := context.Background()
	before := runtime.NumGoroutine()
	fleet := hollownode.NewFleet(ctx, c, hollownode.FleetOptions{HeartbeatInterval: 2 * time.Second})
	t.Cleanup(fleet.Close)
	const nodes = 200
	for i := range nodes {
		if _, err := hollownode.Start(ctx, c, fmt.Sprintf("n%03d", i), hollownode.Options{Fleet: fleet}); err != nil {
			t.Fatal(err)
		}
	}
	// The watch, the heartbeat loop (16 renewals at most in flight), the
	// workers and gRPC's own: a constant, far below one per node.
	if grown := runtime.NumGoroutine() - before; grown > 80 {
		t.Fatalf("%d goroutines for %d nodes: the fleet must not run one per node", grown, nodes)
	}
	for i := range 10 {
		if _, err := c.Pods().Create(ctx, boundPod(fmt.Sprintf("p%d", i), fmt.Sprintf("n%03d", i*19))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		eventually(t, 10*time.Second, "fleet pod running", runningWithIP(c, fmt.Sprintf("p%d", i), netip.MustParsePrefix("172.16.0.0/12")))
	}
	leases, _, err := c.Leases().List(ctx, hollownode.LeaseNamespace, client.ListOptions{})
	if err != nil || len(leases) < nodes {
		t.Fatalf("%d leases (err %v), want %d", len(leases), err, nodes)
	}
}
