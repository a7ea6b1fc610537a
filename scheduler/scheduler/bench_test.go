package scheduler

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/testcluster"
	"github.com/skiff-dev/skiff/proto/api"
	st "github.com/skiff-dev/skiff/scheduler/schedtest"
)

const (
	benchNodes      = 1000
	benchPods       = 10000
	benchOwners     = 100
	benchCreateJobs = 64
)

// BenchmarkSchedule10kPods1kNodes creates 1,000 Nodes and then 10,000 pods
// (64 concurrent creators) through the in-process apiserver and measures
// from the first create to the last pod seen bound by a watch: pods/s, the
// per-pod latency from its create call to its binding (p50, p99), the
// create rate alone, and how long binding trailed the last create.
func BenchmarkSchedule10kPods1kNodes(b *testing.B) {
	for i := 0; i < b.N; i++ {
		runScheduleBenchmark(b, benchNodes, benchPods)
	}
}

func runScheduleBenchmark(b *testing.B, numNodes, numPods int) {
	b.StopTimer()
	tc := testcluster.Start(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var g errgroup.Group
	g.SetLimit(benchCreateJobs)
	for n := 0; n < numNodes; n++ {
		g.Go(func() error {
			st.RegisterNode(b, tc.Client, st.MakeNode(fmt.Sprintf("node-%04d", n)).Allocatable("4", "16Gi", "110").Obj())
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	// The scheduler is its own process in a cluster, and so is whoever
	// watches the pods: each gets its own connection, as the creators
	// share theirs.
	s := startScheduler(b, dial(b, tc.Addr), nil)
	if !s.WaitForCacheSync(ctx) {
		b.Fatal("caches never synced")
	}
	eventually(b, time.Minute, "the scheduler to see every node", func() (bool, string) {
		n := s.cache.NodeCount()
		return n == numNodes, fmt.Sprintf("%d nodes", n)
	})

	_, rv, err := tc.Client.Pods().List(ctx, "default", client.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	watcher := newBindWatcher(numPods)
	watchErr := make(chan error, 1)
	observer := dial(b, tc.Addr)
	go func() { watchErr <- watcher.run(ctx, observer, rv) }()

	created := make([]time.Time, numPods)
	b.StartTimer()
	start := time.Now()
	g = errgroup.Group{}
	g.SetLimit(benchCreateJobs)
	for p := 0; p < numPods; p++ {
		g.Go(func() error {
			pod := st.MakePod(fmt.Sprintf("pod-%05d", p)).Owner(fmt.Sprintf("rs-%03d", p%benchOwners)).Req("100m", "100Mi").Obj()
			pod.Metadata.Uid = ""
			created[p] = time.Now()
			_, err := tc.Client.Pods().Create(ctx, pod)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	createDone := time.Since(start)
	select {
	case <-watcher.done:
	case err := <-watchErr:
		b.Fatalf("watch ended: %v", err)
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d of %d pods bound after 5 minutes", watcher.count(), numPods)
	}
	elapsed := time.Since(start)
	b.StopTimer()

	latencies := make([]time.Duration, 0, numPods)
	watcher.mu.Lock()
	for p := 0; p < numPods; p++ {
		latencies = append(latencies, watcher.bound[fmt.Sprintf("pod-%05d", p)].Sub(created[p]))
	}
	watcher.mu.Unlock()
	slices.Sort(latencies)
	pct := func(q float64) float64 {
		return float64(latencies[int(q*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(numPods)/elapsed.Seconds(), "pods/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(numPods)/createDone.Seconds(), "creates/s")
	// How long binding trailed the last create: near zero when the
	// scheduler keeps up and the create path sets the pace.
	b.ReportMetric(float64((elapsed - createDone).Milliseconds()), "lag-ms")
	b.Logf("%d pods on %d nodes: all bound in %v (creates done in %v); p50 %.0fms p99 %.0fms",
		numPods, numNodes, elapsed.Round(time.Millisecond), createDone.Round(time.Millisecond), pct(0.5), pct(0.99))
}

// dial opens a connection of its own to the apiserver.
func dial(b *testing.B, addr string) *client.Client {
	b.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return client.New(conn)
}

// bindWatcher records when each pod is first seen bound.
type bindWatcher struct {
	want int
	done chan struct{}

	mu    sync.Mutex
	bound map[string]time.Time
}

func newBindWatcher(want int) *bindWatcher {
	return &bindWatcher{want: want, done: make(chan struct{}), bound: map[string]time.Time{}}
}

func (w *bindWatcher) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.bound)
}

func (w *bindWatcher) observe(p *api.Pod) {
	if p.GetSpec().GetNodeName() == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	name := p.GetMetadata().GetName()
	if _, seen := w.bound[name]; seen {
		return
	}
	w.bound[name] = time.Now()
	if len(w.bound) == w.want {
		close(w.done)
	}
}

// run watches pods from rv, re-watching from the last version seen when
// the stream is cut.
func (w *bindWatcher) run(ctx context.Context, c *client.Client, rv string) error {
	for {
		wt, err := c.Pods().Watch(ctx, "default", client.ListOptions{ResourceVersion: rv})
		if err != nil {
			return err
		}
		for {
			ev, err := wt.Next()
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				break // cut off: re-watch from rv
			}
			if ev.ResourceVersion != "" {
				rv = ev.ResourceVersion
			}
			if ev.Type == client.Added || ev.Type == client.Modified {
				w.observe(ev.Object)
			}
		}
	}
}
