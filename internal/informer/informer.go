// Package informer is Skiff's informer: a cache of one kind kept current by
// list and watch through the apiserver, with indexes and event handlers, in
// the manner of client-go's SharedIndexInformer.
//
// The informer lists, watches from the list's resourceVersion, re-lists when
// the apiserver says that version expired (turning the difference into
// add/update/delete events), reconnects with backoff from the last version
// it saw, and replays every object as an update each ResyncPeriod. Handlers
// run one at a time, in event order, on a goroutine of their own, so a slow
// handler never stalls the watch.
//
// It must never write to the apiserver, and never hand out a copy it
// expects callers to mutate: cached objects are shared and read-only.
package informer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skiff-dev/skiff/internal/backoff"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
)

// Options select what the informer caches and how.
type Options struct {
	// Namespace limits the cache to one namespace; empty caches all.
	Namespace     string
	LabelSelector string
	FieldSelector string
	// ResyncPeriod replays every cached object to OnUpdate(obj, obj) this
	// often, so level-based controllers revisit everything; 0 never does.
	ResyncPeriod time.Duration
	Logger       *slog.Logger
}

// Handler receives changes to the cache. Any field may be nil. The objects
// are shared: never mutate them.
type Handler[T kinds.Object] struct {
	OnAdd func(obj T)
	// OnUpdate gets the object before and after; on a resync both are the
	// same object.
	OnUpdate func(oldObj, newObj T)
	// OnDelete gets the last state the informer saw.
	OnDelete func(obj T)
}

// Defaults of the reconnect backoff and of the watch lifetime. A watch is
// re-opened after a random 5–10 minutes, as client-go does, so a stream to
// an apiserver that vanished without a reset does not hang forever.
const (
	defaultBackoffInitial = 250 * time.Millisecond
	defaultBackoffMax     = 30 * time.Second
	minWatchTimeout       = 5 * time.Minute
)

type op int

const (
	opAdd op = iota
	opUpdate
	opDelete
	opSynced // the initial list has been delivered
)

// notification is one handler call waiting its turn; it goes to handlers
// [from, to): the handlers registered when it was queued, or one new
// handler catching up.
type notification[T kinds.Object] struct {
	op       op
	old, obj T
	from, to int
}

// Informer caches one kind. Create it with New, add handlers and indexes,
// then Run it.
type Informer[T kinds.Object] struct {
	rc   *client.ResourceClient[T]
	opts Options
	log  *slog.Logger

	backoffInitial, backoffMax time.Duration
	watchTimeout               time.Duration // randomised up to 2x

	started  atomic.Bool
	synced   atomic.Bool
	syncedCh chan struct{}
	wake     chan struct{}

	mu       sync.RWMutex // guards everything below, and the store
	s        *store[T]
	handlers []Handler[T]
	queue    []notification[T]
	listed   bool
	rv       string
}

// New makes an informer for the kind of rc.
func New[T kinds.Object](rc *client.ResourceClient[T], opts Options) *Informer[T] {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("informer", rc.Info().Resource)
	if opts.Namespace != "" {
		log = log.With("namespace", opts.Namespace)
	}
	return &Informer[T]{
		rc: rc, opts: opts, log: log,
		backoffInitial: defaultBackoffInitial, backoffMax: defaultBackoffMax,
		watchTimeout: minWatchTimeout,
		syncedCh:     make(chan struct{}),
		wake:         make(chan struct{}, 1),
		s:            newStore[T](),
	}
}

// AddEventHandler adds a handler. Added after Run has started, it first
// gets OnAdd for every object already cached.
func (i *Informer[T]) AddEventHandler(h Handler[T]) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.handlers = append(i.handlers, h)
	n := len(i.handlers)
	for _, obj := range i.s.items {
		i.enqueue(notification[T]{op: opAdd, obj: obj, from: n - 1, to: n})
	}
}

// AddIndex adds an index to the cache. The built-in ones are
// IndexNamespace, IndexNodeName and IndexOwnerUID.
func (i *Informer[T]) AddIndex(name string, fn func(T) []string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.s.addIndex(name, fn)
}

