package leaderelection

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/testcluster"
	"github.com/skiff-dev/skiff/proto/api"
)

// Short, valid timings: a lease of 3s, renewed every 100ms. The renew
// deadline leaves room for a slow etcd fsync on a loaded machine.
const (
	leaseDuration = 3 * time.Second
	renewDeadline = 2 * time.Second
	retryPeriod   = 100 * time.Millisecond
)

// testLogger sends an elector's log to the test's log, shown on failure.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// candidate runs one elector and records what happens to it.
type candidate struct {
	id      string
	cancel  context.CancelFunc
	done    chan error // Run's result
	exited  chan struct{}
	started chan time.Time // when OnStartedLeading began
	ended   chan time.Time // when OnStartedLeading returned
	stopped chan struct{}  // OnStoppedLeading
}

func runCandidate(t *testing.T, c *client.Client, id string) *candidate {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cd := &candidate{id: id, cancel: cancel, done: make(chan error, 1), exited: make(chan struct{}),
		started: make(chan time.Time, 1), ended: make(chan time.Time, 1), stopped: make(chan struct{})}
	go func() {
		defer close(cd.exited)
		cd.done <- Run(ctx, Config{
			Client: c, Name: "controller-manager", Identity: id,
			LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod,
			OnStartedLeading: func(ctx context.Context) {
				cd.started <- time.Now()
				<-ctx.Done()
				cd.ended <- time.Now()
			},
			OnStoppedLeading: func() { close(cd.stopped) },
			Logger:           testLogger(t),
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-cd.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("candidate %s did not stop", id)
		}
	})
	return cd
}

func within[V any](t *testing.T, ch <-chan V, d time.Duration, what string) V {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("timed out after %v waiting for %s", d, what)
		panic("unreachable")
	}
}

func never[V any](t *testing.T, ch <-chan V, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s happened", what)
	case <-time.After(d):
	}
}

