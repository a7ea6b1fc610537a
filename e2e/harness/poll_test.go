package harness

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestEventuallyReportsTheLastCompleteCheck: a check the deadline cut
// short (a command that timed out) must not hide why the checks before it
// failed.
func TestEventuallyReportsTheLastCompleteCheck(t *testing.T) {
	state := errors.New("2 pods, want 3")
	calls := 0
	err := Eventually(context.Background(), 300*time.Millisecond, 10*time.Millisecond, "3 pods", func(ctx context.Context) error {
		calls++
		if calls < 3 {
			return state
		}
		<-ctx.Done() // hangs until the deadline, as a stuck command would
		return ctx.Err()
	})
	if !errors.Is(err, state) {
		t.Fatalf("Eventually = %v, want it to wrap %q", err, state)
	}
	if err := Eventually(context.Background(), time.Second, time.Millisecond, "ok", func(context.Context) error { return nil }); err != nil {
		t.Fatalf("a passing check: %v", err)
	}
}
