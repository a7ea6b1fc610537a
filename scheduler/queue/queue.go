// Package queue is the scheduling queue of pending pods, after
// kube-scheduler's PriorityQueue. A pod is in exactly one place: activeQ
// (ready to be tried: higher priority first, then first come), backoffQ
// (failed recently: waits 1s doubling per attempt up to a cap),
// unschedulableQ (fit nowhere: waits for a cluster event that may help, or
// for a periodic flush), or in flight (popped, being scheduled). Keys
// ("namespace/name") de-duplicate: adding a pod already queued updates it.
//
// It must never decide whether a pod fits: the scheduler tells it what
// happened and it keeps the pod in the right place.
package queue

import (
	"context"
	"maps"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"k8s.io/utils/clock"

	"github.com/skiff-dev/skiff/scheduler/framework"
)

// Event is a cluster change that may make unschedulable pods fit.
type Event string

// Events the scheduler reports.
const (
	NodeAdd              Event = "NodeAdd"
	NodeUpdate           Event = "NodeUpdate"
	AssignedPodDelete    Event = "AssignedPodDelete"
	AssumedPodForget     Event = "AssumedPodForget"
	UnschedulableTimeout Event = "UnschedulableTimeout"
)

// Intervals of the background flushes.
const (
	backoffFlushInterval       = 200 * time.Millisecond
	unschedulableFlushInterval = 10 * time.Second
)

// QueuedPodInfo is a pod in the queue with its scheduling history.
type QueuedPodInfo struct {
	*framework.PodInfo
	// Timestamp is when the pod last entered a queue: it orders activeQ
	// (first come, first served within a priority) and starts the backoff.
	Timestamp time.Time
	// InitialAttemptTimestamp is when the pod first entered the queue: the
	// start of its end-to-end scheduling latency.
	InitialAttemptTimestamp time.Time
	// Attempts counts scheduling attempts; the backoff doubles with each.
	Attempts int
}

// Options configure a Queue.
type Options struct {
	InitialBackoff   time.Duration // default 1s
	MaxBackoff       time.Duration // default 10s
	MaxUnschedulable time.Duration // default 60s
	Clock            clock.PassiveClock
}

// inFlight is a popped pod: changes that arrive while it is scheduled are
// kept here and applied if it comes back. A pod deleted and then created
// again under the same name while in flight has deleted false and latest
// set to the new pod.
type inFlight struct {
	uid     string
	deleted bool
	latest  *framework.PodInfo
}

// Queue is the scheduling queue. Its methods are safe for concurrent use.
type Queue struct {
	opts Options

	mu            sync.Mutex
	cond          *sync.Cond
	active        *keyedHeap
	backoff       *keyedHeap
	unschedulable map[string]*QueuedPodInfo
	inFlight      map[string]*inFlight
	// schedulingCycle counts Pops. moveRequestCycle is the cycle of the last
	// move request: a pod popped before it that turns out unschedulable may
	// have missed the event that would have moved it, so it goes to backoffQ
	// instead of unschedulableQ.
	schedulingCycle  int64
	moveRequestCycle int64
	closed           bool
}

// New makes a queue.
func New(opts Options) *Queue {
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 10 * time.Second
	}
	if opts.MaxUnschedulable <= 0 {
		opts.MaxUnschedulable = 60 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	q := &Queue{
		opts:          opts,
		unschedulable: map[string]*QueuedPodInfo{},
		inFlight:      map[string]*inFlight{},
	}
	q.cond = sync.NewCond(&q.mu)
	q.active = newKeyedHeap(func(a, b *QueuedPodInfo) bool {
		pa, pb := a.Pod.GetSpec().GetPriority(), b.Pod.GetSpec().GetPriority()
		if pa != pb {
			return pa > pb
		}
		return a.Timestamp.Before(b.Timestamp)
	})
	q.backoff = newKeyedHeap(func(a, b *QueuedPodInfo) bool {
		return q.backoffExpiry(a).Before(q.backoffExpiry(b))
	})
	return q
}

// Run flushes backoffQ and unschedulableQ until ctx ends, then closes the
// queue so Pop returns.
func (q *Queue) Run(ctx context.Context) {
	defer q.Close()
	backoff := time.NewTicker(backoffFlushInterval)
	defer backoff.Stop()
	leftover := time.NewTicker(unschedulableFlushInterval)
	defer leftover.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-backoff.C:
			q.FlushBackoffCompleted()
		case <-leftover.C:
			q.FlushUnschedulableLeftover()
		}
	}
}

// Close wakes every Pop with ok=false.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}

