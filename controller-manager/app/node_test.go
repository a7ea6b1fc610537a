package app_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/controller-manager/controllerutil"
	"github.com/skiff-dev/skiff/controller-manager/nodelifecycle"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/hollownode"
	"github.com/skiff-dev/skiff/proto/api"
)

func TestSilentNodeTurnsNotReadyAndItsPodsMoveElsewhere(t *testing.T) {
	e := newEnv(t, 3)
	e.startManager(testConfig())
	ctx := context.Background()
	if _, err := e.c.Deployments().Create(ctx, newDeployment("web", 6, "nginx")); err != nil {
		t.Fatalf("create: %v", err)
	}
	e.waitDeploymentComplete("web", 6, 30*time.Second)
	dead := e.nodes[0]
	onDead := 0
	for _, p := range e.listPods(map[string]string{"app": "web"}) {
		if p.GetSpec().GetNodeName() == dead.Name {
			onDead++
		}
	}
	if onDead == 0 {
		t.Fatalf("no pod on %s to move", dead.Name)
	}

	dead.StopHeartbeat()
	eventually(t, 20*time.Second, "node NotReady and tainted", func() error {
		n, err := e.c.Nodes().Get(ctx, "", dead.Name)
		if err != nil {
			return err
		}
		ready := controllerutil.Condition(n.GetStatus().GetConditions(), "Ready")
		if ready.GetStatus() != "Unknown" || ready.GetReason() != "NodeStatusUnknown" {
			return errorf("Ready condition %v", ready)
		}
		for _, taint := range n.GetSpec().GetTaints() {
			if taint.GetKey() == nodelifecycle.TaintUnreachable && taint.GetEffect() == "NoExecute" {
				return nil
			}
		}
		return errorf("no unreachable taint: %v", n.GetSpec().GetTaints())
	})
	eventually(t, 30*time.Second, "pods replaced on live nodes", func() error {
		pods := e.listPods(map[string]string{"app": "web"})
		for _, p := range pods {
			if p.GetSpec().GetNodeName() == dead.Name {
				return errorf("pod %s still on the dead node", p.GetMetadata().GetName())
			}
		}
		if n := runningReady(pods); n != 6 {
			return errorf("%d running ready pods, want 6", n)
		}
		return nil
	})
	if !e.mgr.events.has("NodeNotReady") {
		t.Errorf("no NodeNotReady event")
	}

	// The node comes back: the taint goes.
	if err := dead.ResumeHeartbeat(ctx); err != nil {
		t.Fatalf("resume: %v", err)
	}
	eventually(t, 20*time.Second, "taint lifted", func() error {
		n, err := e.c.Nodes().Get(ctx, "", dead.Name)
		if err != nil {
			return err
		}
		if len(n.GetSpec().GetTaints()) != 0 {
			return errorf("taints %v", n.GetSpec().GetTaints())
		}
		return nil
	})
}

