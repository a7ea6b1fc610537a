package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/events"
	"github.com/skiff-dev/skiff/internal/testcluster"
	"github.com/skiff-dev/skiff/scheduler/config"
	st "github.com/skiff-dev/skiff/scheduler/schedtest"
)

type replica struct {
	app    *App
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func startReplica(t *testing.T, c *client.Client, identity string) *replica {
	t.Helper()
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := New(Options{
		Config: config.Default(), LeaderElect: true, Identity: identity,
		LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 250 * time.Millisecond,
	}, c, &events.FakeRecorder{}, reg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{app: a, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-r.done; err != nil {
				t.Errorf("replica %s: %v", identity, err)
			}
		})
	}
	t.Cleanup(stop)
	r.cancel = stop
	return r
}

func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s: %s", what, last)
}

func leaseHolder(t *testing.T, c *client.Client) string {
	l, err := c.Leases().Get(context.Background(), LeaseNamespace, LeaseName)
	if err != nil {
		return ""
	}
	return l.GetSpec().GetHolderIdentity()
}

func boundCount(t *testing.T, c *client.Client) int {
	pods, _, err := c.Pods().List(context.Background(), "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range pods {
		if p.GetSpec().GetNodeName() != "" {
			n++
		}
	}
	return n
}

func TestOnlyTheLeaderSchedulesAndAStandbyTakesOver(t *testing.T) {
	tc := testcluster.Start(t)
	st.RegisterNode(t, tc.Client, st.MakeNode("node-1").Obj())
	a := startReplica(t, tc.Client, "replica-a")
	waitFor(t, "replica-a to lead", func() (bool, string) {
		h := leaseHolder(t, tc.Client)
		return h == "replica-a", "holder " + h
	})
	b := startReplica(t, tc.Client, "replica-b")
	waitFor(t, "replica-b's caches", func() (bool, string) { return b.app.Ready() == nil, fmt.Sprint(b.app.Ready()) })

	for i := 0; i < 3; i++ {
		st.CreatePod(t, tc.Client, st.MakePod(fmt.Sprintf("before-%d", i)).Obj())
	}
	waitFor(t, "3 pods bound by the leader", func() (bool, string) {
		n := boundCount(t, tc.Client)
		return n == 3, fmt.Sprintf("%d bound", n)
	})
	if got := scheduled(t, a.reg); got != 3 {
		t.Errorf("leader counted %v scheduled attempts, want 3", got)
	}
	if got := scheduled(t, b.reg); got != 0 {
		t.Errorf("standby scheduled %v pods", got)
	}

	a.cancel() // the leader stops and releases the lease
	waitFor(t, "replica-b to take over", func() (bool, string) {
		h := leaseHolder(t, tc.Client)
		return h == "replica-b", "holder " + h
	})
	for i := 0; i < 3; i++ {
		st.CreatePod(t, tc.Client, st.MakePod(fmt.Sprintf("after-%d", i)).Obj())
	}
	waitFor(t, "3 more pods bound by the new leader", func() (bool, string) {
		n := boundCount(t, tc.Client)
		return n == 6, fmt.Sprintf("%d bound", n)
	})
	if got := scheduled(t, b.reg); got != 3 {
		t.Errorf("new leader counted %v scheduled attempts, want 3", got)
	}
}

// scheduled reads scheduler_schedule_attempts_total{result="scheduled"}.
func scheduled(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "scheduler_schedule_attempts_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "scheduled" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatal("scheduler_schedule_attempts_total not registered")
	return 0
}

func TestLeaderElectionNeedsAnIdentity(t *testing.T) {
	if _, err := New(Options{Config: config.Default(), LeaderElect: true}, nil, &events.FakeRecorder{}, nil, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("New without an identity succeeded")
	}
}