// Add adds a new pending pod to activeQ. A pod already queued is updated in
// place; a pod in flight has the newer version kept for its return.
func (q *Queue) Add(pi *framework.PodInfo) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if f, ok := q.inFlight[pi.Key]; ok {
		f.latest, f.deleted = pi, false
		return
	}
	if q.updateInPlace(pi) {
		return
	}
	now := q.opts.Clock.Now()
	q.active.AddOrUpdate(&QueuedPodInfo{PodInfo: pi, Timestamp: now, InitialAttemptTimestamp: now})
	q.cond.Signal()
}

// updateInPlace replaces the pod where it is queued; false when absent.
func (q *Queue) updateInPlace(pi *framework.PodInfo) bool {
	if old, ok := q.active.Get(pi.Key); ok {
		q.active.AddOrUpdate(withPod(old, pi))
		return true
	}
	if old, ok := q.backoff.Get(pi.Key); ok {
		q.backoff.AddOrUpdate(withPod(old, pi))
		return true
	}
	if old, ok := q.unschedulable[pi.Key]; ok {
		q.unschedulable[pi.Key] = withPod(old, pi)
		return true
	}
	return false
}

func withPod(old *QueuedPodInfo, pi *framework.PodInfo) *QueuedPodInfo {
	c := *old
	c.PodInfo = pi
	return &c
}

// Update applies a change to a pending pod. An unschedulable pod whose spec,
// labels or annotations changed is tried again (it may fit now); a change to
// status only (the scheduler's own condition) keeps it where it is.
func (q *Queue) Update(oldPI, newPI *framework.PodInfo) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if f, ok := q.inFlight[newPI.Key]; ok {
		f.latest, f.deleted = newPI, false
		return
	}
	if old, ok := q.unschedulable[newPI.Key]; ok {
		p := withPod(old, newPI)
		if oldPI != nil && podChanged(oldPI, newPI) {
			delete(q.unschedulable, newPI.Key)
			q.moveLocked(p)
			return
		}
		q.unschedulable[newPI.Key] = p
		return
	}
	if q.updateInPlace(newPI) {
		return
	}
	now := q.opts.Clock.Now()
	q.active.AddOrUpdate(&QueuedPodInfo{PodInfo: newPI, Timestamp: now, InitialAttemptTimestamp: now})
	q.cond.Signal()
}

// podChanged reports a change that may affect scheduling (not status).
func podChanged(a, b *framework.PodInfo) bool {
	am, bm := a.Pod.GetMetadata(), b.Pod.GetMetadata()
	return !proto.Equal(a.Pod.GetSpec(), b.Pod.GetSpec()) ||
		!maps.Equal(am.GetLabels(), bm.GetLabels()) ||
		!maps.Equal(am.GetAnnotations(), bm.GetAnnotations())
}

// Delete forgets a pod: it was deleted, or bound.
func (q *Queue) Delete(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if f, ok := q.inFlight[key]; ok {
		f.deleted, f.latest = true, nil
		return
	}
	q.active.Delete(key)
	q.backoff.Delete(key)
	delete(q.unschedulable, key)
}

// Pop blocks until a pod is in activeQ and returns it, in flight, with the
// scheduling cycle it starts. ok is false once the queue is closed or ctx
// ends.
func (q *Queue) Pop(ctx context.Context) (p *QueuedPodInfo, cycle int64, ok bool) {
	stop := context.AfterFunc(ctx, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.cond.Broadcast()
	})
	defer stop()
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.active.Len() == 0 && !q.closed && ctx.Err() == nil {
		q.cond.Wait()
	}
	if q.closed || ctx.Err() != nil {
		return nil, 0, false
	}
	p = q.active.Pop()
	p.Attempts++
	q.schedulingCycle++
	q.inFlight[p.Key] = &inFlight{uid: p.Pod.GetMetadata().GetUid()}
	return p, q.schedulingCycle, true
}

// Done ends a pod's flight without requeueing it: it was bound, or needs
// no scheduling any more. A new pod created under the same name meanwhile
// is queued as the new pod it is.
func (q *Queue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	f, ok := q.inFlight[key]
	if !ok {
		return
	}
	delete(q.inFlight, key)
	if f.deleted || f.latest == nil || f.latest.Pod.GetMetadata().GetUid() == f.uid {
		return
	}
	now := q.opts.Clock.Now()
	q.active.AddOrUpdate(&QueuedPodInfo{PodInfo: f.latest, Timestamp: now, InitialAttemptTimestamp: now})
	q.cond.Signal()
}

