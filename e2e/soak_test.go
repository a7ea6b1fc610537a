package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/e2e/harness"
)

// Soak size, as the issue asks: 200 operations over 20 deployments of 0
// to 3 replicas (about 30 pods at a time, which 2 cores carry), a random
// fault every soakFaultEvery operations. SKIFF_E2E_SEED replays a run.
const (
	soakDeployments = 20
	soakOps         = 200
	soakFaultEvery  = 8
	soakMaxReplicas = 3
	// soakPace bounds the random pause between operations, so they
	// overlap the cluster's work rather than all landing before it starts.
	soakPace = 600 * time.Millisecond
	// soakLinkFlap is how long a link-flap fault keeps a node off the
	// network: well below the node monitor grace period (40s), so the
	// node is not evicted, only its agents' connections break.
	soakLinkFlap = 3 * time.Second
)

// soakKills are the components a soak kills with SIGKILL and restarts.
var soakKills = []string{"apiserver", "controller-manager", "scheduler", "node-1/kubelet", "node-2/kubelet", "node-1/proxy", "node-2/proxy"}

// soakFault injects one random fault: a component killed and restarted,
// or (one time in four) a node's link cut for a moment.
func soakFault(t *testing.T, ctx context.Context, c *harness.Cluster, rng *rand.Rand, op int) {
	t.Helper()
	if rng.IntN(4) == 0 {
		node := 1 + rng.IntN(c.Config.Nodes)
		t.Logf("op %d: %s link down for %v", op, c.Config.NodeName(node), soakLinkFlap)
		if err := c.SetNodeLink(ctx, node, false); err != nil {
			t.Fatal(err)
		}
		// Deferred, so the link is back also when the wait fails.
		defer func() {
			if err := c.SetNodeLink(context.Background(), node, true); err != nil {
				t.Fatal(err)
			}
		}()
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(soakLinkFlap):
		}
		return
	}
	comp := soakKills[rng.IntN(len(soakKills))]
	t.Logf("op %d: kill -9 and restart %s", op, comp)
	if err := c.Kill(ctx, comp); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(ctx, comp); err != nil {
		t.Fatal(err)
	}
}

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

// TestSoak runs random creates, scales and deletes across 20 deployments
// while killing and restarting random components and flapping node links,
// then checks that every deployment has exactly its desired ready pods in
// one replicaset, deleted ones left nothing, and no node holds containers,
// network namespaces, IPs or iptables rules of pods that are gone.
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
		deleteQuietly(t, c, append(append([]string{"deployment"}, names...), "--wait=false")...)
	})
	// soak-0 always exists with a pod at least and is exposed, so Service
	// rules churn too.
	desired := map[string]int{names[0]: 2}
	soakCtl(t, ctx, c, "create", "deployment", names[0], "--image", "nginx", "-r", "2")
	soakCtl(t, ctx, c, "expose", "deployment", names[0], "--port", "80")

	start := time.Now()
	var creates, scales, deletes, faults int
	for op := 1; op <= soakOps; op++ {
		if op%soakFaultEvery == 0 {
			soakFault(t, ctx, c, rng, op)
			faults++
		}
		name := names[rng.IntN(len(names))]
		n, exists := desired[name]
		switch {
		case !exists:
			n = rng.IntN(soakMaxReplicas + 1)
			t.Logf("op %d: create %s with %d", op, name, n)
			soakCtl(t, ctx, c, "create", "deployment", name, "--image", "nginx", "-r", strconv.Itoa(n))
			desired[name] = n
			creates++
		case name != names[0] && rng.IntN(4) == 0:
			t.Logf("op %d: delete %s", op, name)
			soakCtl(t, ctx, c, "delete", "deployment", name, "--ignore-not-found", "--wait=false")
			delete(desired, name)
			deletes++
		default:
			n = rng.IntN(soakMaxReplicas + 1)
			if name == names[0] {
				n = 1 + rng.IntN(soakMaxReplicas)
			}
			t.Logf("op %d: scale %s to %d", op, name, n)
			soakCtl(t, ctx, c, "scale", "deployment", name, "--replicas", strconv.Itoa(n))
			desired[name] = n
			scales++
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(time.Duration(rng.Int64N(int64(soakPace)))):
		}
	}
	t.Logf("%d operations (%d creates, %d scales, %d deletes) and %d faults in %v; desired at the end: %v",
		soakOps, creates, scales, deletes, faults, time.Since(start).Round(time.Second), desired)
	if dead := c.Dead(); len(dead) > 0 {
		t.Fatalf("components exited during the soak: %v%s", dead, c.ExitReport(dead))
	}
	eventually(t, ctx, convergeTimeout, "every deployment exactly at its desired ready pods, deleted ones gone", func(ctx context.Context) error {
		return soakConverged(ctx, c, names, desired)
	})
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

