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