// Requeue returns a pod whose attempt failed. An unschedulable pod waits in
// unschedulableQ for an event, unless a move request came during its cycle
// (it may have missed the event): then, like a pod that failed with an
// error, it waits out its backoff in backoffQ. A pod deleted or bound while
// in flight is dropped; one updated is requeued in its newest version.
func (q *Queue) Requeue(p *QueuedPodInfo, cycle int64, unschedulable bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	f, ok := q.inFlight[p.Key]
	if ok {
		delete(q.inFlight, p.Key)
		if f.deleted {
			return
		}
		if f.latest != nil {
			if f.latest.Pod.GetMetadata().GetUid() != f.uid {
				// A new pod under the same name: it owes no backoff.
				now := q.opts.Clock.Now()
				q.active.AddOrUpdate(&QueuedPodInfo{PodInfo: f.latest, Timestamp: now, InitialAttemptTimestamp: now})
				q.cond.Signal()
				return
			}
			p = withPod(p, f.latest)
		}
	}
	if _, queued := q.active.Get(p.Key); queued {
		return
	}
	if _, queued := q.backoff.Get(p.Key); queued {
		return
	}
	if _, queued := q.unschedulable[p.Key]; queued {
		return
	}
	p.Timestamp = q.opts.Clock.Now()
	if unschedulable && q.moveRequestCycle < cycle {
		q.unschedulable[p.Key] = p
		return
	}
	q.backoff.AddOrUpdate(p)
}

// MoveAllToActiveOrBackoffQueue moves every unschedulable pod back: to
// backoffQ while its backoff runs, else to activeQ. The scheduler calls it
// for events that may make pods fit (a node added or freed).
func (q *Queue) MoveAllToActiveOrBackoffQueue(event Event) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for key, p := range q.unschedulable {
		delete(q.unschedulable, key)
		q.moveLocked(p)
	}
	q.moveRequestCycle = q.schedulingCycle
}

func (q *Queue) moveLocked(p *QueuedPodInfo) {
	if q.isBackingOff(p) {
		q.backoff.AddOrUpdate(p)
		return
	}
	p.Timestamp = q.opts.Clock.Now()
	q.active.AddOrUpdate(p)
	q.cond.Signal()
}

// FlushBackoffCompleted moves pods whose backoff ended to activeQ.
func (q *Queue) FlushBackoffCompleted() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.opts.Clock.Now()
	for {
		p := q.backoff.Peek()
		if p == nil || q.backoffExpiry(p).After(now) {
			return
		}
		q.backoff.Pop()
		p.Timestamp = now
		q.active.AddOrUpdate(p)
		q.cond.Signal()
	}
}

// FlushUnschedulableLeftover moves pods that have waited longer than
// MaxUnschedulable back, so a pod is retried even when no event helps.
func (q *Queue) FlushUnschedulableLeftover() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.opts.Clock.Now()
	for key, p := range q.unschedulable {
		if now.Sub(p.Timestamp) > q.opts.MaxUnschedulable {
			delete(q.unschedulable, key)
			q.moveLocked(p)
		}
	}
}

// BackoffDuration is the wait after the given number of attempts:
// InitialBackoff doubled per attempt after the first, at most MaxBackoff.
func (q *Queue) BackoffDuration(attempts int) time.Duration {
	d := q.opts.InitialBackoff
	for i := 1; i < attempts; i++ {
		d *= 2
		if d >= q.opts.MaxBackoff {
			return q.opts.MaxBackoff
		}
	}
	return min(d, q.opts.MaxBackoff)
}

func (q *Queue) backoffExpiry(p *QueuedPodInfo) time.Time {
	return p.Timestamp.Add(q.BackoffDuration(p.Attempts))
}

func (q *Queue) isBackingOff(p *QueuedPodInfo) bool {
	return p.Attempts > 0 && q.backoffExpiry(p).After(q.opts.Clock.Now())
}

// Lengths are the pods in each place, for the pending pods gauge.
type Lengths struct {
	Active, Backoff, Unschedulable, InFlight int
}

// Len reports how many pods are in each place.
func (q *Queue) Len() Lengths {
	q.mu.Lock()
	defer q.mu.Unlock()
	return Lengths{Active: q.active.Len(), Backoff: q.backoff.Len(), Unschedulable: len(q.unschedulable), InFlight: len(q.inFlight)}
}

// Where reports where the pod with key is: "active", "backoff",
// "unschedulable", "inflight", or "" when absent.
func (q *Queue) Where(key string) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.active.Get(key); ok {
		return "active"
	}
	if _, ok := q.backoff.Get(key); ok {
		return "backoff"
	}
	if _, ok := q.unschedulable[key]; ok {
		return "unschedulable"
	}
	if _, ok := q.inFlight[key]; ok {
		return "inflight"
	}
	return ""
}
