package harness

import (
	"context"
	"fmt"
	"time"
)

// Eventually calls check every interval until it returns nil, and fails
// after timeout with check's last error: conditions on a real cluster are
// reached, never slept for.
func Eventually(ctx context.Context, timeout, interval time.Duration, what string, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	var last error
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		// A check cut short by the deadline says less than the one
		// before it.
		if last == nil || ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not reached after %v: %w", what, time.Since(start).Round(time.Second), last)
		case <-time.After(interval):
		}
	}
}
