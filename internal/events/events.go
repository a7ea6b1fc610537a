// Package events records Kubernetes-style Events about API objects
// ("Scheduled", "FailedScheduling", "Pulling", "Killing"...). Eventf never
// blocks its caller: events go through a bounded buffer to one writer
// goroutine, and are dropped (with a log line) when the buffer is full.
// Repeats of the same event about the same object within ten minutes
// update one Event's count and lastTimestamp instead of creating another,
// as client-go's event correlator does.
//
// It must never fail or slow down the component that records: losing an
// event is better than stalling a controller.
package events

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// Event types.
const (
	Normal  = "Normal"
	Warning = "Warning"
)

const (
	// aggregationWindow is how long a repeat still counts as the same event.
	aggregationWindow = 10 * time.Minute
	// maxCached bounds the events remembered for aggregation.
	maxCached = 4096
	// maxMessage bounds a message, as the Kubernetes recorder does.
	maxMessage = 1024
	// writeTimeout bounds one write to the apiserver.
	writeTimeout = 10 * time.Second
	// flushTimeout bounds writing what is still queued when Run stops.
	flushTimeout  = 2 * time.Second
	defaultBuffer = 1000
)

// EventRecorder is what components depend on, so their tests can use a
// FakeRecorder.
type EventRecorder interface {
	Eventf(obj kinds.Object, eventType, reason, format string, args ...any)
}

// Recorder writes Events to the apiserver. Run must be running for them to
// be written.
type Recorder struct {
	events    *client.ResourceClient[*api.Event]
	component string
	host      string
	log       *slog.Logger
	queue     chan pending
	now       func() time.Time
	dropped   atomic.Int64
	running   atomic.Bool

	// seen is owned by the Run goroutine.
	seen map[aggKey]*aggregate
}

// Option adjusts a Recorder.
type Option func(*Recorder)

// WithLogger sets where dropped or failed events are logged.
func WithLogger(l *slog.Logger) Option { return func(r *Recorder) { r.log = l } }

// WithBufferSize sets how many events may wait for the writer (default
// 1000) before new ones are dropped.
func WithBufferSize(n int) Option { return func(r *Recorder) { r.queue = make(chan pending, n) } }

// NewRecorder makes a recorder whose events name component and host as
// their source.
func NewRecorder(c *client.Client, component, host string, opts ...Option) *Recorder {
	r := &Recorder{
		events: c.Events(), component: component, host: host,
		log: slog.New(slog.DiscardHandler), queue: make(chan pending, defaultBuffer),
		now: time.Now, seen: map[aggKey]*aggregate{},
	}
	for _, o := range opts {
		o(r)
	}
	r.log = r.log.With("recorder", component)
	return r
}

// pending is an event waiting for the writer; it copies what it needs from
// the object, which the caller may change afterwards.
type pending struct {
	ref                  *api.ObjectReference
	typ, reason, message string
	at                   time.Time
}

type aggKey struct {
	uid, kind, namespace, name string
	typ, reason, message       string
}

type aggregate struct {
	event    *api.Event // as last written
	lastSeen time.Time
}

// Eventf records an event about obj. eventType is Normal or Warning; reason
// is a short CamelCase word. It never blocks.
func (r *Recorder) Eventf(obj kinds.Object, eventType, reason, format string, args ...any) {
	info, err := kinds.For(obj)
	if err != nil || obj.GetMetadata().GetName() == "" {
		r.log.Warn("event about an object that is not an API object or has no name", "reason", reason, "err", err)
		return
	}
	m := obj.GetMetadata()
	msg := fmt.Sprintf(format, args...)
	if len(msg) > maxMessage {
		msg = msg[:maxMessage]
	}
	p := pending{
		ref: &api.ObjectReference{
			ApiVersion: info.APIVersion, Kind: info.Kind, Namespace: m.GetNamespace(), Name: m.GetName(),
			Uid: m.GetUid(), ResourceVersion: m.GetResourceVersion(),
		},
		typ: eventType, reason: reason, message: msg, at: r.now(),
	}
	select {
	case r.queue <- p:
	default:
		if n := r.dropped.Add(1); n%100 == 1 {
			r.log.Warn("event buffer full, dropping events", "reason", reason, "object", kinds.Key(obj), "dropped_total", n)
		}
	}
}

