// Package watchcache serves List and Watch for one resource from memory,
// fed by a single etcd watch, so a thousand watchers cost etcd nothing.
//
// It keeps the current objects and a ring of recent events. A watch resumes
// from any revision still in the ring; older ones are "expired". A watcher
// that cannot keep up is cut off instead of stalling the others. The cache
// must never write to etcd.
package watchcache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/internal/selectors"
	"github.com/skiff-dev/skiff/proto/api"
)

// Errors returned to watchers.
var (
	ErrExpired  = errors.New("resourceVersion is too old: list again and watch from the list's resourceVersion")
	ErrTooSlow  = errors.New("watcher fell behind and was cut off: watch again from the last resourceVersion seen")
	ErrReset    = errors.New("watch cache was reset: list again")
	ErrNotFresh = errors.New("watch cache did not catch up with etcd in time")
)

// Event is one change, decoded once and shared by every watcher.
type Event struct {
	Type    api.WatchEvent_Type
	Key     string
	Object  kinds.Object // the new state; for DELETED the last state
	Prev    kinds.Object // the state before, nil for ADDED
	Encoded []byte       // Object as protobuf, resourceVersion included
	Rev     int64

	wireOnce sync.Once
	wire     any
}

// Wire returns encode(e), computed once however many watchers send e: the
// server encodes an event for the wire once, not once per watcher. The
// result is shared and must not be changed.
func (e *Event) Wire(encode func(*Event) any) any {
	e.wireOnce.Do(func() { e.wire = encode(e) })
	return e.wire
}

// as is a copy of e with another type, for a watcher whose selector sees
// the change differently.
func (e *Event) as(t api.WatchEvent_Type) *Event {
	return &Event{Type: t, Key: e.Key, Object: e.Object, Prev: e.Prev, Encoded: e.Encoded, Rev: e.Rev}
}

type entry struct {
	obj     kinds.Object
	stored  []byte
	encoded []byte
	rev     int64
}

// Options tune a cache.
type Options struct {
	// Capacity is how many events the ring keeps for resuming watches.
	Capacity int
	// WatcherBuffer is how many events may wait for one slow watcher.
	WatcherBuffer int
	// FreshTimeout bounds how long a consistent read waits for the cache.
	FreshTimeout time.Duration
	// IgnoreProgressNotify distrusts etcd's progress notifications, whose
	// revision older servers (before 3.4.25 and 3.5.8) may send ahead of
	// events not yet delivered. An idle kind then cannot prove it is fresh,
	// and consistent reads fall back to etcd (ErrNotFresh).
	IgnoreProgressNotify bool
}

func (o *Options) defaults() {
	if o.Capacity <= 0 {
		o.Capacity = 100_000
	}
	if o.WatcherBuffer <= 0 {
		o.WatcherBuffer = 4096
	}
	if o.FreshTimeout <= 0 {
		o.FreshTimeout = 5 * time.Second
	}
}

// Cache is the watch cache of one resource.
type Cache struct {
	info   *kinds.Info
	cli    *clientv3.Client
	prefix string
	opts   Options
	log    *slog.Logger

	mu       sync.Mutex
	objects  map[string]*entry
	ring     []*Event
	ringHead int // index of the oldest event
	ringLen  int
	rev      int64 // everything up to rev has been applied
	since    int64 // the ring holds every event after since
	revSeen  chan struct{}
	watchers map[*Watcher]struct{}
	ready    chan struct{}
}

// New makes a cache for the resource stored under prefix. Run fills it.
func New(info *kinds.Info, cli *clientv3.Client, prefix string, opts Options, log *slog.Logger) *Cache {
	opts.defaults()
	return &Cache{
		info: info, cli: cli, prefix: prefix, opts: opts,
		log:      log.With("resource", info.Resource),
		objects:  map[string]*entry{},
		ring:     make([]*Event, opts.Capacity),
		revSeen:  make(chan struct{}),
		watchers: map[*Watcher]struct{}{},
		ready:    make(chan struct{}),
	}
}

// Ready is closed once the cache has its first full list.
func (c *Cache) Ready() <-chan struct{} { return c.ready }

