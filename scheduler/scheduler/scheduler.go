// Package scheduler is the scheduling loop: it watches pods and nodes,
// keeps the cache and the queue current from their events, and for each
// pending pod runs the framework on a snapshot, assumes the pod on the
// chosen node and binds it in the background, so the next cycle starts
// while the Bind call is in flight. A pod that fits nowhere gets the
// PodScheduled=False condition (reason Unschedulable) and a
// FailedScheduling event saying why, and waits in the queue for a change
// that may let it fit.
//
// It must never write anything but bindings, pod status conditions and
// events: the scheduler decides placement and nothing else.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/events"
	"github.com/skiff-dev/skiff/internal/informer"
	"github.com/skiff-dev/skiff/proto/api"
	"github.com/skiff-dev/skiff/scheduler/cache"
	"github.com/skiff-dev/skiff/scheduler/config"
	"github.com/skiff-dev/skiff/scheduler/framework"
	"github.com/skiff-dev/skiff/scheduler/metrics"
	"github.com/skiff-dev/skiff/scheduler/plugins"
	"github.com/skiff-dev/skiff/scheduler/queue"
)

// Event reasons, as kube-scheduler writes them.
const (
	ReasonScheduled        = "Scheduled"
	ReasonFailedScheduling = "FailedScheduling"
)

// The pod condition the scheduler owns, and its reasons.
const (
	ConditionPodScheduled = "PodScheduled"
	ReasonUnschedulable   = "Unschedulable"
	ReasonSchedulerError  = "SchedulerError"
)

const (
	conditionFalse      = "False"
	phaseSucceeded      = "Succeeded"
	phaseFailed         = "Failed"
	bindTimeout         = 30 * time.Second
	statusUpdateRetries = 3
	statusUpdateTimeout = 10 * time.Second
)

// Binder writes a pod's binding to a node.
type Binder interface {
	Bind(ctx context.Context, namespace, name, uid, node string) error
}

// clientBinder binds through the apiserver's Bind call.
type clientBinder struct{ c *client.Client }

func (b clientBinder) Bind(ctx context.Context, namespace, name, uid, node string) error {
	_, err := b.c.Bind(ctx, namespace, name, uid, node)
	return err
}

// Options are what a Scheduler needs.
type Options struct {
	Config   config.Config
	Client   *client.Client
	Recorder events.EventRecorder
	// Binder defaults to the apiserver's Bind.
	Binder Binder
	// Metrics may be nil (no metrics).
	Metrics *metrics.Metrics
	Logger  *slog.Logger
}

// Scheduler schedules the pods whose spec.schedulerName is its own.
type Scheduler struct {
	cfg      config.Config
	client   *client.Client
	binder   Binder
	recorder events.EventRecorder
	metrics  *metrics.Metrics
	log      *slog.Logger

	framework *framework.Framework
	queue     *queue.Queue
	cache     *cache.Cache
	snapshot  *cache.Snapshot

	pods  *informer.Informer[*api.Pod]
	nodes *informer.Informer[*api.Node]

	// inFlight bounds the bindings and status updates running in the
	// background; background tracks them so shutdown waits.
	inFlight   chan struct{}
	background sync.WaitGroup
}