// Lister reads the cache.
func (i *Informer[T]) Lister() *Lister[T] { return &Lister[T]{mu: &i.mu, s: i.s} }

// HasSynced reports that the first list is cached and every handler has
// been given its objects.
func (i *Informer[T]) HasSynced() bool { return i.synced.Load() }

// WaitForSync blocks until HasSynced or ctx ends, and reports HasSynced.
func (i *Informer[T]) WaitForSync(ctx context.Context) bool {
	select {
	case <-i.syncedCh:
		return true
	case <-ctx.Done():
		return i.HasSynced()
	}
}

// LastSyncResourceVersion is the latest resourceVersion the cache reflects.
func (i *Informer[T]) LastSyncResourceVersion() string {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.rv
}

// Run fills and maintains the cache and calls the handlers until ctx ends.
// It returns once every goroutine it started has stopped.
func (i *Informer[T]) Run(ctx context.Context) {
	if !i.started.CompareAndSwap(false, true) {
		panic("informer: Run called twice")
	}
	var wg sync.WaitGroup
	wg.Go(func() { i.dispatch(ctx) })
	if i.opts.ResyncPeriod > 0 {
		wg.Go(func() { i.resync(ctx) })
	}
	i.reflect(ctx)
	wg.Wait()
}

// reflect is the list-and-watch loop.
func (i *Informer[T]) reflect(ctx context.Context) {
	bo := backoff.Backoff{Initial: i.backoffInitial, Max: i.backoffMax}
	rv := ""
	for ctx.Err() == nil {
		if rv == "" {
			listRV, err := i.relist(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				d := bo.Next()
				i.log.Warn("list failed", "err", err, "retry_in", d)
				_ = backoff.Sleep(ctx, d)
				continue
			}
			rv = listRV
			bo.Reset()
		}
		newRV, progressed, err := i.watch(ctx, rv)
		rv = newRV
		if progressed {
			bo.Reset()
		}
		switch {
		case ctx.Err() != nil:
			return
		case err == nil: // the watch reached its timeout: re-open it at once
		case client.IsExpired(err):
			i.log.Info("watch expired, re-listing", "rv", rv)
			rv = ""
			if !progressed {
				_ = backoff.Sleep(ctx, bo.Next())
			}
		default:
			d := bo.Next()
			if errors.Is(err, io.EOF) {
				i.log.Info("watch closed by the server, re-watching", "rv", rv, "retry_in", d)
			} else {
				i.log.Warn("watch failed, re-watching", "rv", rv, "err", err, "retry_in", d)
			}
			_ = backoff.Sleep(ctx, d)
		}
	}
}

