package scheduler

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/events"
	"github.com/skiff-dev/skiff/scheduler/config"
	st "github.com/skiff-dev/skiff/scheduler/schedtest"
)

// countingBinder accepts every binding at once.
type countingBinder struct{ n atomic.Int64 }

func (b *countingBinder) Bind(context.Context, string, string, string, string) error {
	b.n.Add(1)
	return nil
}

// BenchmarkSchedulingCycle1kNodes measures the scheduler alone: 10,000
// pods through queue pop, snapshot, filter and score over 1,000 nodes,
// assume, and a binding that returns at once. It is the ceiling the
// apiserver-bound BenchmarkSchedule10kPods1kNodes cannot exceed.
func BenchmarkSchedulingCycle1kNodes(b *testing.B) {
	const numNodes, numPods = 1000, 10000
	// A client that is never called: the caches are fed by hand.
	conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		binder := &countingBinder{}
		s, err := New(Options{Config: cycleConfig(), Client: client.New(conn), Recorder: &events.FakeRecorder{}, Binder: binder, Logger: testLogger()})
		if err != nil {
			b.Fatal(err)
		}
		for n := 0; n < numNodes; n++ {
			s.onNodeAdd(st.MakeNode(fmt.Sprintf("node-%04d", n)).Allocatable("4", "16Gi", "110").Obj())
		}
		for p := 0; p < numPods; p++ {
			s.onPodAdd(st.MakePod(fmt.Sprintf("pod-%05d", p)).Owner(fmt.Sprintf("rs-%03d", p%100)).Req("100m", "100Mi").Obj())
		}
		ctx := context.Background()
		b.StartTimer()
		start := time.Now()
		for p := 0; p < numPods; p++ {
			s.scheduleOne(ctx)
		}
		s.background.Wait()
		total += time.Since(start)
		b.StopTimer()
		if got := binder.n.Load(); got != numPods {
			b.Fatalf("bound %d of %d", got, numPods)
		}
	}
	b.ReportMetric(float64(numPods*b.N)/total.Seconds(), "pods/s")
	b.ReportMetric(float64(total.Microseconds())/float64(numPods*b.N), "us/pod")
}

// cycleConfig is the default config; SKIFF_BENCH_PARALLELISM overrides the
// parallelism to compare.
func cycleConfig() config.Config {
	cfg := config.Default()
	if v := os.Getenv("SKIFF_BENCH_PARALLELISM"); v != "" {
		cfg.Parallelism, _ = strconv.Atoi(v)
	}
	return cfg
}