func TestNodeIPAMGivesEachNodeItsOwnSubnetAcrossRestarts(t *testing.T) {
	cl := testclusterStart(t)
	ctx := context.Background()
	cfg := testConfig()
	cfg.ClusterCIDR = "10.200.0.0/22" // four /24s
	m := startManager(t, cl.Client, cfg)
	fleet := hollownode.NewFleet(ctx, cl.Client, hollownode.FleetOptions{})
	t.Cleanup(fleet.Close)
	start := func(name string) {
		if _, err := hollownode.Start(ctx, cl.Client, name, hollownode.Options{Fleet: fleet}); err != nil {
			t.Fatalf("node %s: %v", name, err)
		}
	}
	cidrs := func(want int) map[string]string {
		out := map[string]string{}
		eventually(t, 20*time.Second, "pod CIDRs assigned", func() error {
			clear(out)
			nodes, _, err := cl.Client.Nodes().List(ctx, "", client.ListOptions{})
			if err != nil {
				return err
			}
			seen := map[string]string{}
			for _, n := range nodes {
				c := n.GetSpec().GetPodCidr()
				if c == "" {
					return errorf("node %s has no podCIDR", n.GetMetadata().GetName())
				}
				if other, dup := seen[c]; dup {
					t.Fatalf("nodes %s and %s share %s", other, n.GetMetadata().GetName(), c)
				}
				p := netip.MustParsePrefix(c)
				if p.Bits() != 24 || !netip.MustParsePrefix(cfg.ClusterCIDR).Contains(p.Addr()) {
					t.Fatalf("node %s got %s, not a /24 of %s", n.GetMetadata().GetName(), c, cfg.ClusterCIDR)
				}
				seen[c] = n.GetMetadata().GetName()
				out[n.GetMetadata().GetName()] = c
			}
			if len(out) != want {
				return errorf("%d nodes with CIDRs, want %d", len(out), want)
			}
			return nil
		})
		return out
	}
	start("a")
	start("b")
	first := cidrs(2)

	// A new controller-manager rebuilds the allocation from the nodes.
	if err := m.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	startManager(t, cl.Client, cfg)
	start("c")
	start("d")
	all := cidrs(4)
	for n, c := range first {
		if all[n] != c {
			t.Fatalf("node %s changed CIDR %s → %s", n, c, all[n])
		}
	}
}

// Pods leave a silent node by their NoExecute tolerations, as Kubernetes'
// taint manager decides: no toleration → after the pod eviction timeout
// (the default tolerations' stand-in), tolerationSeconds → after them,
// a toleration without seconds → never.
func TestEvictionFromASilentNodeHonoursTolerations(t *testing.T) {
	e := newEnv(t, 2)
	e.startManager(testConfig())
	ctx := context.Background()
	dead := e.nodes[0]
	tolerate := func(secs *int64) []*api.Toleration {
		return []*api.Toleration{{Key: nodelifecycle.TaintUnreachable, Operator: "Exists", Effect: "NoExecute", TolerationSeconds: secs}}
	}
	pods := []struct {
		name        string
		tolerations []*api.Toleration
		evicted     bool
	}{
		{"plain", nil, true},
		{"zero-seconds", tolerate(ptr[int64](0)), true},
		{"ten-minutes", tolerate(ptr[int64](600)), false},
		{"forever", tolerate(nil), false},
		{"other-taint-forever", []*api.Toleration{{Key: "dedicated", Operator: "Exists", Effect: "NoExecute"}}, true},
	}
	for _, p := range pods {
		pod := &api.Pod{
			Metadata: &api.ObjectMeta{Name: p.name, Namespace: "default"},
			Spec: &api.PodSpec{NodeName: dead.Name, Tolerations: p.tolerations,
				Containers: []*api.Container{{Name: "c", Image: "nginx"}}},
		}
		if _, err := e.c.Pods().Create(ctx, pod); err != nil {
			t.Fatalf("create %s: %v", p.name, err)
		}
	}

	dead.StopHeartbeat()
	present := func() (map[string]bool, error) {
		list, _, err := e.c.Pods().List(ctx, "default", client.ListOptions{FieldSelector: "spec.nodeName=" + dead.Name})
		if err != nil {
			return nil, err
		}
		out := map[string]bool{}
		for _, p := range list {
			out[p.GetMetadata().GetName()] = true
		}
		return out, nil
	}
	eventually(t, 30*time.Second, "untolerating pods evicted", func() error {
		got, err := present()
		if err != nil {
			return err
		}
		for _, p := range pods {
			if p.evicted && got[p.name] {
				return errorf("pod %s still on the silent node", p.name)
			}
		}
		return nil
	})
	// Another eviction timeout later, the tolerating pods are still there.
	time.Sleep(testConfig().PodEvictionTimeout + time.Second)
	got, err := present()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		if !p.evicted && !got[p.name] {
			t.Errorf("pod %s tolerating the unreachable taint was evicted", p.name)
		}
	}
}
