package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiff-dev/skiff/controller-manager/app"
	"github.com/skiff-dev/skiff/controller-manager/controllerutil"
	"github.com/skiff-dev/skiff/controller-manager/nodelifecycle"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/hollownode"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/internal/testcluster"
	"github.com/skiff-dev/skiff/proto/api"
)

func testLogger() *slog.Logger {
	if os.Getenv("SKIFF_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// eventLog records events in memory.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (e *eventLog) Eventf(obj kinds.Object, eventType, reason, format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, fmt.Sprintf("%s %s %s: %s", kinds.Key(obj), eventType, reason, fmt.Sprintf(format, args...)))
}

func (e *eventLog) has(reason string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.events {
		if strings.Contains(ev, " "+reason+":") {
			return true
		}
	}
	return false
}

// testConfig is app.Defaults with timeouts short enough for tests.
func testConfig() app.Config {
	cfg := app.Defaults()
	cfg.LeaderElect = false
	cfg.NodeMonitorPeriod = 200 * time.Millisecond
	cfg.NodeMonitorGracePeriod = 2 * time.Second
	cfg.PodEvictionTimeout = 2 * time.Second
	// ExpectationsTimeout stays at its 5m default: a test that passes must
	// not lean on expectations expiring.
	cfg.ConcurrentGCSyncs = 5
	return cfg
}

type manager struct {
	*app.Manager
	events *eventLog
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// stop ends the manager as a crash would end its work (the lease, if any,
// is released by leader election on the way out).
func (m *manager) stop() error {
	m.cancel()
	<-m.done
	return m.err
}

func startManager(t *testing.T, c *client.Client, cfg app.Config) *manager {
	t.Helper()
	events := &eventLog{}
	m, err := app.New(cfg, c, events, prometheus.NewRegistry(), testLogger().With("identity", cfg.Identity))
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	mm := &manager{Manager: m, events: events, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(mm.done)
		mm.err = m.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-mm.done:
		case <-time.After(20 * time.Second):
			t.Errorf("controller-manager %s did not stop in 20s", cfg.Identity)
		}
	})
	return mm
}

// env is an apiserver, a controller-manager, hollow nodes and a binder.
type env struct {
	t       *testing.T
	cluster *testcluster.Cluster
	c       *client.Client
	mgr     *manager
	nodes   []*hollownode.Node
	fleet   *hollownode.Fleet
}

func newEnv(t *testing.T, nodes int) *env {
	t.Helper()
	cl := testcluster.Start(t)
	e := &env{t: t, cluster: cl, c: cl.Client}
	ctx, cancel := context.WithCancel(context.Background())
	e.fleet = hollownode.NewFleet(ctx, cl.Client, hollownode.FleetOptions{HeartbeatInterval: 300 * time.Millisecond})
	t.Cleanup(func() {
		cancel()
		e.fleet.Close()
	})
	for i := range nodes {
		n, err := hollownode.Start(context.Background(), cl.Client, fmt.Sprintf("node-%d", i), hollownode.Options{Fleet: e.fleet})
		if err != nil {
			t.Fatalf("hollow node: %v", err)
		}
		e.nodes = append(e.nodes, n)
	}
	startBinder(t, cl.Client)
	return e
}

func (e *env) startManager(cfg app.Config) *manager {
	e.mgr = startManager(e.t, e.c, cfg)
	return e.mgr
}

