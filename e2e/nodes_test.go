package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/e2e/harness"
)

// Where a node's kubelet keeps pod network namespaces and host-local's IP
// leases, under its --root-dir (kubelet/app: RootDir/netns and
// RootDir/cni/networks/<network>), and the containerd label naming a
// container's pod (kubelet/runtime.LabelPodUID).
const (
	podNetnsDir    = "kubelet/netns"
	ipLeaseDir     = "kubelet/cni/networks/skiff"
	labelPodUID    = "io.skiff.pod.uid"
	labelKind      = "io.skiff.kind"
	kindSandbox    = "sandbox"
	labelNetns     = "io.skiff.sandbox.netns"
	sepDNATPattern = `-A (SKIFF-SEP-\S+) .*--to-destination (\d+\.\d+\.\d+\.\d+):\d+`
)

// nodeLeftovers lists what node i holds for pods that are no longer bound
// to it: containerd containers, pod network namespaces, IP leases and
// Service endpoint rules. Empty means the node is clean.
func nodeLeftovers(ctx context.Context, c *harness.Cluster, i int) ([]string, error) {
	node := c.Config.NodeName(i)
	all, err := list(ctx, c, "pods")
	if err != nil {
		return nil, err
	}
	uids, ips := map[string]bool{}, map[string]bool{}
	anyIPs := map[string]bool{}
	var onNode int
	for _, p := range all {
		if p.Status.PodIP != "" {
			anyIPs[p.Status.PodIP] = true
		}
		if p.Spec.NodeName != node {
			continue
		}
		onNode++
		uids[p.Metadata.UID] = true
		if p.Status.PodIP != "" {
			ips[p.Status.PodIP] = true
		}
	}
	var left []string
	// containerd: every container (sandbox records included) belongs to a
	// pod bound here. A sandbox record names its pod's network namespace.
	r, err := c.Ctr(ctx, i, "containers", "ls", "-q")
	if err != nil {
		return nil, err
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	usedNetns := map[string]bool{}    // namespaces of sandboxes of pods bound here
	netnsOwner := map[string]string{} // namespace → the pod whose sandbox names it
	for _, id := range strings.Fields(r.Stdout) {
		info, err := c.Ctr(ctx, i, "containers", "info", id)
		if err != nil {
			return nil, err
		}
		if info.ExitCode != 0 {
			continue // removed meanwhile
		}
		var ctr struct {
			Labels map[string]string `json:"Labels"`
		}
		if err := json.Unmarshal([]byte(info.Stdout), &ctr); err != nil {
			return nil, fmt.Errorf("ctr containers info %s: %w", id, err)
		}
		uid := ctr.Labels[labelPodUID]
		pod := fmt.Sprintf("%s/%s (uid %q)", ctr.Labels["io.skiff.pod.namespace"], ctr.Labels["io.skiff.pod.name"], uid)
		if ns := ctr.Labels[labelNetns]; ctr.Labels[labelKind] == kindSandbox && ns != "" {
			netnsOwner[filepath.Base(ns)] = pod
			if uids[uid] {
				usedNetns[filepath.Base(ns)] = true
			}
		}
		if !uids[uid] {
			left = append(left, fmt.Sprintf("%s: containerd container %s of pod %s not bound here", node, id, pod))
		}
	}
	// Every pod network namespace is its sandbox's, of a pod bound here.
	nss, err := os.ReadDir(filepath.Join(c.NodeDir(i), podNetnsDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, ns := range nss {
		if usedNetns[ns.Name()] {
			continue
		}
		owner := netnsOwner[ns.Name()]
		if owner == "" {
			owner = "no sandbox record names it"
		} else {
			owner = "of pod " + owner + ", not bound here"
		}
		left = append(left, fmt.Sprintf("%s: pod network namespace %s (%s; %d namespaces for %d pods)", node, ns.Name(), owner, len(nss), onNode))
	}
	// host-local leases: only the IPs of pods bound here.
	leases, err := os.ReadDir(filepath.Join(c.NodeDir(i), ipLeaseDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, l := range leases {
		if net.ParseIP(l.Name()) != nil && !ips[l.Name()] {
			left = append(left, fmt.Sprintf("%s: IP %s still leased by host-local without a pod", node, l.Name()))
		}
	}
	// Service endpoint rules point only at live pods.
	rules, err := c.InNode(ctx, i, "iptables-save", "-t", "nat")
	if err != nil {
		return nil, err
	}
	for _, m := range regexp.MustCompile(sepDNATPattern).FindAllStringSubmatch(rules.Stdout, -1) {
		if !anyIPs[m[2]] {
			left = append(left, fmt.Sprintf("%s: iptables %s sends to %s, no pod's IP", node, m[1], m[2]))
		}
	}
	return left, nil
}

// nodesClean waits until no node holds anything for pods that are gone.
func nodesClean(t *testing.T, ctx context.Context, c *harness.Cluster, timeout time.Duration) {
	t.Helper()
	eventually(t, ctx, timeout, "nodes hold nothing of deleted pods", func(ctx context.Context) error {
		var left []string
		for i := 1; i <= c.Config.Nodes; i++ {
			l, err := nodeLeftovers(ctx, c, i)
			if err != nil {
				return err
			}
			left = append(left, l...)
		}
		if len(left) > 0 {
			return errors.New(strings.Join(left, "\n"))
		}
		return nil
	})
}

// nodeStatus is a node's STATUS column in `get nodes`.
func nodeStatus(ctx context.Context, c *harness.Cluster, node string) (string, error) {
	tab, err := c.Get(ctx, "nodes")
	if err != nil {
		return "", err
	}
	row, ok := tab.Row("NAME", node)
	if !ok {
		return "", fmt.Errorf("node %s not listed: %v", node, tab.Rows)
	}
	return row["STATUS"], nil
}

// nodeCut is one way a node is cut off from the cluster, and undone.
type nodeCut struct {
	name string
	// cut isolates node i; restore ends that.
	cut, restore func(ctx context.Context, c *harness.Cluster, i int) error
}

// nodeCuts are the two ways a node is lost: its kubelet stops (a crashed
// agent), or its link goes down (a pulled cable: every process runs on,
// unreachable).
func nodeCuts() []nodeCut {
	return []nodeCut{
		{
			name: "kubelet-stopped",
			cut: func(ctx context.Context, c *harness.Cluster, i int) error {
				return c.Kill(ctx, c.Config.NodeName(i)+"/kubelet")
			},
			restore: func(ctx context.Context, c *harness.Cluster, i int) error {
				return c.Restart(ctx, c.Config.NodeName(i)+"/kubelet")
			},
		},
		{
			name: "link-down",
			cut: func(ctx context.Context, c *harness.Cluster, i int) error {
				return c.SetNodeLink(ctx, i, false)
			},
			restore: func(ctx context.Context, c *harness.Cluster, i int) error {
				return c.SetNodeLink(ctx, i, true)
			},
		},
	}
}

// TestNodeLostPodsReplaced cuts a node off, by stopping its kubelet or by
// taking its link down: the node turns NotReady, its pods are replaced on
// the other node, and once the node is back it is Ready, the old pods are
// gone from the API and from the node (no containers, namespaces, IPs or
// rules of them left), and exactly the desired pods run. The
// controller-manager runs with short node timeouts for this test (a test
// config, as the issue asks): localcluster has no way to pass extra
// flags, so the test restarts it with its recorded flags plus these.
func TestNodeLostPodsReplaced(t *testing.T) {
	defer recoverPanic(t)
	c, ctx := setup(t)
	const cm = "controller-manager"
	orig := c.Args(cm)
	short := append(slices.Clone(orig), "--node-monitor-grace-period", "10s", "--pod-eviction-timeout", "10s")
	if err := c.RestartWith(ctx, cm, short); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.RestartWith(context.Background(), cm, orig); err != nil {
			t.Errorf("restore the controller-manager's flags: %v", err)
		}
	})
	for _, cut := range nodeCuts() {
		t.Run(cut.name, func(t *testing.T) {
			defer recoverPanic(t)
			// The node the case before cut off may still be tainted.
			if err := settled(ctx, c); err != nil {
				t.Fatal(err)
			}
			nodeLostPodsReplaced(t, ctx, c, cut)
		})
	}
}

func nodeLostPodsReplaced(t *testing.T, ctx context.Context, c *harness.Cluster, cut nodeCut) {
	name := "e2e-nodeloss-" + cut.name
	t.Cleanup(func() { deleteQuietly(t, c, "deployment", name) })
	ctl(t, ctx, c, "create", "deployment", name, "--image", "nginx", "-r", "3")
	deploymentReady(t, ctx, c, name, 3, rolloutTimeout)
	before := runningPods(t, ctx, c, name, 3, rolloutTimeout)

	// Cut off a node that runs some of the pods.
	lost := before[0].Node
	lostIdx := c.NodeIndex(lost)
	survivor := c.Config.NodeName(lostIdx%c.Config.Nodes + 1)
	var onLost []podRow
	for _, p := range before {
		if p.Node == lost {
			onLost = append(onLost, p)
		}
	}
	if err := cut.cut(ctx, c, lostIdx); err != nil {
		t.Fatal(err)
	}
	restored := false
	t.Cleanup(func() {
		if !restored {
			if err := cut.restore(context.Background(), c, lostIdx); err != nil {
				t.Errorf("undo %s of %s: %v", cut.name, lost, err)
			}
		}
	})
	eventually(t, ctx, 90*time.Second, lost+" NotReady", func(ctx context.Context) error {
		st, err := nodeStatus(ctx, c, lost)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(st, "NotReady") {
			return fmt.Errorf("%s is %s", lost, st)
		}
		return nil
	})
	eventually(t, ctx, recoverTimeout, "3 pods Running on "+survivor, func(ctx context.Context) error {
		ps, err := pods(ctx, c, name)
		if err != nil {
			return err
		}
		var running []podRow
		for _, p := range ps {
			if p.Node == survivor && p.Status == "Running" && p.Ready == "1/1" {
				running = append(running, p)
			}
		}
		if len(running) != 3 {
			return fmt.Errorf("%d Running on %s: %v", len(running), survivor, ps)
		}
		return nil
	})
	// Evicted from the API, the cut-off node's pods still run there
	// (nothing stops them while its kubelet is dead or cannot hear of the
	// eviction): orphans its kubelet must remove once the node is back.
	for _, p := range onLost {
		if err := fetchOK(ctx, c, lostIdx, "http://"+p.IP+"/"); err != nil {
			t.Errorf("evicted pod %s stopped serving on %s before the node was back: %v", p.Name, lost, err)
		}
	}

	if err := cut.restore(ctx, c, lostIdx); err != nil {
		t.Fatal(err)
	}
	restored = true
	eventually(t, ctx, recoverTimeout, lost+" Ready again", func(ctx context.Context) error {
		st, err := nodeStatus(ctx, c, lost)
		if err != nil {
			return err
		}
		if st != "Ready" {
			return fmt.Errorf("%s is %s", lost, st)
		}
		return nil
	})
	after := runningPods(t, ctx, c, name, 3, recoverTimeout)
	for _, p := range after {
		if p.Node != survivor {
			t.Errorf("pod %s on %s, want every replacement on %s", p.Name, p.Node, survivor)
		}
		eventually(t, ctx, convergeTimeout, "nginx served by replacement "+p.Name, func(ctx context.Context) error {
			return fetchOK(ctx, c, 1, "http://"+p.IP+"/")
		})
	}
	deploymentReady(t, ctx, c, name, 3, convergeTimeout)
	checkOneReplicaSet(t, ctx, c, name, 3)
	nodesClean(t, ctx, c, recoverTimeout)
}

// TestPodForceDeletedWhileKubeletDownIsCleanedUp force-deletes a pod while
// its node's kubelet is dead: the pod's containers, network namespace and
// IP are then orphans on the node (and the leftovers check must see them),
// until the kubelet comes back and removes them.
func TestPodForceDeletedWhileKubeletDownIsCleanedUp(t *testing.T) {
	defer recoverPanic(t)
	c, ctx := setup(t)
	const name = "e2e-orphan"
	t.Cleanup(func() { deleteQuietly(t, c, "deployment", name) })
	ctl(t, ctx, c, "create", "deployment", name, "--image", "nginx", "-r", "2")
	victim := runningPods(t, ctx, c, name, 2, rolloutTimeout)[0]
	all, err := list(ctx, c, "pods")
	if err != nil {
		t.Fatal(err)
	}
	var uid string
	for _, p := range all {
		if p.Metadata.Name == victim.Name {
			uid = p.Metadata.UID
		}
	}
	if uid == "" {
		t.Fatalf("pod %s has no uid in get pods -o json", victim.Name)
	}
	node := c.NodeIndex(victim.Node)
	kubelet := victim.Node + "/kubelet"
	if err := c.Kill(ctx, kubelet); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			if err := c.Restart(context.Background(), kubelet); err != nil {
				t.Errorf("restart %s: %v", kubelet, err)
			}
		}
	})
	// The replacement may be bound to the same node and wait for its
	// kubelet: only the orphan is checked before the restart.
	ctl(t, ctx, c, "delete", "pod", victim.Name, "--force", "--grace-period", "0")

	left, err := nodeLeftovers(ctx, c, node)
	if err != nil {
		t.Fatal(err)
	}
	var sawContainer, sawIP bool
	for _, l := range left {
		sawContainer = sawContainer || strings.Contains(l, "containerd container") && strings.Contains(l, uid)
		sawIP = sawIP || strings.Contains(l, "IP "+victim.IP+" ")
	}
	if !sawContainer || !sawIP {
		t.Fatalf("the leftovers check misses the orphaned pod %s (uid %s, IP %s) on %s: %v", victim.Name, uid, victim.IP, victim.Node, left)
	}
	if err := fetchOK(ctx, c, node, "http://"+victim.IP+"/"); err != nil {
		t.Errorf("the orphaned pod stopped serving although nothing runs to stop it (its kubelet is down): %v", err)
	}

	if err := c.Restart(ctx, kubelet); err != nil {
		t.Fatal(err)
	}
	restarted = true
	nodesClean(t, ctx, c, recoverTimeout)
	runningPods(t, ctx, c, name, 2, convergeTimeout)
}
