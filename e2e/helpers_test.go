package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/e2e/harness"
)

// Bounds of the waits: generous, for a loaded 2-core machine.
const (
	rolloutTimeout  = 3 * time.Minute
	convergeTimeout = 3 * time.Minute
	pollInterval    = time.Second
	welcomeText     = "Welcome to nginx!"
)

// ctl runs ctl and fails the test unless it exits 0.
func ctl(t *testing.T, ctx context.Context, c *harness.Cluster, args ...string) string {
	t.Helper()
	out, err := c.CtlOK(ctx, args...)
	if err != nil {
		t.Fatalf("ctl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// eventually fails the test when check does not pass within timeout.
func eventually(t *testing.T, ctx context.Context, timeout time.Duration, what string, check func(context.Context) error) {
	t.Helper()
	start := time.Now()
	if err := harness.Eventually(ctx, timeout, pollInterval, what, check); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: after %v", what, time.Since(start).Round(100*time.Millisecond))
}

// podRow is one line of `ctl get pods -o wide`.
type podRow struct {
	Name, Ready, Status, Restarts, IP, Node string
}

// pods lists the pods of a deployment (label app=NAME) as `get pods -o
// wide` prints them.
func pods(ctx context.Context, c *harness.Cluster, app string) ([]podRow, error) {
	tab, err := c.Get(ctx, "pods", "-o", "wide", "-l", "app="+app)
	if err != nil {
		return nil, err
	}
	var out []podRow
	for _, r := range tab.Rows {
		out = append(out, podRow{Name: r["NAME"], Ready: r["READY"], Status: r["STATUS"], Restarts: r["RESTARTS"], IP: r["IP"], Node: r["NODE"]})
	}
	return out, nil
}

// runningPods waits until app has exactly n pods, all Running and ready
// with an IP, and returns them.
func runningPods(t *testing.T, ctx context.Context, c *harness.Cluster, app string, n int, timeout time.Duration) []podRow {
	t.Helper()
	var got []podRow
	eventually(t, ctx, timeout, fmt.Sprintf("%d Running pods of %s", n, app), func(ctx context.Context) error {
		ps, err := pods(ctx, c, app)
		if err != nil {
			return err
		}
		if len(ps) != n {
			return fmt.Errorf("%d pods, want %d: %v", len(ps), n, ps)
		}
		for _, p := range ps {
			if p.Status != "Running" || p.Ready != "1/1" || net.ParseIP(p.IP) == nil {
				return fmt.Errorf("pod %s is %s, ready %s, IP %q", p.Name, p.Status, p.Ready, p.IP)
			}
		}
		got = ps
		return nil
	})
	return got
}

// deploymentReady waits until `get deployment NAME` shows n/n ready, n
// up to date and n available.
func deploymentReady(t *testing.T, ctx context.Context, c *harness.Cluster, name string, n int, timeout time.Duration) {
	t.Helper()
	want := regexp.MustCompile(fmt.Sprintf(`(?m)^%s\s+%d/%d\s+%d\s+%d\s`, regexp.QuoteMeta(name), n, n, n, n))
	eventually(t, ctx, timeout, fmt.Sprintf("deployment %s %d/%d", name, n, n), func(ctx context.Context) error {
		out, err := c.CtlOK(ctx, "get", "deployment", name)
		if err != nil {
			return err
		}
		if !want.MatchString(out) {
			return fmt.Errorf("get deployment shows:\n%s", out)
		}
		return nil
	})
}

// object is the part of a JSON object the suite reads.
type object struct {
	Metadata struct {
		Name              string            `json:"name"`
		Namespace         string            `json:"namespace"`
		UID               string            `json:"uid"`
		DeletionTimestamp string            `json:"deletionTimestamp"`
		Labels            map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		NodeName string `json:"nodeName"`
		Replicas *int   `json:"replicas"`
	} `json:"spec"`
	Status struct {
		Phase      string `json:"phase"`
		PodIP      string `json:"podIP"`
		Conditions []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"conditions"`
		Replicas          int `json:"replicas"`
		ReadyReplicas     int `json:"readyReplicas"`
		UpdatedReplicas   int `json:"updatedReplicas"`
		AvailableReplicas int `json:"availableReplicas"`
	} `json:"status"`
}

// condition is the status of an object's condition typ ("" when absent).
func (o object) condition(typ string) string {
	for _, c := range o.Status.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

// list returns every object of a resource in every namespace, from
// `ctl get RESOURCE -A -o json`.
func list(ctx context.Context, c *harness.Cluster, resource string, extra ...string) ([]object, error) {
	out, err := c.CtlOK(ctx, append([]string{"get", resource, "-A", "-o", "json"}, extra...)...)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Items []object `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return nil, fmt.Errorf("get %s -o json: %w: %s", resource, err, out)
	}
	return doc.Items, nil
}

// fetchOK fetches url from node i and checks nginx's welcome page.
func fetchOK(ctx context.Context, c *harness.Cluster, node int, url string) error {
	body, err := c.FetchFromNode(ctx, node, url)
	if err != nil {
		return fmt.Errorf("from %s: %w", c.Config.NodeName(node), err)
	}
	if !strings.Contains(body, welcomeText) {
		return fmt.Errorf("from %s, %s answered without %q:\n%s", c.Config.NodeName(node), url, welcomeText, body)
	}
	return nil
}

// nodesOf returns the sorted distinct nodes of pods.
func nodesOf(ps []podRow) []string {
	var nodes []string
	for _, p := range ps {
		if !slices.Contains(nodes, p.Node) {
			nodes = append(nodes, p.Node)
		}
	}
	slices.Sort(nodes)
	return nodes
}

// deleteQuietly removes what a test made, whatever state it is in. A
// failed test's cluster state is dumped first, while it still shows what
// the test saw.
func deleteQuietly(t *testing.T, c *harness.Cluster, args ...string) {
	t.Helper()
	dumpIfFailed(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if r, err := c.Ctl(ctx, append([]string{"delete", "--ignore-not-found"}, args...)...); err != nil || r.ExitCode != 0 {
		t.Logf("clean-up delete %v: %v %s", args, err, r)
	}
}

// clientPod starts a busybox deployment to run commands inside the pod
// network and returns its pod's name. It stops at once on SIGTERM.
func clientPod(t *testing.T, ctx context.Context, c *harness.Cluster, name string) string {
	t.Helper()
	ctl(t, ctx, c, "create", "deployment", name, "--image", "busybox", "--",
		"sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done")
	t.Cleanup(func() { deleteQuietly(t, c, "deployment", name) })
	return runningPods(t, ctx, c, name, 1, rolloutTimeout)[0].Name
}
