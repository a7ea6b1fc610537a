package app_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/skiff-dev/skiff/controller-manager/controllerutil"
	"github.com/skiff-dev/skiff/controller-manager/nodelifecycle"
	"github.com/skiff-dev/skiff/internal/client"
)

// TestStandbyTakesOverFromALeaderCutOff cuts the leader off the apiserver
// without letting it release the Lease, as a crash or a partition would:
// the standby takes over once the Lease expires, and the cut-off leader
// steps down.
func TestStandbyTakesOverFromALeaderCutOff(t *testing.T) {
	e := newEnv(t, 2)
	cfg := testConfig()
	cfg.LeaderElect = true
	cfg.LeaseDuration, cfg.RenewDeadline, cfg.RetryPeriod = 4*time.Second, 3*time.Second, 500*time.Millisecond

	conn, err := grpc.NewClient(e.cluster.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cfgA := cfg
	cfgA.Identity = "cm-a"
	a := startManager(t, client.New(conn), cfgA)
	eventually(t, 15*time.Second, "cm-a leads", func() error {
		if !a.Leading() {
			return errorf("not leading")
		}
		return nil
	})
	cfgB := cfg
	cfgB.Identity = "cm-b"
	b := startManager(t, e.c, cfgB)

	conn.Close() // cm-a can neither renew nor release
	cutAt := time.Now()
	eventually(t, cfg.LeaseDuration+15*time.Second, "cm-b leads", func() error {
		if !b.Leading() {
			return errorf("not leading")
		}
		return nil
	})
	if took := time.Since(cutAt); took > cfg.LeaseDuration+15*time.Second {
		t.Fatalf("takeover took %v", took)
	}
	// The cut-off leader stops its controllers and campaigns again.
	eventually(t, cfg.RenewDeadline+15*time.Second, "cm-a steps down", func() error {
		if a.Leading() {
			return errorf("still leading")
		}
		return nil
	})
	if _, err := e.c.Deployments().Create(context.Background(), newDeployment("web", 3, "nginx")); err != nil {
		t.Fatalf("create: %v", err)
	}
	e.waitDeploymentComplete("web", 3, 30*time.Second)
}

// TestNodeReportingNotReadyIsTaintedAndEvicted covers a kubelet that is
// alive but says its node is not ready.
func TestNodeReportingNotReadyIsTaintedAndEvicted(t *testing.T) {
	e := newEnv(t, 2)
	e.startManager(testConfig())
	ctx := context.Background()
	if _, err := e.c.Deployments().Create(ctx, newDeployment("web", 4, "nginx")); err != nil {
		t.Fatalf("create: %v", err)
	}
	e.waitDeploymentComplete("web", 4, 30*time.Second)
	sick := e.nodes[1].Name
	err := controllerutil.RetryOnConflict(ctx, func() error {
		n, err := e.c.Nodes().Get(ctx, "", sick)
		if err != nil {
			return err
		}
		for _, c := range n.Status.Conditions {
			if c.GetType() == "Ready" {
				c.Status, c.Reason = "False", "KubeletNotReady"
			}
		}
		_, err = e.c.Nodes().UpdateStatus(ctx, n)
		return err
	})
	if err != nil {
		t.Fatalf("report not ready: %v", err)
	}
	eventually(t, 20*time.Second, "not-ready taint", func() error {
		n, err := e.c.Nodes().Get(ctx, "", sick)
		if err != nil {
			return err
		}
		for _, taint := range n.GetSpec().GetTaints() {
			if taint.GetKey() == nodelifecycle.TaintNotReady && taint.GetEffect() == "NoExecute" {
				return nil
			}
		}
		return errorf("taints %v", n.GetSpec().GetTaints())
	})
	eventually(t, 30*time.Second, "pods moved off the not-ready node", func() error {
		pods := e.listPods(map[string]string{"app": "web"})
		for _, p := range pods {
			if p.GetSpec().GetNodeName() == sick {
				return errorf("pod %s still on %s", p.GetMetadata().GetName(), sick)
			}
		}
		if n := runningReady(pods); n != 4 {
			return errorf("%d ready pods", n)
		}
		return nil
	})
}
