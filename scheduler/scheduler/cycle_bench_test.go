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

// BenchmarkSchedulingCycle1kNodes measures the scheduler alone: queue pop,
// snapshot, filter and score over 1,000 nodes, assume, and a binding that
// returns at once. It is the ceiling the apiserver-bound benchmark cannot
// exceed.
func BenchmarkSchedulingCycle1kNodes(b *testing.B) {
	// A client that is never called: the caches are fed by hand.
	conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	binder := &countingBinder{}
	s, err := New(Options{Config: cycleConfig(), Client: client.New(conn), Recorder: &events.FakeRecorder{}, Binder: binder, Logger: testLogger()})
	if err != nil {
		b.Fatal(err)
	}
	for n := 0; n < 1000; n++ {
		s.onNodeAdd(st.MakeNode(fmt.Sprintf("node-%04d", n)).Allocatable("64", "256Gi", "100000").Obj())
	}
	for p := 0; p < b.N; p++ {
		s.onPodAdd(st.MakePod(fmt.Sprintf("pod-%07d", p)).Owner(fmt.Sprintf("rs-%03d", p%100)).Req("100m", "100Mi").Obj())
	}
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for p := 0; p < b.N; p++ {
		s.scheduleOne(ctx)
	}
	s.background.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if got := binder.n.Load(); got != int64(b.N) {
		b.Fatalf("bound %d of %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "pods/s")
}

func cycleConfig() config.Config {
	cfg := config.Default()
	if v := os.Getenv("SKIFF_BENCH_PARALLELISM"); v != "" {
		cfg.Parallelism, _ = strconv.Atoi(v)
	}
	return cfg
}
