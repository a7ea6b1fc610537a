package backoff

import (
	"context"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: 30 * time.Second}
	cur := time.Duration(0)
	for n := range 20 {
		cur = min(max(2*cur, b.Initial), b.Max)
		d := b.Next()
		if d < cur/2 || d > cur {
			t.Fatalf("delay %d = %v, want in [%v, %v]", n, d, cur/2, cur)
		}
	}
	if cur != 30*time.Second {
		t.Fatalf("cap not reached: %v", cur)
	}
	b.Reset()
	if d := b.Next(); d > 100*time.Millisecond {
		t.Fatalf("after reset delay = %v, want <= initial", d)
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); err != context.Canceled {
		t.Fatalf("Sleep on an ended context = %v, want context.Canceled", err)
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
}