// startBinder binds pending pods round robin to schedulable nodes: Ready,
// not tainted NoExecute. It stands in for the scheduler.
func startBinder(t *testing.T, c *client.Client) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
	})
	go func() {
		defer close(done)
		next := 0
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			pods, _, err := c.Pods().List(ctx, "", client.ListOptions{FieldSelector: "spec.nodeName="})
			if err != nil || len(pods) == 0 {
				continue
			}
			nodes, _, err := c.Nodes().List(ctx, "", client.ListOptions{})
			if err != nil {
				continue
			}
			var ready []string
			for _, n := range nodes {
				if schedulable(n) {
					ready = append(ready, n.GetMetadata().GetName())
				}
			}
			sort.Strings(ready)
			if len(ready) == 0 {
				continue
			}
			for _, p := range pods {
				if p.GetMetadata().GetDeletionTimestamp() != nil {
					continue
				}
				node := ready[next%len(ready)]
				next++
				_, _ = c.Bind(ctx, p.GetMetadata().GetNamespace(), p.GetMetadata().GetName(), p.GetMetadata().GetUid(), node)
			}
		}
	}()
}

func schedulable(n *api.Node) bool {
	ready := controllerutil.Condition(n.GetStatus().GetConditions(), "Ready")
	if ready == nil || ready.GetStatus() != "True" {
		return false
	}
	for _, t := range n.GetSpec().GetTaints() {
		if t.GetKey() == nodelifecycle.TaintUnreachable || t.GetKey() == nodelifecycle.TaintNotReady {
			return false
		}
	}
	return true
}

// eventually polls cond until it returns nil or the timeout passes.
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

func ptr[T any](v T) *T { return &v }

func newDeployment(name string, replicas int32, image string) *api.Deployment {
	lbl := map[string]string{"app": name}
	return &api.Deployment{
		Metadata: &api.ObjectMeta{Name: name, Namespace: "default"},
		Spec: &api.DeploymentSpec{
			Replicas: ptr(replicas),
			Selector: &api.LabelSelector{MatchLabels: lbl},
			Template: &api.PodTemplateSpec{
				Metadata: &api.ObjectMeta{Labels: lbl},
				Spec:     &api.PodSpec{Containers: []*api.Container{{Name: name, Image: image}}},
			},
		},
	}
}

func (e *env) listPods(sel map[string]string) []*api.Pod {
	e.t.Helper()
	pods, _, err := e.c.Pods().List(context.Background(), "default", client.ListOptions{LabelSelector: labels.SelectorFromSet(sel).String()})
	if err != nil {
		e.t.Fatalf("list pods: %v", err)
	}
	return pods
}

func (e *env) listReplicaSets(sel map[string]string) []*api.ReplicaSet {
	e.t.Helper()
	rss, _, err := e.c.ReplicaSets().List(context.Background(), "default", client.ListOptions{LabelSelector: labels.SelectorFromSet(sel).String()})
	if err != nil {
		e.t.Fatalf("list replicasets: %v", err)
	}
	return rss
}

func runningReady(pods []*api.Pod) int {
	n := 0
	for _, p := range pods {
		if p.GetMetadata().GetDeletionTimestamp() == nil && p.GetStatus().GetPhase() == "Running" && controllerutil.IsPodReady(p) {
			n++
		}
	}
	return n
}

// waitDeploymentComplete waits for status to show every replica updated,
// ready and available at the current generation.
func (e *env) waitDeploymentComplete(name string, replicas int32, timeout time.Duration) *api.Deployment {
	e.t.Helper()
	var d *api.Deployment
	eventually(e.t, timeout, "deployment "+name+" complete", func() error {
		var err error
		d, err = e.c.Deployments().Get(context.Background(), "default", name)
		if err != nil {
			return err
		}
		st := d.GetStatus()
		if st.GetObservedGeneration() < d.GetMetadata().GetGeneration() || st.GetReplicas() != replicas ||
			st.GetUpdatedReplicas() != replicas || st.GetReadyReplicas() != replicas || st.GetAvailableReplicas() != replicas {
			return fmt.Errorf("status %v (generation %d)", st, d.GetMetadata().GetGeneration())
		}
		if n := runningReady(e.listPods(map[string]string{"app": name})); n != int(replicas) {
			return fmt.Errorf("%d running ready pods, want %d", n, replicas)
		}
		return nil
	})
	return d
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

func testclusterStart(t *testing.T) *testcluster.Cluster { return testcluster.Start(t) }