// New wires a scheduler; Run starts it.
func New(opts Options) (*Scheduler, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, fmt.Errorf("scheduler config: %w", err)
	}
	if opts.Client == nil || opts.Recorder == nil {
		return nil, errors.New("scheduler: Client and Recorder are required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fw, err := plugins.NewFramework(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("scheduler profile: %w", err)
	}
	cfg := opts.Config
	binder := opts.Binder
	if binder == nil {
		binder = clientBinder{opts.Client}
	}
	s := &Scheduler{
		cfg: cfg, client: opts.Client, binder: binder, recorder: opts.Recorder, metrics: opts.Metrics, log: log,
		framework: fw,
		queue: queue.New(queue.Options{
			InitialBackoff:   time.Duration(cfg.PodInitialBackoffSeconds) * time.Second,
			MaxBackoff:       time.Duration(cfg.PodMaxBackoffSeconds) * time.Second,
			MaxUnschedulable: cfg.PodMaxInUnschedulablePodsDuration.Duration,
		}),
		cache:    cache.New(cfg.AssumedPodTTL.Duration, nil, log),
		snapshot: cache.NewSnapshot(),
		pods:     informer.New(opts.Client.Pods(), informer.Options{Logger: log}),
		nodes:    informer.New(opts.Client.Nodes(), informer.Options{Logger: log}),
		inFlight: make(chan struct{}, cfg.BindConcurrency),
	}
	s.pods.AddEventHandler(informer.Handler[*api.Pod]{OnAdd: s.onPodAdd, OnUpdate: s.onPodUpdate, OnDelete: s.onPodDelete})
	s.nodes.AddEventHandler(informer.Handler[*api.Node]{OnAdd: s.onNodeAdd, OnUpdate: s.onNodeUpdate, OnDelete: s.onNodeDelete})
	return s, nil
}

// Pending reports the pods waiting in each queue (for the metrics gauge).
func (s *Scheduler) Pending() (active, backoff, unschedulable int) {
	l := s.queue.Len()
	return l.Active, l.Backoff, l.Unschedulable
}

// Synced reports nil once the pod and node caches hold the first list (the
// daemon's readiness check).
func (s *Scheduler) Synced() error {
	if !s.pods.HasSynced() || !s.nodes.HasSynced() {
		return errors.New("pod and node caches not synced yet")
	}
	return nil
}

// RunCaches runs the informers, the queue's flushes and the cache's expiry
// until ctx ends. A standby replica runs it too, so that it takes over with
// warm caches.
func (s *Scheduler) RunCaches(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { s.pods.Run(ctx) })
	wg.Go(func() { s.nodes.Run(ctx) })
	wg.Go(func() { s.queue.Run(ctx) })
	wg.Go(func() { s.cache.Run(ctx) })
	wg.Wait()
}

// WaitForCacheSync blocks until both caches are synced or ctx ends.
func (s *Scheduler) WaitForCacheSync(ctx context.Context) bool {
	return s.pods.WaitForSync(ctx) && s.nodes.WaitForSync(ctx)
}

// ScheduleLoop schedules pods one at a time until ctx ends, then waits for
// the bindings in flight. Run RunCaches alongside.
func (s *Scheduler) ScheduleLoop(ctx context.Context) {
	defer s.background.Wait()
	if !s.WaitForCacheSync(ctx) {
		return
	}
	s.log.Info("caches synced, scheduling", "nodes", s.cache.NodeCount(), "schedulerName", s.cfg.SchedulerName)
	for ctx.Err() == nil {
		s.scheduleOne(ctx)
	}
}

// Run runs the caches and the scheduling loop until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { s.RunCaches(ctx) })
	s.ScheduleLoop(ctx)
	wg.Wait()
}

