package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/e2e/harness"
)

// The external-etcd cluster: a second local cluster, up only during its
// test, with its own name, subnet, pod network, API port and work dir so
// it runs beside the suite's cluster. It reuses the suite's binaries and
// images; one node is enough for a rollout, and cheaper on 2 cores.
const (
	etcdClusterName   = "e2eetcd"
	etcdClusterSubnet = "10.252.0.0/24"
	etcdClusterCIDR   = "10.245.0.0/16"
	etcdClusterPort   = 6544
	etcdWorkDir       = "/tmp/skiff-e2e-etcd"
)

// startExternalEtcdCluster brings up a one-node cluster whose apiserver
// stores in a 3-member external etcd cluster, watched like the suite's
// (dump on failure) and removed, with a leftovers check, when t ends.
func startExternalEtcdCluster(t *testing.T, ctx context.Context, suite *harness.Cluster) *harness.Cluster {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c, err := harness.Start(ctx, harness.Options{
		RepoRoot: root, WorkDir: etcdWorkDir,
		Name: etcdClusterName, Subnet: etcdClusterSubnet, ClusterCIDR: etcdClusterCIDR,
		APIServerPort: etcdClusterPort, Nodes: 1, EtcdMembers: 3,
		BinDir: suite.Config.BinDir, ImageDir: suite.Config.ImageDir,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if c != nil {
		t.Cleanup(func() {
			for _, p := range removeCluster(c, etcdWorkDir) {
				t.Error(p)
			}
		})
		watchCluster(t, c)
	}
	if err != nil {
		t.Fatalf("start the external-etcd cluster: %v", err)
	}
	t.Logf("cluster %s on etcd %v up in %v", etcdClusterName, c.Etcd.Endpoints(), time.Since(start).Round(100*time.Millisecond))
	return c
}

// replicaSet is what the test reads of a ReplicaSet.
type replicaSet struct {
	Metadata struct {
		Name        string            `json:"name"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		Replicas int `json:"replicas"`
	} `json:"spec"`
	Status struct {
		Replicas      int `json:"replicas"`
		ReadyReplicas int `json:"readyReplicas"`
	} `json:"status"`
}

// replicaSets lists the replicasets of deployment app (label app=APP).
func replicaSets(ctx context.Context, c *harness.Cluster, app string) ([]replicaSet, error) {
	out, err := c.CtlOK(ctx, "get", "replicasets", "-l", "app="+app, "-o", "json")
	if err != nil {
		return nil, err
	}
	var doc struct {
		Items []replicaSet `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return nil, fmt.Errorf("get replicasets -o json: %w: %s", err, out)
	}
	return doc.Items, nil
}

// rolloutDeployment is a deployment whose rollouts take long enough to be
// interrupted: a new pod counts as available only after minReadySeconds,
// and with maxUnavailable 0 the old pods go one at a time after that.
const rolloutDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
spec:
  replicas: 3
  minReadySeconds: 4
  selector:
    matchLabels:
      app: %[1]s
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app: %[1]s
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: nginx
        image: nginx
`

// TestRolloutSurvivesEtcdMemberKilled runs a cluster on an external
// 3-member etcd cluster, starts a rollout of a 3-replica deployment, and
// kills the etcd leader with SIGKILL while both replicasets have pods.
// The two members left elect a leader; the apiserver's reads, writes and
// watches move to them, so the rollout completes (the new replicaset 3
// ready, the old one 0), the API keeps taking writes, and exactly 3 pods
// remain, every one of the new template.
func TestRolloutSurvivesEtcdMemberKilled(t *testing.T) {
	defer recoverPanic(t)
	suite, ctx := setup(t)
	c := startExternalEtcdCluster(t, ctx, suite)
	const name = "e2e-etcd-rollout"
	manifest := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(manifest, fmt.Appendf(nil, rolloutDeployment, name), 0o644); err != nil {
		t.Fatal(err)
	}
	ctl(t, ctx, c, "apply", "-f", manifest)
	deploymentReady(t, ctx, c, name, 3, rolloutTimeout)
	oldRS := checkOneReplicaSet(t, ctx, c, name, 3)

	ctl(t, ctx, c, "rollout", "restart", "deployment/"+name)
	// Mid-rollout: the new replicaset has a pod and the old one still
	// has its 3. Polled often: the window lasts about minReadySeconds.
	var newRS string
	err := harness.Eventually(ctx, rolloutTimeout, 200*time.Millisecond, "rollout under way", func(ctx context.Context) error {
		rss, err := replicaSets(ctx, c, name)
		if err != nil {
			return err
		}
		var oldReplicas, newReplicas int
		for _, rs := range rss {
			if rs.Metadata.Name == oldRS {
				oldReplicas = rs.Status.Replicas
			} else {
				newRS, newReplicas = rs.Metadata.Name, rs.Status.Replicas
			}
		}
		if newReplicas < 1 || oldReplicas < 1 {
			return fmt.Errorf("new replicaset %q has %d pods, old %s %d", newRS, newReplicas, oldRS, oldReplicas)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	leader, err := c.Etcd.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed etcd leader %s (pid %d) mid-rollout, new replicaset %s", leader.Name, leader.Pid(), newRS)
	next, err := c.Etcd.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("etcd %s leads now", next.Name)

	// Writes and reads keep working: a new object, read back.
	cm := filepath.Join(t.TempDir(), "cm.yaml")
	if err := os.WriteFile(cm, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: e2e-etcd-write\ndata:\n  written: after-the-kill\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, time.Minute, "a write and its read with an etcd member dead", func(ctx context.Context) error {
		if _, err := c.CtlOK(ctx, "apply", "-f", cm); err != nil {
			return err
		}
		out, err := c.CtlOK(ctx, "get", "configmap", "e2e-etcd-write", "-o", "json")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "after-the-kill") {
			return fmt.Errorf("configmap read back without its data: %s", out)
		}
		return nil
	})

	// The rollout completes: the new replicaset runs 3 ready pods, the
	// old one none.
	eventually(t, ctx, rolloutTimeout, "rollout complete", func(ctx context.Context) error {
		rss, err := replicaSets(ctx, c, name)
		if err != nil {
			return err
		}
		for _, rs := range rss {
			want := 0
			if rs.Metadata.Name == newRS {
				want = 3
			}
			if rs.Spec.Replicas != want || rs.Status.Replicas != want || rs.Status.ReadyReplicas != want {
				return fmt.Errorf("replicaset %s: desired %d current %d ready %d, want %d", rs.Metadata.Name, rs.Spec.Replicas, rs.Status.Replicas, rs.Status.ReadyReplicas, want)
			}
		}
		if !slices.ContainsFunc(rss, func(rs replicaSet) bool { return rs.Metadata.Name == newRS }) {
			return fmt.Errorf("replicaset %s is gone: %v", newRS, rss)
		}
		return nil
	})
	deploymentReady(t, ctx, c, name, 3, rolloutTimeout)
	// No duplicates: exactly 3 pods, all of the new template.
	running := runningPods(t, ctx, c, name, 3, convergeTimeout)
	all, err := list(ctx, c, "pods", "-l", "app="+name)
	if err != nil {
		t.Fatal(err)
	}
	hash := strings.TrimPrefix(newRS, name+"-")
	for _, p := range all {
		if h := p.Metadata.Labels["pod-template-hash"]; h != hash {
			t.Errorf("pod %s has pod-template-hash %q, want the new replicaset's %q", p.Metadata.Name, h, hash)
		}
	}
	if len(all) != len(running) {
		t.Errorf("%d pods listed, %d running: %v", len(all), len(running), running)
	}

	// The killed member comes back and the cluster has all three again.
	if err := leader.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Etcd.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	ctl(t, ctx, c, "delete", "deployment", name)
	eventually(t, ctx, convergeTimeout, "deleted deployment leaves no pod", func(ctx context.Context) error {
		ps, err := pods(ctx, c, name)
		if err != nil {
			return err
		}
		if len(ps) > 0 {
			return fmt.Errorf("pods left: %v", ps)
		}
		return nil
	})
	nodesClean(t, ctx, c, convergeTimeout)
}