// soakConverged checks, from one listing of each kind, that every
// deployment in desired has exactly its replicas ready in one replicaset
// of that many, with that many Running ready pods, none terminating, and
// that every other name has no deployment, replicaset or pod left.
func soakConverged(ctx context.Context, c *harness.Cluster, names []string, desired map[string]int) error {
	deployments, err := list(ctx, c, "deployments")
	if err != nil {
		return err
	}
	rss, err := list(ctx, c, "replicasets")
	if err != nil {
		return err
	}
	ps, err := list(ctx, c, "pods")
	if err != nil {
		return err
	}
	byApp := func(objs []object) map[string][]object {
		out := map[string][]object{}
		for _, o := range objs {
			if o.Metadata.Namespace == "default" {
				out[o.Metadata.Labels["app"]] = append(out[o.Metadata.Labels["app"]], o)
			}
		}
		return out
	}
	deploymentsOf := map[string][]object{}
	for _, d := range deployments {
		if d.Metadata.Namespace == "default" {
			deploymentsOf[d.Metadata.Name] = append(deploymentsOf[d.Metadata.Name], d)
		}
	}
	rsOf, podsOf := byApp(rss), byApp(ps)
	var wrong []string
	for _, name := range names {
		n, exists := desired[name]
		if !exists {
			if k := len(deploymentsOf[name]) + len(rsOf[name]) + len(podsOf[name]); k > 0 {
				wrong = append(wrong, fmt.Sprintf("%s: deleted, still %d deployments, %d replicasets, %d pods",
					name, len(deploymentsOf[name]), len(rsOf[name]), len(podsOf[name])))
			}
			continue
		}
		if len(deploymentsOf[name]) != 1 {
			wrong = append(wrong, fmt.Sprintf("%s: no deployment", name))
			continue
		}
		d := deploymentsOf[name][0]
		if r := d.Spec.Replicas; r == nil || *r != n || d.Status.ReadyReplicas != n || d.Status.UpdatedReplicas != n || d.Status.AvailableReplicas != n || d.Status.Replicas != n {
			wrong = append(wrong, fmt.Sprintf("%s: deployment replicas %v, status %d/%d/%d/%d (current/updated/ready/available), want %d",
				name, d.Spec.Replicas, d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas, n))
		}
		if rs := rsOf[name]; len(rs) != 1 || rs[0].Spec.Replicas == nil || *rs[0].Spec.Replicas != n || rs[0].Status.Replicas != n || rs[0].Status.ReadyReplicas != n {
			var got []string
			for _, r := range rs {
				got = append(got, fmt.Sprintf("%s %v/%d/%d", r.Metadata.Name, r.Spec.Replicas, r.Status.Replicas, r.Status.ReadyReplicas))
			}
			wrong = append(wrong, fmt.Sprintf("%s: replicasets %v (desired/current/ready), want one of %d", name, got, n))
		}
		var ready int
		for _, p := range podsOf[name] {
			if p.Metadata.DeletionTimestamp == "" && p.Status.Phase == "Running" && p.condition("Ready") == "True" && p.Status.PodIP != "" {
				ready++
			}
		}
		if len(podsOf[name]) != n || ready != n {
			wrong = append(wrong, fmt.Sprintf("%s: %d pods, %d of them Running and ready, want %d", name, len(podsOf[name]), ready, n))
		}
	}
	if len(wrong) > 0 {
		return errors.New(strings.Join(wrong, "\n"))
	}
	return nil
}
