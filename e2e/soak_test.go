package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/e2e/harness"
)

// Soak size: small enough for the whole suite to stay under 15 minutes on
// a 2-core machine. SKIFF_E2E_SEED replays a run.
const (
	soakDeployments = 5
	soakOps         = 40
	soakFaultEvery  = 8
)

// soakFaults are the components a soak kills and restarts at random.
var soakFaults = []string{"apiserver", "controller-manager", "scheduler", "node-1/kubelet", "node-2/kubelet", "node-1/proxy", "node-2/proxy"}

// soakCtl runs a ctl command until it succeeds: during a fault the
// apiserver may be briefly gone. A create that succeeded although its
// answer was lost finds its object there, which counts as done.
func soakCtl(t *testing.T, ctx context.Context, c *harness.Cluster, args ...string) {
	t.Helper()
	err := harness.Eventually(ctx, 90*time.Second, time.Second, "ctl "+strings.Join(args, " "), func(ctx context.Context) error {
		r, err := c.Ctl(ctx, args...)
		if err != nil {
			return err
		}
		if r.ExitCode != 0 && !(args[0] == "create" && strings.Contains(r.Stderr, "already exists")) {
			return r.Err()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSoak runs random creates, scales and deletes across a few
// deployments while killing and restarting random components, then checks
// that every deployment has exactly its desired ready pods, deleted ones
// left nothing, and no node holds containers, network namespaces, IPs or
// iptables rules of pods that are gone.
func TestSoak(t *testing.T) {
	defer recoverPanic(t)
	c, ctx := setup(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SKIFF_E2E_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SKIFF_E2E_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("soak seed %d (SKIFF_E2E_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	var names []string
	for i := range soakDeployments {
		names = append(names, fmt.Sprintf("soak-%d", i))
	}
	t.Cleanup(func() {
		deleteQuietly(t, c, "service", names[0])
		for _, n := range names {
			deleteQuietly(t, c, "deployment", n, "--wait=false")
		}
	})
	// soak-0 always exists and is exposed, so Service rules churn too.
	desired := map[string]int{names[0]: 2}
	soakCtl(t, ctx, c, "create", "deployment", names[0], "--image", "nginx", "-r", "2")
	soakCtl(t, ctx, c, "expose", "deployment", names[0], "--port", "80")

	for op := 1; op <= soakOps; op++ {
		if op%soakFaultEvery == 0 {
			comp := soakFaults[rng.IntN(len(soakFaults))]
			t.Logf("op %d: kill -9 and restart %s", op, comp)
			if err := c.Kill(ctx, comp); err != nil {
				t.Fatal(err)
			}
			if err := c.Restart(ctx, comp); err != nil {
				t.Fatal(err)
			}
		}
		name := names[rng.IntN(len(names))]
		n, exists := desired[name]
		switch {
		case !exists:
			n = 1 + rng.IntN(3)
			t.Logf("op %d: create %s with %d", op, name, n)
			soakCtl(t, ctx, c, "create", "deployment", name, "--image", "nginx", "-r", strconv.Itoa(n))
			desired[name] = n
		case name != names[0] && rng.IntN(4) == 0:
			t.Logf("op %d: delete %s", op, name)
			soakCtl(t, ctx, c, "delete", "deployment", name, "--ignore-not-found", "--wait=false")
			delete(desired, name)
		default:
			n = rng.IntN(4)
			if name == names[0] {
				n = 1 + rng.IntN(3)
			}
			t.Logf("op %d: scale %s to %d", op, name, n)
			soakCtl(t, ctx, c, "scale", "deployment", name, "--replicas", strconv.Itoa(n))
			desired[name] = n
		}
		// Pace the operations so they overlap the cluster's work rather
		// than all landing before it starts.
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(time.Duration(rng.IntN(1500)) * time.Millisecond):
		}
	}

	t.Logf("desired at the end: %v", desired)
	if dead := c.Dead(); len(dead) > 0 {
		t.Fatalf("components exited during the soak: %v%s", dead, c.ExitReport(dead))
	}
	for _, name := range names {
		n, exists := desired[name]
		if !exists {
			eventually(t, ctx, convergeTimeout, "deleted "+name+" leaves no replicaset or pod", func(ctx context.Context) error {
				rs, err := c.Get(ctx, "replicasets", "-l", "app="+name)
				if err != nil {
					return err
				}
				ps, err := pods(ctx, c, name)
				if err != nil {
					return err
				}
				if len(rs.Rows) > 0 || len(ps) > 0 {
					return fmt.Errorf("%d replicasets, pods %v", len(rs.Rows), ps)
				}
				return nil
			})
			continue
		}
		deploymentReady(t, ctx, c, name, n, convergeTimeout)
		runningPods(t, ctx, c, name, n, convergeTimeout)
		checkOneReplicaSet(t, ctx, c, name, n)
	}
	url := "http://" + serviceIP(t, ctx, c, names[0]) + "/"
	for i := 1; i <= c.Config.Nodes; i++ {
		eventually(t, ctx, convergeTimeout, fmt.Sprintf("Service %s served from %s", names[0], c.Config.NodeName(i)),
			func(ctx context.Context) error { return fetchOK(ctx, c, i, url) })
	}
	nodesClean(t, ctx, c, convergeTimeout)
	if dead := c.Dead(); len(dead) > 0 {
		t.Errorf("components not running after the soak: %v", dead)
	}
}
