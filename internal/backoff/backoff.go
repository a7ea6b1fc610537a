// Package backoff is the one exponential back-off with jitter that
// reconnecting watches share (the informer's, ctl's list-then-watch): a
// server refusing or dropping them is asked again later, not at once, and
// many clients refused together do not come back together.
//
// It must never sleep past its context.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff draws each delay from [d/2, d], where d doubles from Initial up
// to Max. The zero value of its state starts at Initial.
type Backoff struct {
	Initial, Max time.Duration
	cur          time.Duration
}

// Next is the delay before the next attempt.
func (b *Backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.Initial
	} else {
		b.cur = min(2*b.cur, b.Max)
	}
	half := b.cur / 2
	return half + rand.N(half+1)
}

// Reset starts the delays over from Initial, after a success.
func (b *Backoff) Reset() { b.cur = 0 }

// Sleep waits d or until ctx ends, and returns ctx's error if it did.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
