// Package e2e is Skiff's end-to-end suite: it builds every binary, starts
// a real local cluster (containerd, runc, CNI, iptables, nodes as network
// namespaces) the way `make up` does, and drives it with the ctl binary as
// a user types. It checks the seed scenario; faults survived with nothing
// lost (components killed, leaders killed, a node cut off by a stopped
// kubelet or a downed link, an etcd member killed mid-rollout); and a soak
// of 200 operations over 20 deployments with random faults. It needs
// root; without root it skips unless CI is set, where it fails.
//
// Run it alone with `sudo go test -count=1 -v -timeout 25m ./e2e/`, one
// test with -run (the cluster is started once for the whole binary, every
// test makes and removes its own deployments). The cluster lives in
// /tmp/skiff-e2e (locked: one run at a time), is named e2e on
// 10.251.0.0/24 with its API on port 6543, and is always removed at the
// end; component logs stay in /tmp/skiff-e2e/last-logs. The external-etcd
// test runs a second, one-node cluster beside it for its duration
// (/tmp/skiff-e2e-etcd, e2eetcd on 10.252.0.0/24, port 6544). A failed
// test prints the cluster's state (processes, get all, events, the tail of
// every component log). SKIFF_E2E_SEED replays a soak.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/e2e/harness"
)

// The suite's cluster: its own name, subnet and API port, so it never
// collides with a developer's `make up` cluster (skiff, 10.250.0.0/24,
// 6443).
const (
	clusterName   = "e2e"
	clusterSubnet = "10.251.0.0/24"
	apiServerPort = 6543
	// workDir is fixed (not random) so a run killed before Down is
	// cleaned up by the next; short, for containerd's socket path limit.
	workDir = "/tmp/skiff-e2e"
)

// suite is the cluster every test drives, and suiteCtx ends shortly
// before the test binary's -timeout so Down still runs.
var (
	cluster  *harness.Cluster
	suiteCtx context.Context
	// unschedulableAtUp lists the nodes the scheduler could not use when
	// Up returned (or why they could not be read).
	unschedulableAtUp []string
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) (code int) {
	if testing.Short() {
		fmt.Println("e2e: skipped in -short mode (it starts a real cluster)")
		return 0
	}
	if missing := harness.Missing(); len(missing) > 0 {
		if os.Getenv("CI") == "" {
			fmt.Printf("e2e: skipped: needs %s (run as root after `make deps`; CI fails instead of skipping)\n", strings.Join(missing, ", "))
			return 0
		}
		fmt.Fprintf(os.Stderr, "e2e: needs %s (CI must install them: deploy/deps.sh)\n", strings.Join(missing, ", "))
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Leave Down a few minutes before go test's own -timeout kills the
	// binary (which would skip every deferred clean-up).
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, err := time.ParseDuration(f.Value.String()); err == nil && d > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d-min(3*time.Minute, d/5))
			defer cancel()
		}
	}
	suiteCtx = ctx
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	start := time.Now()
	c, err := harness.Start(ctx, harness.Options{
		RepoRoot: root, WorkDir: workDir,
		Name: clusterName, Subnet: clusterSubnet, APIServerPort: apiServerPort, Nodes: 2,
		Logger: log,
	})

	if c != nil {
		// Always down, whatever happened, and then prove nothing is left.
		defer func() {
			problems := removeCluster(c, workDir)
			for _, p := range problems {
				fmt.Fprintf(os.Stderr, "e2e: %v\n", p)
				code = 1
			}
			if len(problems) == 0 {
				fmt.Println("e2e: down left nothing behind")
			}
		}()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: start: %v\n", err)
		if c != nil {
			c.Dump(context.Background(), os.Stderr)
		}
		return 1
	}
	fmt.Printf("e2e: cluster %s up in %v (state %s)\n", clusterName, time.Since(start).Round(time.Second), c.Config.StateDir)
	// What a user gets right after `make up`, checked by
	// TestUpReturnsSchedulableNodes; then every test starts from a
	// settled cluster, whatever order -run picks.
	unschedulableAtUp, err = c.Unschedulable(ctx)
	if err != nil {
		unschedulableAtUp = []string{err.Error()}
	}
	if err := settled(ctx, c); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		c.Dump(ctx, os.Stderr)
		return 1
	}
	cluster = c
	code = m.Run()
	return code
}

