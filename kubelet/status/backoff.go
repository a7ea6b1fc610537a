package status

import "time"

// Backoff is the kubelet's restart and image pull back-off: Initial after
// the first failure, doubling each time up to Max.
type Backoff struct {
	Initial, Max time.Duration
}

// DefaultBackoff is Kubernetes' 10s doubling to 5m.
func DefaultBackoff() Backoff { return Backoff{Initial: 10 * time.Second, Max: 5 * time.Minute} }

// VolumeBackoff is Kubernetes' volume manager retry: a volume that cannot
// be set up (a ConfigMap not created yet) is tried again after 500ms,
// doubling to 2m2s.
func VolumeBackoff() Backoff {
	return Backoff{Initial: 500 * time.Millisecond, Max: 2*time.Minute + 2*time.Second}
}

// Delay is the wait before the next attempt after failures consecutive
// failures (failures >= 1).
func (b Backoff) Delay(failures int) time.Duration {
	d := b.Initial
	for i := 1; i < failures && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// RestartDelay is the wait before restarting a container that exited after
// restartCount earlier restarts, having run for ran. A container that ran
// longer than twice Max was healthy: its back-off starts over, as in
// Kubernetes.
func (b Backoff) RestartDelay(restartCount int, ran time.Duration) time.Duration {
	if ran > 2*b.Max {
		return b.Initial
	}
	return b.Delay(restartCount + 1)
}
