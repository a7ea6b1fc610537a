package controllerutil

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-dev/skiff/internal/client"
)

// Queue is the rate-limited, de-duplicating work queue of "ns/name" keys
// every controller uses.
type Queue = workqueue.TypedRateLimitingInterface[string]

// NewQueue makes a named queue whose depth, latency and retries are
// reported through m (nil: no metrics).
func NewQueue(name string, m *Metrics) Queue {
	cfg := workqueue.TypedRateLimitingQueueConfig[string]{Name: name}
	if m != nil {
		cfg.MetricsProvider = m
	}
	return workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](), cfg)
}

// SyncFunc reconciles one key. A returned error re-queues the key with
// rate limiting; ErrRequeueAfter-wrapped results are re-queued after a delay.
type SyncFunc func(ctx context.Context, key string) error

// RequeueAfter asks the worker loop to look at the key again after d without
// counting a failure (waiting for a timeout, a grace period, pods to go).
type RequeueAfter struct{ After time.Duration }

func (r *RequeueAfter) Error() string { return "requeue after " + r.After.String() }

// Worker runs a controller's sync over its queue.
type Worker struct {
	Name    string
	Queue   Queue
	Sync    SyncFunc
	Logger  *slog.Logger
	Metrics *Metrics
}

// Run starts n workers and blocks until ctx ends; it then shuts the queue
// down and waits for the workers to finish their current keys.
func (w *Worker) Run(ctx context.Context, n int) {
	if n < 1 {
		n = 1
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for w.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	w.Queue.ShutDown()
	wg.Wait()
}

func (w *Worker) processNext(ctx context.Context) bool {
	key, shutdown := w.Queue.Get()
	if shutdown {
		return false
	}
	defer w.Queue.Done(key)
	start := time.Now()
	err := w.Sync(ctx, key)
	w.Metrics.observeSync(w.Name, time.Since(start), err)
	var ra *RequeueAfter
	switch {
	case err == nil:
		w.Queue.Forget(key)
	case errors.As(err, &ra):
		w.Queue.Forget(key)
		w.Queue.AddAfter(key, ra.After)
	case ctx.Err() != nil:
		// Shutting down: the next leader starts from the cache anyway.
	default:
		level := slog.LevelWarn
		if client.IsConflict(err) {
			// Routine: the cache had not caught up with a write yet.
			level = slog.LevelDebug
		}
		w.Logger.Log(ctx, level, "sync failed, requeueing", "queue", w.Name, "key", key,
			"retries", w.Queue.NumRequeues(key), "err", err)
		w.Queue.AddRateLimited(key)
	}
	return true
}