func getLease(t *testing.T, c *client.Client) *api.Lease {
	t.Helper()
	l, err := c.Leases().Get(t.Context(), "skiff-system", "controller-manager")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestStandbyTakesOverWhenTheLeaderStops(t *testing.T) {
	tc := testcluster.Start(t)
	a := runCandidate(t, tc.Client, "a")
	within(t, a.started, 10*time.Second, "a to lead")
	b := runCandidate(t, tc.Client, "b")
	never(t, b.started, 3*leaseDuration/2, "b leading while a renews")
	if l := getLease(t, tc.Client); l.Spec.HolderIdentity != "a" {
		t.Fatalf("holder = %q, want a", l.Spec.HolderIdentity)
	}

	stop := time.Now()
	a.cancel()
	aEnded := within(t, a.ended, 5*time.Second, "a's work to stop")
	if err := within(t, a.done, 5*time.Second, "a's Run to return"); err != nil {
		t.Fatalf("a's Run = %v, want nil after its context ended", err)
	}
	within(t, a.stopped, time.Second, "a's OnStoppedLeading")
	// a released the lease, so b need not wait for it to expire.
	bStarted := within(t, b.started, leaseDuration, "b to take over")
	if took := bStarted.Sub(stop); took > leaseDuration/2 {
		t.Errorf("b took over %v after a stopped; a released lease should go within a few retry periods", took)
	}
	if bStarted.Before(aEnded) {
		t.Error("b started leading before a's work stopped")
	}
	l := getLease(t, tc.Client)
	if l.Spec.HolderIdentity != "b" || l.Spec.LeaseTransitions != 1 {
		t.Errorf("lease holder %q transitions %d, want b and 1", l.Spec.HolderIdentity, l.Spec.LeaseTransitions)
	}
}

func TestCandidateWaitsForAnUnreleasedLeaseToExpire(t *testing.T) {
	tc := testcluster.Start(t)
	d := int32(leaseDuration / time.Second)
	renewed := time.Now()
	_, err := tc.Client.Leases().Create(t.Context(), &api.Lease{
		Metadata: &api.ObjectMeta{Namespace: "skiff-system", Name: "controller-manager"},
		Spec: &api.LeaseSpec{HolderIdentity: "crashed", LeaseDurationSeconds: &d,
			AcquireTime: timestamppb.New(renewed), RenewTime: timestamppb.New(renewed), LeaseTransitions: 4},
	})
	if err != nil {
		t.Fatal(err)
	}
	b := runCandidate(t, tc.Client, "b")
	started := within(t, b.started, 2*leaseDuration, "b to take the expired lease")
	if waited := started.Sub(renewed); waited < leaseDuration || waited > leaseDuration+2*time.Second {
		t.Errorf("b took the lease %v after its last renewal, want just over %v", waited, leaseDuration)
	}
	if l := getLease(t, tc.Client); l.Spec.HolderIdentity != "b" || l.Spec.LeaseTransitions != 5 {
		t.Errorf("lease holder %q transitions %d, want b and 5", l.Spec.HolderIdentity, l.Spec.LeaseTransitions)
	}
}

func TestLeaderStepsDownWhenTheLeaseIsTaken(t *testing.T) {
	tc := testcluster.Start(t)
	a := runCandidate(t, tc.Client, "a")
	within(t, a.started, 10*time.Second, "a to lead")
	// Someone writes the lease as if a had expired and they took over.
	for {
		l := getLease(t, tc.Client)
		l.Spec.HolderIdentity = "thief"
		l.Spec.RenewTime = timestamppb.Now()
		if _, err := tc.Client.Leases().Update(t.Context(), l); err == nil {
			break
		} else if !client.IsConflict(err) {
			t.Fatal(err)
		}
	}
	within(t, a.ended, 2*retryPeriod+time.Second, "a's work to stop")
	if err := within(t, a.done, time.Second, "a's Run to return"); !errors.Is(err, ErrLeaderLost) {
		t.Fatalf("a's Run = %v, want ErrLeaderLost", err)
	}
	within(t, a.stopped, time.Second, "a's OnStoppedLeading")
	if l := getLease(t, tc.Client); l.Spec.HolderIdentity != "thief" {
		t.Errorf("holder = %q: a stepping down must not touch the lease", l.Spec.HolderIdentity)
	}
}

func TestLeaderStepsDownWhenItCannotRenew(t *testing.T) {
	tc := testcluster.Start(t)
	a := runCandidate(t, tc.Client, "a")
	within(t, a.started, 10*time.Second, "a to lead")
	lost := time.Now()
	tc.Stop(t)
	within(t, a.ended, renewDeadline+time.Second, "a's work to stop")
	if err := within(t, a.done, time.Second, "a's Run to return"); !errors.Is(err, ErrLeaderLost) {
		t.Fatalf("a's Run = %v, want ErrLeaderLost", err)
	}
	// Stepping down before the lease expires is what keeps two leaders
	// from overlapping.
	if took := time.Since(lost); took >= leaseDuration {
		t.Errorf("a stepped down %v after the apiserver went away, want under the lease duration %v", took, leaseDuration)
	}
}

func TestOnlyOneLeaderAmongMany(t *testing.T) {
	tc := testcluster.Start(t)
	var mu sync.Mutex
	leading, maxLeading := 0, 0
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, id := range []string{"a", "b", "c", "d"} {
		wg.Go(func() {
			Run(ctx, Config{
				Client: tc.Client, Name: "scheduler", Identity: id,
				LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod,
				OnStartedLeading: func(ctx context.Context) {
					mu.Lock()
					leading++
					maxLeading = max(maxLeading, leading)
					mu.Unlock()
					<-ctx.Done()
					mu.Lock()
					leading--
					mu.Unlock()
				},
			})
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := leading
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nobody leads")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second) // let the others keep trying
	mu.Lock()
	defer mu.Unlock()
	if leading != 1 || maxLeading != 1 {
		t.Fatalf("leading = %d (max %d), want exactly one", leading, maxLeading)
	}
}