// removeCluster keeps c's component logs in dir/last-logs, downs c and
// checks that nothing of it is left on the host: what went wrong, if
// anything.
func removeCluster(c *harness.Cluster, dir string) []error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var problems []error
	if kept, err := c.SaveLogs(filepath.Join(dir, "last-logs")); err != nil {
		problems = append(problems, fmt.Errorf("keep logs: %w", err))
	} else {
		fmt.Printf("e2e: component logs of cluster %s kept in %s\n", c.Config.Name, kept)
	}
	if err := c.Down(ctx); err != nil {
		problems = append(problems, fmt.Errorf("down %s: %w", c.Config.Name, err))
	}
	left, err := c.Leftovers(ctx)
	if err != nil {
		problems = append(problems, fmt.Errorf("leftovers check of %s: %w", c.Config.Name, err))
	}
	for _, l := range left {
		problems = append(problems, fmt.Errorf("down of %s left %s", c.Config.Name, l))
	}
	return problems
}

// settled waits until every node is schedulable.
func settled(ctx context.Context, c *harness.Cluster) error {
	return harness.Eventually(ctx, 2*time.Minute, time.Second, "every node schedulable", func(ctx context.Context) error {
		left, err := c.Unschedulable(ctx)
		if err == nil && len(left) > 0 {
			err = fmt.Errorf("not schedulable: %v", left)
		}
		return err
	})
}

// TestUpReturnsSchedulableNodes checks what `make up` promises: when Up
// returns, every node takes pods. A node still tainted not-ready then
// makes a deployment created at once land on the other node only.
func TestUpReturnsSchedulableNodes(t *testing.T) {
	setup(t)
	if len(unschedulableAtUp) > 0 {
		t.Errorf("localcluster.Up (Wait) returned while nodes were not schedulable: %v; a deployment created right away lands on the nodes that were", unschedulableAtUp)
	}
}

// setup returns the cluster and a context for one test, turns a panic into
// a failure (so TestMain's Down still runs), and dumps the cluster's state
// when the test fails.
func setup(t *testing.T) (*harness.Cluster, context.Context) {
	t.Helper()
	if cluster == nil {
		t.Fatal("no cluster: TestMain did not start one")
	}
	// Every test starts from a settled cluster, whatever the one before
	// it left (a node whose kubelet just came back is still tainted).
	if err := settled(suiteCtx, cluster); err != nil {
		t.Fatal(err)
	}
	watchCluster(t, cluster)
	return cluster, suiteCtx
}

// watchCluster makes t fail when a component of c exits during it, and
// dumps c's state (processes, get all, events, component logs) when t
// fails: at its first deleteQuietly clean-up, so the dump shows what the
// test saw, or else at the end.
func watchCluster(t *testing.T, c *harness.Cluster) {
	t.Helper()
	t.Cleanup(func() { dumpIfFailed(t, c) })
	// Runs before the last chance to dump: a component that crashed
	// during the test fails it, whatever the test itself checked.
	t.Cleanup(func() {
		if dead := c.Dead(); len(dead) > 0 {
			t.Errorf("components exited during %s: %v%s", t.Name(), dead, c.ExitReport(dead))
		}
	})
}

// dumpIfFailed logs c's state once when t has failed.
func dumpIfFailed(t *testing.T, c *harness.Cluster) {
	if !t.Failed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var b strings.Builder
	// Once per top-level test: its subtests' failures fail it too.
	test, _, _ := strings.Cut(t.Name(), "/")
	if c.DumpOnce(ctx, test, &b) {
		t.Log(b.String())
	}
}

// recoverPanic turns a panic in a test into a failure: an escaped panic
// would end the binary before TestMain removes the cluster. Use as
// `defer recoverPanic(t)` first thing in every test.
func recoverPanic(t *testing.T) {
	if r := recover(); r != nil {
		t.Errorf("panic: %v\n%s", r, debug.Stack())
	}
}