// relist replaces the cache with a fresh list and queues the difference as
// events. It returns the list's resourceVersion.
func (i *Informer[T]) relist(ctx context.Context) (string, error) {
	objs, rv, err := i.rc.List(ctx, i.opts.Namespace, client.ListOptions{
		LabelSelector: i.opts.LabelSelector, FieldSelector: i.opts.FieldSelector,
	})
	if err != nil {
		return "", err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	seen := make(map[string]struct{}, len(objs))
	for _, obj := range objs {
		seen[kinds.Key(obj)] = struct{}{}
		i.upsert(obj)
	}
	for key := range i.s.items {
		if _, ok := seen[key]; !ok {
			i.remove(key)
		}
	}
	i.rv = rv
	if !i.listed {
		i.listed = true
		i.enqueue(notification[T]{op: opSynced})
	}
	i.log.Debug("listed", "objects", len(objs), "rv", rv)
	return rv, nil
}

// watch follows one watch stream from rv until it fails, and returns the
// last version seen and whether any event arrived. A nil error means the
// watch reached its lifetime.
func (i *Informer[T]) watch(ctx context.Context, rv string) (string, bool, error) {
	timeout := i.watchTimeout + rand.N(i.watchTimeout)
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w, err := i.rc.Watch(wctx, i.opts.Namespace, client.ListOptions{
		LabelSelector: i.opts.LabelSelector, FieldSelector: i.opts.FieldSelector,
		ResourceVersion: rv, AllowBookmarks: true,
	})
	if err != nil {
		return rv, false, err
	}
	progressed := false
	for {
		ev, err := w.Next()
		if err != nil {
			if wctx.Err() != nil && ctx.Err() == nil {
				return rv, progressed, nil
			}
			return rv, progressed, err
		}
		progressed = true
		if ev.Type != client.Bookmark && ev.Object.GetMetadata() == nil {
			i.log.Warn("watch event without an object", "type", ev.Type, "rv", ev.ResourceVersion)
			continue
		}
		if ev.ResourceVersion != "" {
			rv = ev.ResourceVersion
		} else if ev.Type != client.Bookmark {
			rv = ev.Object.GetMetadata().GetResourceVersion()
		}
		i.mu.Lock()
		switch ev.Type {
		case client.Added, client.Modified:
			i.upsert(ev.Object)
		case client.Deleted:
			i.remove(kinds.Key(ev.Object))
		case client.Bookmark:
		default:
			i.log.Warn("unknown watch event type", "type", ev.Type)
		}
		i.rv = rv
		i.mu.Unlock()
	}
}

// upsert caches obj and queues an add, or an update when it changed.
// An object under the same key with another uid is another object: the
// old one was deleted and a namesake created while the informer was not
// watching (a re-list after a reconnect), so handlers get the delete of
// the old one and the add of the new one — the garbage collector must
// learn that the old owner is gone even though its name is taken again.
// Callers hold i.mu.
func (i *Informer[T]) upsert(obj T) {
	old, existed := i.s.put(obj)
	switch {
	case !existed:
		i.enqueue(notification[T]{op: opAdd, obj: obj, to: len(i.handlers)})
	case old.GetMetadata().GetUid() != obj.GetMetadata().GetUid():
		i.enqueue(notification[T]{op: opDelete, obj: old, to: len(i.handlers)})
		i.enqueue(notification[T]{op: opAdd, obj: obj, to: len(i.handlers)})
	case old.GetMetadata().GetResourceVersion() != obj.GetMetadata().GetResourceVersion():
		i.enqueue(notification[T]{op: opUpdate, old: old, obj: obj, to: len(i.handlers)})
	}
}

// remove drops key from the cache and queues a delete. Callers hold i.mu.
func (i *Informer[T]) remove(key string) {
	if old, existed := i.s.remove(key); existed {
		i.enqueue(notification[T]{op: opDelete, obj: old, to: len(i.handlers)})
	}
}

// enqueue queues a notification for the dispatcher. Callers hold i.mu, so
// the queue order is the order of changes to the cache.
func (i *Informer[T]) enqueue(n notification[T]) {
	i.queue = append(i.queue, n)
	select {
	case i.wake <- struct{}{}:
	default:
	}
}

// dispatch calls the handlers, one notification at a time, in queue order.
func (i *Informer[T]) dispatch(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-i.wake:
		}
		for {
			i.mu.Lock()
			batch := i.queue
			i.queue = nil
			handlers := slices.Clone(i.handlers)
			i.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			for _, n := range batch {
				if ctx.Err() != nil {
					return
				}
				i.deliver(handlers, n)
			}
		}
	}
}

func (i *Informer[T]) deliver(handlers []Handler[T], n notification[T]) {
	if n.op == opSynced {
		if i.synced.CompareAndSwap(false, true) {
			close(i.syncedCh)
		}
		return
	}
	for _, h := range handlers[n.from:n.to] {
		switch {
		case n.op == opAdd && h.OnAdd != nil:
			h.OnAdd(n.obj)
		case n.op == opUpdate && h.OnUpdate != nil:
			h.OnUpdate(n.old, n.obj)
		case n.op == opDelete && h.OnDelete != nil:
			h.OnDelete(n.obj)
		}
	}
}

// resync queues OnUpdate(obj, obj) for every cached object each period.
func (i *Informer[T]) resync(ctx context.Context) {
	t := time.NewTicker(i.opts.ResyncPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		i.mu.Lock()
		for _, obj := range i.s.items {
			i.enqueue(notification[T]{op: opUpdate, old: obj, obj: obj, to: len(i.handlers)})
		}
		i.mu.Unlock()
	}
}