// Dropped counts the events lost to a full buffer.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Run writes events until ctx ends, then for up to two seconds more writes
// what is still queued, including the write in progress. Only one Run may
// be active.
func (r *Recorder) Run(ctx context.Context) {
	if !r.running.CompareAndSwap(false, true) {
		panic("events: Run called twice")
	}
	// Writes outlive ctx by flushTimeout, so shutting down does not cut off
	// the event being written nor those just queued.
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(flushTimeout, cancel) })
	defer stop()
	for {
		select {
		case p := <-r.queue:
			r.write(wctx, p)
		case <-ctx.Done():
			for wctx.Err() == nil {
				select {
				case p := <-r.queue:
					r.write(wctx, p)
				default:
					return
				}
			}
			return
		}
	}
}

// RunDuring runs the recorder while work runs: once work returns, the
// recorder flushes what is queued (as Run does when its context ends) and
// RunDuring returns work's error.
func (r *Recorder) RunDuring(ctx context.Context, work func(ctx context.Context) error) error {
	recCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(recCtx)
	}()
	err := work(ctx)
	stop()
	<-done
	return err
}

// write creates the event or, for a repeat inside the window, bumps the
// count of the one already written.
func (r *Recorder) write(ctx context.Context, p pending) {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	key := aggKey{p.ref.Uid, p.ref.Kind, p.ref.Namespace, p.ref.Name, p.typ, p.reason, p.message}
	if a, ok := r.seen[key]; ok && p.at.Sub(a.lastSeen) < aggregationWindow {
		ev, err := r.bump(ctx, a.event, p.at)
		if err == nil {
			a.event, a.lastSeen = ev, p.at
			return
		}
		if !client.IsNotFound(err) {
			r.log.Warn("update event", "event", kinds.Key(a.event), "reason", p.reason, "err", err)
			return
		}
		// The Event is gone (deleted or expired): start a new one.
	}
	ev, err := r.create(ctx, p)
	if err != nil {
		r.log.Warn("create event", "object", p.ref.Namespace+"/"+p.ref.Name, "reason", p.reason, "err", err)
		return
	}
	r.prune(p.at)
	r.seen[key] = &aggregate{event: ev, lastSeen: p.at}
}

func (r *Recorder) create(ctx context.Context, p pending) (*api.Event, error) {
	ns := p.ref.Namespace
	if ns == "" {
		ns = "default" // events about cluster-scoped objects
	}
	base := p.ref.Name
	if len(base) > 253-17 {
		base = base[:253-17]
	}
	ev := &api.Event{
		Metadata:       &api.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s.%016x", base, p.at.UnixNano())},
		InvolvedObject: p.ref, Reason: p.reason, Message: p.message, Type: p.typ,
		Source:         &api.EventSource{Component: r.component, Host: r.host},
		FirstTimestamp: timestamppb.New(p.at), LastTimestamp: timestamppb.New(p.at), Count: 1,
		ReportingComponent: r.component, ReportingInstance: r.host,
	}
	out, err := r.events.Create(ctx, ev)
	if client.IsAlreadyExists(err) {
		ev.Metadata.Name = fmt.Sprintf("%s.%016x", base, rand.Uint64())
		out, err = r.events.Create(ctx, ev)
	}
	return out, err
}

// bump adds one to the event's count, re-reading it after a conflict (some
// other writer touched it).
func (r *Recorder) bump(ctx context.Context, ev *api.Event, at time.Time) (*api.Event, error) {
	for attempt := 0; ; attempt++ {
		upd := proto.Clone(ev).(*api.Event)
		upd.Count++
		upd.LastTimestamp = timestamppb.New(at)
		out, err := r.events.Update(ctx, upd)
		if !client.IsConflict(err) || attempt == 2 {
			return out, err
		}
		if ev, err = r.events.Get(ctx, ev.Metadata.Namespace, ev.Metadata.Name); err != nil {
			return nil, err
		}
	}
}

// prune keeps the aggregation cache bounded: expired entries go first,
// then arbitrary ones.
func (r *Recorder) prune(now time.Time) {
	if len(r.seen) < maxCached {
		return
	}
	for k, a := range r.seen {
		if now.Sub(a.lastSeen) >= aggregationWindow {
			delete(r.seen, k)
		}
	}
	for k := range r.seen {
		if len(r.seen) < maxCached*3/4 {
			break
		}
		delete(r.seen, k)
	}
}
