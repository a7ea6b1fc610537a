package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	cmapp "github.com/skiff-dev/skiff/controller-manager/app"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/events"
	"github.com/skiff-dev/skiff/internal/hollownode"
	"github.com/skiff-dev/skiff/internal/testcluster"
	"github.com/skiff-dev/skiff/proto/api"
	"github.com/skiff-dev/skiff/scheduler/config"
	"github.com/skiff-dev/skiff/scheduler/framework"
	st "github.com/skiff-dev/skiff/scheduler/schedtest"
)

func testLogger() *slog.Logger {
	if os.Getenv("SKIFF_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startScheduler runs a scheduler, with a real event recorder, against the
// cluster until the test ends.
func startScheduler(t testing.TB, c *client.Client, mutate func(*config.Config)) *Scheduler {
	t.Helper()
	cfg := config.Default()
	if mutate != nil {
		mutate(&cfg)
	}
	rec := events.NewRecorder(c, cfg.SchedulerName, "test-host", events.WithLogger(testLogger()))
	s, err := New(Options{Config: cfg, Client: c, Recorder: rec, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { rec.Run(ctx) })
	wg.Go(func() { s.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return s
}

// podEvents lists the Events about a pod in default with reason.
func podEvents(t testing.TB, c *client.Client, pod, reason string) []*api.Event {
	t.Helper()
	evs, _, err := c.Events().List(context.Background(), "default", client.ListOptions{FieldSelector: "involvedObject.name=" + pod})
	if err != nil {
		t.Fatal(err)
	}
	var out []*api.Event
	for _, e := range evs {
		if e.GetReason() == reason {
			out = append(out, e)
		}
	}
	return out
}

// startHollowNodes registers hollow nodes sharing one fleet.
func startHollowNodes(t testing.TB, c *client.Client, capacity map[string]string, names ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	fleet := hollownode.NewFleet(ctx, c, hollownode.FleetOptions{Logger: testLogger()})
	t.Cleanup(func() {
		cancel()
		fleet.Close()
	})
	for _, name := range names {
		if _, err := hollownode.Start(ctx, c, name, hollownode.Options{Capacity: capacity, Fleet: fleet}); err != nil {
			t.Fatal(err)
		}
	}
}

// eventually polls cond every 50ms until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, last)
}

func listPods(t testing.TB, c *client.Client) []*api.Pod {
	t.Helper()
	pods, _, err := c.Pods().List(context.Background(), "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pods
}

func getPod(t testing.TB, c *client.Client, name string) *api.Pod {
	t.Helper()
	p, err := c.Pods().Get(context.Background(), "default", name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func podScheduledCondition(p *api.Pod) *api.Condition {
	for _, c := range p.GetStatus().GetConditions() {
		if c.GetType() == ConditionPodScheduled {
			return c
		}
	}
	return nil
}

func countByNode(pods []*api.Pod) (map[string]int, int) {
	byNode := map[string]int{}
	pending := 0
	for _, p := range pods {
		if n := p.GetSpec().GetNodeName(); n != "" {
			byNode[n]++
		} else {
			pending++
		}
	}
	return byNode, pending
}

func TestReplicasOfOneOwnerSpreadAcrossNodes(t *testing.T) {
	tc := testcluster.Start(t)
	startHollowNodes(t, tc.Client, nil, "node-a", "node-b", "node-c")
	startScheduler(t, tc.Client, nil)
	for i := 0; i < 9; i++ {
		st.CreatePod(t, tc.Client, st.MakePod(fmt.Sprintf("web-%d", i)).Owner("rs-web").Req("100m", "64Mi").Obj())
	}
	eventually(t, 20*time.Second, "9 replicas bound", func() (bool, string) {
		byNode, pending := countByNode(listPods(t, tc.Client))
		return pending == 0, fmt.Sprintf("placement %v, %d pending", byNode, pending)
	})
	byNode, _ := countByNode(listPods(t, tc.Client))
	for _, n := range []string{"node-a", "node-b", "node-c"} {
		if byNode[n] != 3 {
			t.Errorf("placement %v: want 3 replicas on each node", byNode)
			break
		}
	}
}

func TestPodThatFitsNowhereIsReportedThenScheduledWhenANodeJoins(t *testing.T) {
	tc := testcluster.Start(t)
	small := map[string]string{"cpu": "1", "memory": "4Gi", "pods": "110"}
	startHollowNodes(t, tc.Client, small, "small-1", "small-2")
	st.RegisterNode(t, tc.Client, st.MakeNode("cordoned").Unschedulable().Obj())
	startScheduler(t, tc.Client, nil)

	st.CreatePod(t, tc.Client, st.MakePod("big").Req("2", "1Gi").Obj())
	want := "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu."
	eventually(t, 20*time.Second, "PodScheduled=False on the pod", func() (bool, string) {
		c := podScheduledCondition(getPod(t, tc.Client, "big"))
		return c.GetStatus() == "False" && c.GetReason() == ReasonUnschedulable && c.GetMessage() == want,
			fmt.Sprintf("condition %v", c)
	})
	if p := getPod(t, tc.Client, "big"); p.GetStatus().GetPhase() != "Pending" || p.GetSpec().GetNodeName() != "" {
		t.Fatalf("pod phase %q on %q, want Pending and unbound", p.GetStatus().GetPhase(), p.GetSpec().GetNodeName())
	}
	eventually(t, 10*time.Second, "a FailedScheduling event", func() (bool, string) {
		evs := podEvents(t, tc.Client, "big", ReasonFailedScheduling)
		return len(evs) == 1 && evs[0].GetType() == events.Warning && evs[0].GetMessage() == want &&
			evs[0].GetSource().GetComponent() == config.DefaultSchedulerName, fmt.Sprintf("events %v", evs)
	})

	startHollowNodes(t, tc.Client, map[string]string{"cpu": "4", "memory": "8Gi", "pods": "110"}, "large")
	eventually(t, 20*time.Second, "the pod bound to the new node", func() (bool, string) {
		n := getPod(t, tc.Client, "big").GetSpec().GetNodeName()
		return n == "large", "on " + n
	})
	eventually(t, 10*time.Second, "a Scheduled event", func() (bool, string) {
		evs := podEvents(t, tc.Client, "big", ReasonScheduled)
		return len(evs) == 1 && evs[0].GetType() == events.Normal && evs[0].GetMessage() == "Successfully assigned default/big to large",
			fmt.Sprintf("events %v", evs)
	})
}

func TestPodThatFitsNowhereIsScheduledWhenANodeFreesUp(t *testing.T) {
	tc := testcluster.Start(t)
	startHollowNodes(t, tc.Client, map[string]string{"cpu": "2", "memory": "4Gi", "pods": "110"}, "only")
	startScheduler(t, tc.Client, nil)

	st.CreatePod(t, tc.Client, st.MakePod("filler").Req("1500m", "").Obj())
	eventually(t, 20*time.Second, "filler bound", func() (bool, string) {
		return getPod(t, tc.Client, "filler").GetSpec().GetNodeName() == "only", ""
	})
	st.CreatePod(t, tc.Client, st.MakePod("waiting").Req("1", "").Obj())
	eventually(t, 20*time.Second, "waiting reported unschedulable", func() (bool, string) {
		c := podScheduledCondition(getPod(t, tc.Client, "waiting"))
		return c.GetMessage() == "0/1 nodes are available: 1 Insufficient cpu.", fmt.Sprintf("condition %v", c)
	})
	grace := int64(0)
	if _, err := tc.Client.Pods().Delete(context.Background(), "default", "filler", client.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "waiting bound once the filler left", func() (bool, string) {
		n := getPod(t, tc.Client, "waiting").GetSpec().GetNodeName()
		return n == "only", "on " + n
	})
}

func TestCordonedAndNotReadyNodesGetNothing(t *testing.T) {
	tc := testcluster.Start(t)
	startHollowNodes(t, tc.Client, nil, "healthy")
	st.RegisterNode(t, tc.Client, st.MakeNode("cordoned").Unschedulable().Obj())
	st.RegisterNode(t, tc.Client, st.MakeNode("not-ready").Ready("False").Obj())
	st.RegisterNode(t, tc.Client, st.MakeNode("unknown").Ready("Unknown").Obj())
	startScheduler(t, tc.Client, nil)
	for i := 0; i < 12; i++ {
		st.CreatePod(t, tc.Client, st.MakePod(fmt.Sprintf("p-%d", i)).Owner("rs").Obj())
	}
	eventually(t, 20*time.Second, "all pods bound", func() (bool, string) {
		byNode, pending := countByNode(listPods(t, tc.Client))
		return pending == 0, fmt.Sprintf("placement %v, %d pending", byNode, pending)
	})
	byNode, _ := countByNode(listPods(t, tc.Client))
	if byNode["healthy"] != 12 {
		t.Errorf("placement %v: everything belongs on the healthy node", byNode)
	}
}

func TestNoNodeOvercommittedWhen500PodsArriveAtOnce(t *testing.T) {
	tc := testcluster.Start(t)
	var names []string
	for i := 0; i < 10; i++ {
		names = append(names, fmt.Sprintf("node-%02d", i))
	}
	// 10 nodes x 4 cpu fit 400 pods of 100m: 100 must stay Pending.
	startHollowNodes(t, tc.Client, map[string]string{"cpu": "4", "memory": "64Gi", "pods": "110"}, names...)
	startScheduler(t, tc.Client, nil)

	var g errgroup.Group
	g.SetLimit(16)
	for i := 0; i < 500; i++ {
		g.Go(func() error {
			pod := st.MakePod(fmt.Sprintf("burst-%03d", i)).Owner(fmt.Sprintf("rs-%d", i%5)).Req("100m", "128Mi").Obj()
			pod.Metadata.Uid = ""
			_, err := tc.Client.Pods().Create(context.Background(), pod)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "400 bound and 100 reported unschedulable", func() (bool, string) {
		pods := listPods(t, tc.Client)
		byNode, pending := countByNode(pods)
		unsched := 0
		for _, p := range pods {
			if c := podScheduledCondition(p); p.GetSpec().GetNodeName() == "" && c.GetReason() == ReasonUnschedulable {
				unsched++
			}
		}
		bound := 500 - pending
		return bound == 400 && unsched == 100, fmt.Sprintf("%d bound %v, %d pending, %d with the condition", bound, byNode, pending, unsched)
	})
	requested := map[string]int64{}
	for _, p := range listPods(t, tc.Client) {
		if n := p.GetSpec().GetNodeName(); n != "" {
			pi, err := framework.NewPodInfo(p)
			if err != nil {
				t.Fatal(err)
			}
			requested[n] += pi.Requests.MilliCPU
		}
	}
	for n, r := range requested {
		if r > 4000 {
			t.Errorf("node %s over-committed: %dm cpu requested of 4000m", n, r)
		}
	}
	p := listPods(t, tc.Client)
	for _, pod := range p {
		if pod.GetSpec().GetNodeName() == "" {
			if msg := podScheduledCondition(pod).GetMessage(); !strings.HasPrefix(msg, "0/10 nodes are available: 10 Insufficient cpu.") {
				t.Errorf("pending pod %s says %q", pod.Metadata.Name, msg)
			}
			break
		}
	}
}

func TestRunLeavesNoGoroutineBehind(t *testing.T) {
	tc := testcluster.Start(t)
	st.RegisterNode(t, tc.Client, st.MakeNode("n1").Obj())
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()

	cfg := config.Default()
	rec := events.NewRecorder(tc.Client, cfg.SchedulerName, "test-host")
	s, err := New(Options{Config: cfg, Client: tc.Client, Recorder: rec, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { rec.Run(ctx) })
	wg.Go(func() { s.Run(ctx) })
	st.CreatePod(t, tc.Client, st.MakePod("fits").Obj())
	st.CreatePod(t, tc.Client, st.MakePod("too-big").Req("100", "").Obj())
	eventually(t, 20*time.Second, "one bound, one reported", func() (bool, string) {
		fits := getPod(t, tc.Client, "fits").GetSpec().GetNodeName()
		c := podScheduledCondition(getPod(t, tc.Client, "too-big"))
		return fits == "n1" && c.GetReason() == ReasonUnschedulable, fmt.Sprintf("fits on %q, too-big %v", fits, c)
	})
	cancel()
	wg.Wait()

	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before the scheduler, %d after it stopped:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

func TestReplicasOfOneDeploymentSpreadAcrossNodes(t *testing.T) {
	tc := testcluster.Start(t)
	startHollowNodes(t, tc.Client, nil, "node-a", "node-b", "node-c")
	startControllerManager(t, tc.Client)
	startScheduler(t, tc.Client, nil)

	replicas := int32(6)
	labels := map[string]string{"app": "web"}
	template := st.MakePod("").Req("100m", "64Mi").Labels(labels).Obj()
	if _, err := tc.Client.Deployments().Create(context.Background(), &api.Deployment{
		Metadata: &api.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: &api.DeploymentSpec{
			Replicas: &replicas,
			Selector: &api.LabelSelector{MatchLabels: labels},
			Template: &api.PodTemplateSpec{Metadata: &api.ObjectMeta{Labels: labels}, Spec: template.Spec},
		},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "6 replicas bound", func() (bool, string) {
		pods := listPods(t, tc.Client)
		byNode, pending := countByNode(pods)
		return len(pods) == 6 && pending == 0, fmt.Sprintf("%d pods, placement %v, %d pending", len(pods), byNode, pending)
	})
	byNode, _ := countByNode(listPods(t, tc.Client))
	for _, n := range []string{"node-a", "node-b", "node-c"} {
		if byNode[n] != 2 {
			t.Fatalf("placement %v: want 2 replicas on each node", byNode)
		}
	}
}

// startControllerManager runs the controllers in-process, without leader
// election, until the test ends.
func startControllerManager(t *testing.T, c *client.Client) {
	t.Helper()
	cfg := cmapp.Defaults()
	cfg.LeaderElect = false
	m, err := cmapp.New(cfg, c, &events.FakeRecorder{}, nil, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("controller-manager: %v", err)
		}
	})
}

func TestSchedulingResumesAfterAnApiserverRestart(t *testing.T) {
	tc := testcluster.Start(t)
	st.RegisterNode(t, tc.Client, st.MakeNode("n1").Allocatable("4", "8Gi", "110").Obj())
	startScheduler(t, tc.Client, nil)
	st.CreatePod(t, tc.Client, st.MakePod("before").Req("1", "").Obj())
	eventually(t, 20*time.Second, "before bound", func() (bool, string) {
		return getPod(t, tc.Client, "before").GetSpec().GetNodeName() == "n1", ""
	})

	tc.Restart(t)
	for i := 0; i < 3; i++ {
		st.CreatePod(t, tc.Client, st.MakePod(fmt.Sprintf("after-%d", i)).Req("1", "").Obj())
	}
	// n1 fits four 1-cpu pods: all three new ones, and only if the
	// re-listed cache still counts the first.
	st.CreatePod(t, tc.Client, st.MakePod("one-too-many").Req("1", "").Obj())
	eventually(t, 60*time.Second, "three more bound and one reported", func() (bool, string) {
		byNode, pending := countByNode(listPods(t, tc.Client))
		c := podScheduledCondition(getPod(t, tc.Client, "one-too-many"))
		return byNode["n1"] == 4 && pending == 1 && c.GetMessage() == "0/1 nodes are available: 1 Insufficient cpu.",
			fmt.Sprintf("placement %v, %d pending, condition %v", byNode, pending, c)
	})
	time.Sleep(500 * time.Millisecond)
	if byNode, _ := countByNode(listPods(t, tc.Client)); byNode["n1"] != 4 {
		t.Fatalf("placement %v: n1 over-committed after the restart", byNode)
	}
}