// scheduleOne takes one pod from the queue and places it, or records why it
// cannot be placed.
func (s *Scheduler) scheduleOne(ctx context.Context) {
	qp, cycle, ok := s.queue.Pop(ctx)
	if !ok {
		return
	}
	start := time.Now()
	pod := qp.Pod
	log := s.log.With("pod", qp.Key)
	if _, known := s.cache.PodNode(qp.Key); known {
		// Already bound (or assumed): the informer's news raced the queue.
		s.queue.Done(qp.Key)
		return
	}

	s.cache.UpdateSnapshot(s.snapshot)
	result, err := s.framework.Schedule(ctx, qp.PodInfo, s.snapshot.Nodes())
	if err != nil {
		if ctx.Err() != nil {
			s.queue.Requeue(qp, cycle, false)
			return
		}
		var fitErr *framework.FitError
		unschedulable := errors.As(err, &fitErr)
		res := metrics.ResultError
		if unschedulable {
			res = metrics.ResultUnschedulable
			log.Debug("unschedulable", "reason", err.Error(), "attempts", qp.Attempts)
		} else {
			log.Error("scheduling attempt failed", "err", err, "attempts", qp.Attempts)
		}
		s.observeAttempt(res, start)
		s.queue.Requeue(qp, cycle, unschedulable)
		s.recordFailure(ctx, pod, err, unschedulable)
		return
	}

	host := result.SuggestedHost
	if err := s.cache.AssumePod(qp.PodInfo, host); err != nil {
		log.Error("assume pod", "err", err)
		s.observeAttempt(metrics.ResultError, start)
		s.queue.Requeue(qp, cycle, false)
		return
	}
	log.Debug("assumed", "node", host, "feasible", result.FeasibleNodes, "evaluated", result.EvaluatedNodes)
	if !s.acquire(ctx) {
		s.cache.ForgetPod(qp.Key)
		s.queue.Requeue(qp, cycle, false)
		return
	}
	go func() {
		defer s.release()
		s.bind(ctx, qp, cycle, host, start)
	}()
}

func (s *Scheduler) acquire(ctx context.Context) bool {
	select {
	case s.inFlight <- struct{}{}:
		s.background.Add(1)
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Scheduler) release() {
	<-s.inFlight
	s.background.Done()
}

// bind writes the binding. On failure the assumption is forgotten and the
// pod retried after its backoff; pods that no longer need scheduling are
// dropped.
func (s *Scheduler) bind(ctx context.Context, qp *queue.QueuedPodInfo, cycle int64, host string, start time.Time) {
	pod := qp.Pod
	meta := pod.GetMetadata()
	bctx, cancel := context.WithTimeout(ctx, bindTimeout)
	defer cancel()
	err := s.binder.Bind(bctx, meta.GetNamespace(), meta.GetName(), meta.GetUid(), host)
	if err != nil {
		s.cache.ForgetPod(qp.Key)
		// The forgotten assumption freed room another pod may be waiting for.
		s.queue.MoveAllToActiveOrBackoffQueue(queue.AssumedPodForget)
		if client.IsNotFound(err) || isFailedPrecondition(err) || client.IsConflict(err) {
			// Deleted, replaced, already bound or terminating. The informer
			// tells the queue, which drops the pod or keeps its successor;
			// until then it waits out a backoff.
			s.log.Debug("binding rejected", "pod", qp.Key, "node", host, "err", err)
			s.observeAttempt(metrics.ResultError, start)
			s.queue.Requeue(qp, cycle, false)
			return
		}
		if ctx.Err() != nil {
			s.queue.Requeue(qp, cycle, false)
			return
		}
		s.log.Warn("binding failed, retrying with backoff", "pod", qp.Key, "node", host, "err", err)
		s.observeAttempt(metrics.ResultError, start)
		s.queue.Requeue(qp, cycle, false)
		s.recorder.Eventf(pod, events.Warning, ReasonFailedScheduling, "Binding rejected: %v", err)
		return
	}
	s.cache.FinishBinding(qp.Key)
	s.queue.Done(qp.Key)
	s.observeAttempt(metrics.ResultScheduled, start)
	if s.metrics != nil {
		s.metrics.PodSchedulingDuration.Observe(time.Since(qp.InitialAttemptTimestamp).Seconds())
	}
	s.recorder.Eventf(pod, events.Normal, ReasonScheduled, "Successfully assigned %s to %s", qp.Key, host)
}

func (s *Scheduler) observeAttempt(result string, start time.Time) {
	if s.metrics == nil {
		return
	}
	s.metrics.ScheduleAttempts.WithLabelValues(result).Inc()
	s.metrics.SchedulingAttemptDuration.WithLabelValues(result).Observe(time.Since(start).Seconds())
}