// Run lists and watches etcd until ctx ends, re-listing when etcd compacted
// the history the cache needed.
func (c *Cache) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := c.listAndWatch(ctx)
		if ctx.Err() != nil {
			break
		}
		c.log.Warn("watch cache re-listing", "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	c.mu.Lock()
	for w := range c.watchers {
		c.stopLocked(w, context.Canceled)
	}
	c.mu.Unlock()
	return nil
}

func (c *Cache) listAndWatch(ctx context.Context) error {
	resp, err := c.cli.Get(ctx, c.prefix, clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("list %s: %w", c.prefix, err)
	}
	objects := make(map[string]*entry, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		e, err := c.decode(kv.Value, kv.ModRevision)
		if err != nil {
			c.log.Error("skipping undecodable object", "key", string(kv.Key), "err", err)
			continue
		}
		objects[string(kv.Key)] = e
	}
	listRev := resp.Header.Revision
	c.mu.Lock()
	resetting := c.rev != 0
	if resetting {
		// History between the old and new list is lost: watchers must re-list.
		for w := range c.watchers {
			c.stopLocked(w, ErrReset)
		}
		c.ringLen = 0
	}
	c.objects = objects
	c.since = listRev
	c.advanceLocked(listRev)
	c.mu.Unlock()
	select {
	case <-c.ready:
	default:
		close(c.ready)
	}

	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := c.cli.Watch(wctx, c.prefix, clientv3.WithPrefix(), clientv3.WithRev(listRev+1), clientv3.WithProgressNotify())
	for resp := range wch {
		if err := resp.Err(); err != nil {
			return fmt.Errorf("watch %s: %w", c.prefix, err)
		}
		if resp.IsProgressNotify() {
			if !c.opts.IgnoreProgressNotify {
				c.mu.Lock()
				c.advanceLocked(resp.Header.Revision)
				c.mu.Unlock()
			}
			continue
		}
		c.apply(resp.Events)
	}
	return fmt.Errorf("watch %s ended", c.prefix)
}

func (c *Cache) decode(stored []byte, rev int64) (*entry, error) {
	obj, encoded, err := Decode(c.info, stored, rev)
	if err != nil {
		return nil, err
	}
	return &entry{obj: obj, stored: stored, encoded: encoded, rev: rev}, nil
}

// Decode turns stored bytes written at rev into the object and its
// encoding as served, resourceVersion included.
func Decode(info *kinds.Info, stored []byte, rev int64) (kinds.Object, []byte, error) {
	obj := info.New()
	if err := proto.Unmarshal(stored, obj); err != nil {
		return nil, nil, err
	}
	kinds.Meta(obj).ResourceVersion = strconv.FormatInt(rev, 10)
	return obj, WithResourceVersion(stored, rev), nil
}

func (c *Cache) apply(evs []*clientv3.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range evs {
		key := string(ev.Kv.Key)
		rev := ev.Kv.ModRevision
		prev := c.objects[key]
		var out *Event
		switch ev.Type {
		case clientv3.EventTypePut:
			e, err := c.decode(ev.Kv.Value, rev)
			if err != nil {
				c.log.Error("skipping undecodable event", "key", key, "err", err)
				continue
			}
			c.objects[key] = e
			out = &Event{Type: api.WatchEvent_ADDED, Key: key, Object: e.obj, Encoded: e.encoded, Rev: rev}
			if prev != nil {
				out.Type = api.WatchEvent_MODIFIED
				out.Prev = prev.obj
			}
		case clientv3.EventTypeDelete:
			if prev == nil {
				continue
			}
			delete(c.objects, key)
			last := proto.Clone(prev.obj).(kinds.Object)
			kinds.Meta(last).ResourceVersion = fmt.Sprint(rev)
			out = &Event{Type: api.WatchEvent_DELETED, Key: key, Object: last, Prev: prev.obj,
				Encoded: WithResourceVersion(prev.stored, rev), Rev: rev}
		}
		c.pushLocked(out)
		for w := range c.watchers {
			c.sendLocked(w, out)
		}
	}
	if n := len(evs); n > 0 {
		c.advanceLocked(evs[n-1].Kv.ModRevision)
	}
}

func (c *Cache) pushLocked(ev *Event) {
	capacity := len(c.ring)
	if c.ringLen == capacity {
		c.since = c.ring[c.ringHead].Rev
		c.ringHead = (c.ringHead + 1) % capacity
		c.ringLen--
	}
	c.ring[(c.ringHead+c.ringLen)%capacity] = ev
	c.ringLen++
}

