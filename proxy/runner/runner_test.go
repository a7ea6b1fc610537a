package runner

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type recorder struct {
	mu    sync.Mutex
	runs  []time.Time
	kinds []bool
	fail  int
	ran   chan struct{}
}

func newRecorder(fail int) *recorder { return &recorder{fail: fail, ran: make(chan struct{}, 100)} }

func (r *recorder) sync(_ context.Context, periodic bool) error {
	r.mu.Lock()
	r.runs = append(r.runs, time.Now())
	r.kinds = append(r.kinds, periodic)
	fail := r.fail > 0
	r.fail--
	r.mu.Unlock()
	r.ran <- struct{}{}
	if fail {
		return errors.New("boom")
	}
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.runs)
}

func (r *recorder) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-r.ran:
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d syncs ran, want %d", r.count(), n)
		}
	}
}

func start(t *testing.T, r *Runner) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestRunnerCoalescesBurstsAndBoundsFrequency(t *testing.T) {
	rec := newRecorder(0)
	r := New("test", rec.sync, 200*time.Millisecond, time.Hour, nil)
	start(t, r)
	rec.wait(t, 1) // the initial sync
	for range 50 {
		r.Request()
	}
	rec.wait(t, 1)
	time.Sleep(400 * time.Millisecond)
	if n := rec.count(); n != 2 {
		t.Fatalf("%d syncs after a burst of 50 requests, want 2 (initial + one)", n)
	}
	rec.mu.Lock()
	gap := rec.runs[1].Sub(rec.runs[0])
	rec.mu.Unlock()
	if gap < 200*time.Millisecond {
		t.Errorf("second sync %v after the first, want at least MinInterval 200ms", gap)
	}
}

func TestRunnerSyncsPeriodically(t *testing.T) {
	rec := newRecorder(0)
	start(t, New("test", rec.sync, time.Millisecond, 50*time.Millisecond, nil))
	rec.wait(t, 3)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.kinds[0] || !rec.kinds[1] || !rec.kinds[2] {
		t.Errorf("periodic flags = %v, want [false true true]", rec.kinds[:3])
	}
}

func TestRunnerRetriesFailedSync(t *testing.T) {
	rec := newRecorder(2)
	start(t, New("test", rec.sync, 20*time.Millisecond, time.Hour, nil))
	rec.wait(t, 3) // two failures, then success
	time.Sleep(100 * time.Millisecond)
	if n := rec.count(); n != 3 {
		t.Errorf("%d syncs, want 3: retries stop after a success", n)
	}
}

func TestRunnerStopsWithContext(t *testing.T) {
	rec := newRecorder(0)
	r := New("test", rec.sync, time.Hour, time.Hour, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	rec.wait(t, 1)
	r.Request() // waits for MinInterval, which cancellation must cut short
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