func (c *Cache) advanceLocked(rev int64) {
	if rev <= c.rev {
		return
	}
	c.rev = rev
	close(c.revSeen)
	c.revSeen = make(chan struct{})
}

// Revision is the latest revision the cache has applied.
func (c *Cache) Revision() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rev
}

// WaitFresh blocks until the cache has applied etcd's current revision, so
// reads from the cache are as fresh as reads from etcd.
func (c *Cache) WaitFresh(ctx context.Context) error {
	select {
	case <-c.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	resp, err := c.cli.Get(ctx, c.prefix+"\x00", clientv3.WithCountOnly())
	if err != nil {
		return fmt.Errorf("read etcd revision: %w", err)
	}
	return c.waitFor(ctx, resp.Header.Revision)
}

func (c *Cache) waitFor(ctx context.Context, rev int64) error {
	deadline := time.NewTimer(c.opts.FreshTimeout)
	defer deadline.Stop()
	asked := false
	for {
		c.mu.Lock()
		cur, changed := c.rev, c.revSeen
		c.mu.Unlock()
		if cur >= rev {
			return nil
		}
		if !asked {
			// Make etcd report its revision on our watch even if this
			// resource did not change.
			// The request must carry the watch's metadata to reach its
			// gRPC stream.
			if err := c.cli.RequestProgress(clientv3.WithRequireLeader(ctx)); err != nil {
				c.log.Debug("request progress", "err", err)
			}
			asked = true
		}
		select {
		case <-changed:
		case <-time.After(50 * time.Millisecond):
			asked = false
		case <-deadline.C:
			return fmt.Errorf("%w: at %d, want %d", ErrNotFresh, cur, rev)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Get returns the cached object at key, freshly consistent with etcd.
func (c *Cache) Get(ctx context.Context, key string) (kinds.Object, []byte, bool, error) {
	if err := c.WaitFresh(ctx); err != nil {
		return nil, nil, false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.objects[key]
	if !ok {
		return nil, nil, false, nil
	}
	return e.obj, e.encoded, true, nil
}

// Peek returns the cached object at key as the cache has it now, without
// waiting to be as fresh as etcd.
func (c *Cache) Peek(key string) (kinds.Object, bool) {
	obj, _, ok := c.PeekRevision(key)
	return obj, ok
}

// PeekRevision is Peek with the revision that last wrote the object. The
// object is shared: clone it before changing it.
func (c *Cache) PeekRevision(key string) (kinds.Object, int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.objects[key]
	if !ok {
		return nil, 0, false
	}
	return e.obj, e.rev, true
}

// Snapshot returns every cached object as the cache has it now.
func (c *Cache) Snapshot() []kinds.Object {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]kinds.Object, 0, len(c.objects))
	for _, e := range c.objects {
		out = append(out, e.obj)
	}
	return out
}

// Item is one listed object.
type Item struct {
	Object  kinds.Object
	Encoded []byte
}

// List returns the objects under keyPrefix that match sel, sorted by key,
// and the revision they are current at. It waits until the cache is as
// fresh as etcd.
func (c *Cache) List(ctx context.Context, keyPrefix string, sel selectors.Selector) ([]Item, int64, error) {
	if err := c.WaitFresh(ctx); err != nil {
		return nil, 0, err
	}
	c.mu.Lock()
	keys := c.matchingKeysLocked(keyPrefix, sel)
	items := make([]Item, len(keys))
	for i, k := range keys {
		e := c.objects[k]
		items[i] = Item{Object: e.obj, Encoded: e.encoded}
	}
	rev := c.rev
	c.mu.Unlock()
	return items, rev, nil
}

// matchingKeysLocked lists, sorted, the keys under keyPrefix whose objects
// sel matches.
func (c *Cache) matchingKeysLocked(keyPrefix string, sel selectors.Selector) []string {
	keys := make([]string, 0, len(c.objects))
	for k, e := range c.objects {
		if strings.HasPrefix(k, keyPrefix) && sel.Matches(e.obj) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// Watcher receives the events of one watch.
type Watcher struct {
	keyPrefix string
	// minRev: events at or before it were already seen by the client.
	minRev int64
	sel    selectors.Selector
	ch     chan *Event
	done   chan struct{}
	err    error
	cache  *Cache
}

// Events delivers events in revision order.
func (w *Watcher) Events() <-chan *Event { return w.ch }

// Done is closed when the cache cut the watcher off; Err says why.
func (w *Watcher) Done() <-chan struct{} { return w.done }

// Err is why the watcher was stopped.
func (w *Watcher) Err() error {
	<-w.done
	return w.err
}

// Stop unregisters the watcher.
func (w *Watcher) Stop() {
	w.cache.mu.Lock()
	defer w.cache.mu.Unlock()
	w.cache.stopLocked(w, context.Canceled)
}

func (c *Cache) stopLocked(w *Watcher, err error) {
	if _, ok := c.watchers[w]; !ok {
		return
	}
	delete(c.watchers, w)
	w.err = err
	close(w.done)
}

// Watch registers a watcher for objects under keyPrefix matching sel. With
// fromRev 0 it first returns the current objects as ADDED events; otherwise
// every event after fromRev. It returns the initial events to send before
// reading Events(), and the revision the watch is current at.
func (c *Cache) Watch(ctx context.Context, keyPrefix string, sel selectors.Selector, fromRev int64) (*Watcher, []*Event, int64, error) {
	select {
	case <-c.ready:
	case <-ctx.Done():
		return nil, nil, 0, ctx.Err()
	}
	// A watch from a version needs no fresh cache: events up to fromRev
	// are skipped whenever they arrive. A watch from "now" starts from the
	// freshest snapshot the cache can prove, or its own if it cannot.
	if fromRev == 0 {
		if err := c.WaitFresh(ctx); err != nil && !errors.Is(err, ErrNotFresh) {
			return nil, nil, 0, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &Watcher{keyPrefix: keyPrefix, sel: sel, minRev: fromRev, ch: make(chan *Event, c.opts.WatcherBuffer), done: make(chan struct{}), cache: c}
	var initial []*Event
	if fromRev == 0 {
		keys := c.matchingKeysLocked(keyPrefix, sel)
		for _, k := range keys {
			e := c.objects[k]
			initial = append(initial, &Event{Type: api.WatchEvent_ADDED, Key: k, Object: e.obj, Encoded: e.encoded, Rev: e.rev})
		}
	} else {
		if fromRev < c.since {
			return nil, nil, 0, fmt.Errorf("%w (requested %d, oldest %d)", ErrExpired, fromRev, c.since)
		}
		for i := 0; i < c.ringLen; i++ {
			ev := c.ring[(c.ringHead+i)%len(c.ring)]
			if ev.Rev <= fromRev {
				continue
			}
			if out := w.filter(ev); out != nil {
				initial = append(initial, out)
			}
		}
	}
	c.watchers[w] = struct{}{}
	return w, initial, max(c.rev, fromRev), nil
}

// filter turns a cache event into the event this watcher should see: an
// object that stops matching its selector arrives as DELETED, one that
// starts matching as ADDED.
func (w *Watcher) filter(ev *Event) *Event {
	if !strings.HasPrefix(ev.Key, w.keyPrefix) {
		return nil
	}
	if w.sel.Empty() {
		return ev
	}
	cur := w.sel.Matches(ev.Object)
	prev := ev.Prev != nil && w.sel.Matches(ev.Prev)
	switch ev.Type {
	case api.WatchEvent_ADDED:
		if cur {
			return ev
		}
	case api.WatchEvent_MODIFIED:
		switch {
		case cur && prev:
			return ev
		case cur:
			return ev.as(api.WatchEvent_ADDED)
		case prev:
			return ev.as(api.WatchEvent_DELETED)
		}
	case api.WatchEvent_DELETED:
		if prev {
			return ev
		}
	}
	return nil
}

func (c *Cache) sendLocked(w *Watcher, ev *Event) {
	if ev.Rev <= w.minRev {
		return
	}
	out := w.filter(ev)
	if out == nil {
		return
	}
	select {
	case w.ch <- out:
	default:
		c.log.Warn("cutting off slow watcher", "prefix", w.keyPrefix, "buffered", len(w.ch))
		c.stopLocked(w, ErrTooSlow)
	}
}
