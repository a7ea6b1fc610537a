// Package garbagecollector deletes objects whose owners are gone, following
// ownerReferences by uid, and carries out the Foreground and Orphan
// deletion policies: an owner held by the foregroundDeletion finalizer
// loses it once its blocking dependents are gone; one held by the orphan
// finalizer loses it once no dependent points at it any more.
//
// Delete events drive it; every informer resync backs them up: an object
// whose owner's uid is missing from the owner kind's cache goes back on
// the queue, so a delete the collector never saw (a watch gap, a namesake
// recreated in the owner's place) cannot leave orphans for good.
//
// It must never delete an object while one of its owners still exists:
// an owner missing from the cache is confirmed gone by a live read first.
package garbagecollector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/controller-manager/controllerutil"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// Name is the controller's name in logs, metrics and flags.
const Name = "garbagecollector"

// Finalizers of the deletion policies, as the apiserver sets them.
const (
	FinalizerForeground = "foregroundDeletion"
	FinalizerOrphan     = "orphan"
)

// absentCacheLimit bounds the memory of owners known to be gone; uids are
// never reused, so forgetting only costs a live read.
const absentCacheLimit = 10000

// Config tunes the collector.
type Config struct {
	Workers int
}

// Collector is the garbage collector.
type Collector struct {
	client  *client.Client
	sources map[string]Source // by resource
	byKind  map[string]Source // by Kind, as ownerReferences name it
	deletes controllerutil.Queue
	owners  controllerutil.Queue
	logger  *slog.Logger
	metrics *controllerutil.Metrics
	cfg     Config

	mu     sync.Mutex
	absent map[string]bool // owner uids confirmed gone
}

// New wires the collector to the sources' informers; call before they run.
func New(c *client.Client, logger *slog.Logger, m *controllerutil.Metrics, cfg Config, sources ...Source) *Collector {
	gc := &Collector{
		client:  c,
		sources: map[string]Source{},
		byKind:  map[string]Source{},
		deletes: controllerutil.NewQueue(Name+"_attempt_to_delete", m),
		owners:  controllerutil.NewQueue(Name+"_owners", m),
		logger:  logger.With("controller", Name),
		metrics: m,
		cfg:     cfg,
		absent:  map[string]bool{},
	}
	for _, s := range sources {
		gc.sources[s.info().Resource] = s
		gc.byKind[s.info().Kind] = s
		s.register(gc)
	}
	return gc
}

// Run waits for every source's cache, then collects until ctx ends.
func (gc *Collector) Run(ctx context.Context) {
	for _, s := range gc.sources {
		if !s.synced(ctx) {
			gc.deletes.ShutDown()
			gc.owners.ShutDown()
			return
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		w := &controllerutil.Worker{Name: Name + "_attempt_to_delete", Queue: gc.deletes, Sync: gc.syncDependent, Logger: gc.logger, Metrics: gc.metrics}
		w.Run(ctx, gc.cfg.Workers)
	})
	wg.Go(func() {
		w := &controllerutil.Worker{Name: Name + "_owners", Queue: gc.owners, Sync: gc.syncOwner, Logger: gc.logger, Metrics: gc.metrics}
		w.Run(ctx, gc.cfg.Workers)
	})
	wg.Wait()
}

// itemKey names an object across kinds: "pods/default/web-1", "nodes/n1".
func itemKey(info *kinds.Info, obj kinds.Object) string {
	return info.Resource + "/" + kinds.Key(obj)
}

func splitItemKey(key string) (resource, namespace, name string) {
	resource, rest, _ := strings.Cut(key, "/")
	namespace, name = kinds.SplitKey(rest)
	return resource, namespace, name
}

// ownerKey names the object a reference points at, seen from a dependent
// in namespace ns; ok is false for kinds Skiff does not serve.
func ownerKey(ref *api.OwnerReference, ns string) (string, *kinds.Info, bool) {
	info, ok := kinds.Lookup(ref.GetKind())
	if !ok {
		return "", nil, false
	}
	if !info.Namespaced {
		ns = ""
	}
	if ns == "" {
		return info.Resource + "/" + ref.GetName(), info, true
	}
	return info.Resource + "/" + ns + "/" + ref.GetName(), info, true
}

func (gc *Collector) observe(info *kinds.Info, old, cur kinds.Object) {
	m := cur.GetMetadata()
	key := itemKey(info, cur)
	if len(m.GetOwnerReferences()) > 0 &&
		(old == nil || !ownerRefsEqual(old.GetMetadata().GetOwnerReferences(), m.GetOwnerReferences())) {
		gc.deletes.Add(key)
	}
	if m.GetDeletionTimestamp() != nil &&
		(controllerutil.HasFinalizer(m, FinalizerForeground) || controllerutil.HasFinalizer(m, FinalizerOrphan)) {
		gc.owners.Add(key)
	}
	// A dependent that starts going away or changes owners may be what a
	// foreground deletion waits for.
	if old != nil {
		gc.enqueueOwners(old)
	}
	gc.enqueueOwners(cur)
}

func (gc *Collector) observeDelete(info *kinds.Info, obj kinds.Object) {
	gc.enqueueOwners(obj)
	uid := obj.GetMetadata().GetUid()
	for _, s := range gc.sources {
		for _, dep := range s.dependents(uid) {
			gc.deletes.Add(itemKey(s.info(), dep))
		}
	}
}

func (gc *Collector) enqueueOwners(obj kinds.Object) {
	for _, ref := range obj.GetMetadata().GetOwnerReferences() {
		if key, _, ok := ownerKey(ref, obj.GetMetadata().GetNamespace()); ok {
			if _, _, name := splitItemKey(key); name != "" {
				gc.owners.Add(key)
			}
		}
	}
}

func ownerRefsEqual(a, b []*api.OwnerReference) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// ownerState is what the collector knows of one owner.
type ownerState int

const (
	ownerPresent ownerState = iota
	ownerAbsent
	// ownerDeletingForeground: the owner waits for its dependents.
	ownerDeletingForeground
)

func (gc *Collector) ownerState(ctx context.Context, ref *api.OwnerReference, ns string) (ownerState, error) {
	gc.mu.Lock()
	gone := gc.absent[ref.GetUid()]
	gc.mu.Unlock()
	if gone {
		return ownerAbsent, nil
	}
	key, info, ok := ownerKey(ref, ns)
	if !ok {
		return ownerPresent, nil // a kind we cannot look up is never assumed gone
	}
	if o, _ := gc.cachedOwner(ref, ns); o != nil {
		return stateOf(o), nil
	}
	_, ons, name := splitItemKey(key)
	// Missing from the cache or a different uid there: the cache may lag,
	// so ask the apiserver before deleting anything.
	o, err := client.ForKind(gc.client, info).Get(ctx, ons, name)
	switch {
	case client.IsNotFound(err):
	case err != nil:
		return ownerPresent, fmt.Errorf("look up owner %s: %w", key, err)
	case o.GetMetadata().GetUid() == ref.GetUid():
		return stateOf(o), nil
	}
	gc.mu.Lock()
	if len(gc.absent) >= absentCacheLimit {
		clear(gc.absent)
	}
	gc.absent[ref.GetUid()] = true
	gc.mu.Unlock()
	return ownerAbsent, nil
}

// cachedOwner finds the owner ref points at in the cache of its kind: the
// object when the cache holds it under ref's uid (a namesake of another
// uid is another owner), else nil. cached is false when the collector has
// no cache of that kind, so only a live read could tell.
func (gc *Collector) cachedOwner(ref *api.OwnerReference, ns string) (owner kinds.Object, cached bool) {
	s, ok := gc.byKind[ref.GetKind()]
	if !ok {
		// Not the Kind's exact name: a spelling kinds.Lookup accepts.
		info, known := kinds.Lookup(ref.GetKind())
		if !known {
			return nil, false
		}
		if s, ok = gc.sources[info.Resource]; !ok {
			return nil, false
		}
	}
	if !s.info().Namespaced {
		ns = ""
	}
	if o, ok := s.get(ns, ref.GetName()); ok && o.GetMetadata().GetUid() == ref.GetUid() {
		return o, true
	}
	return nil, true
}

// recheck is the safety net behind the delete events, run on every
// informer resync: obj goes back on the attempt-to-delete queue when the
// cache of one of its owners' kinds holds no object of that owner's uid,
// as happens when the collector missed the owner's delete (a watch gap, a
// namesake recreated in its place). It reads caches only: a dependent
// whose owners are all cached costs no API call, and syncDependent
// confirms an owner gone by a live read before anything is deleted.
func (gc *Collector) recheck(info *kinds.Info, obj kinds.Object) {
	m := obj.GetMetadata()
	for _, ref := range m.GetOwnerReferences() {
		if owner, cached := gc.cachedOwner(ref, m.GetNamespace()); cached && owner == nil {
			gc.deletes.Add(itemKey(info, obj))
			return
		}
	}
}

func stateOf(o kinds.Object) ownerState {
	m := o.GetMetadata()
	if m.GetDeletionTimestamp() != nil && controllerutil.HasFinalizer(m, FinalizerForeground) {
		return ownerDeletingForeground
	}
	return ownerPresent
}

func (gc *Collector) hasDependents(uid string) bool {
	for _, s := range gc.sources {
		if len(s.dependents(uid)) > 0 {
			return true
		}
	}
	return false
}

// syncDependent deletes an object whose owners are all gone (or all
// deleting in the foreground), and drops references to owners that are
// gone while others remain.
func (gc *Collector) syncDependent(ctx context.Context, key string) error {
	resource, ns, name := splitItemKey(key)
	s, ok := gc.sources[resource]
	if !ok {
		return nil
	}
	obj, ok := s.get(ns, name)
	if !ok {
		return nil
	}
	refs := obj.GetMetadata().GetOwnerReferences()
	if len(refs) == 0 {
		return nil
	}
	var dangling []string
	solid, waiting := 0, 0
	for _, ref := range refs {
		st, err := gc.ownerState(ctx, ref, ns)
		if err != nil {
			return err
		}
		switch st {
		case ownerAbsent:
			dangling = append(dangling, ref.GetUid())
		case ownerDeletingForeground:
			waiting++
		default:
			solid++
		}
	}
	switch {
	case solid > 0 && len(dangling) == 0:
		return nil
	case solid > 0:
		return gc.removeReferences(ctx, s.info(), obj, dangling)
	case obj.GetMetadata().GetDeletionTimestamp() != nil:
		return nil // already on its way
	}
	policy := "Background"
	if waiting > 0 && gc.hasDependents(obj.GetMetadata().GetUid()) {
		// The owner waits for this object: make it wait for its own
		// dependents in turn.
		policy = "Foreground"
	}
	_, err := client.ForKind(gc.client, s.info()).Delete(ctx, ns, name, client.DeleteOptions{
		PropagationPolicy: policy,
		Preconditions:     &api.Preconditions{Uid: obj.GetMetadata().GetUid()},
	})
	if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
		return fmt.Errorf("delete %s whose owners are gone: %w", key, err)
	}
	gc.logger.Info("deleted object whose owners are gone", "object", key, "propagation", policy)
	return nil
}

// removeReferences drops the ownerReferences to uids from obj.
func (gc *Collector) removeReferences(ctx context.Context, info *kinds.Info, obj kinds.Object, uids []string) error {
	_, err := controllerutil.Update(ctx, client.ForKind(gc.client, info), obj, func(o kinds.Object) bool {
		changed := false
		for _, u := range uids {
			changed = controllerutil.RemoveOwnerReference(kinds.Meta(o), u) || changed
		}
		return changed
	})
	if client.IsNotFound(err) || errors.Is(err, controllerutil.ErrReplaced) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove ownerReferences from %s/%s: %w", info.Resource, kinds.Key(obj), err)
	}
	return nil
}

// syncOwner carries out the Orphan and Foreground policies of an owner
// being deleted.
func (gc *Collector) syncOwner(ctx context.Context, key string) error {
	resource, ns, name := splitItemKey(key)
	s, ok := gc.sources[resource]
	if !ok {
		return nil
	}
	owner, ok := s.get(ns, name)
	if !ok || owner.GetMetadata().GetDeletionTimestamp() == nil {
		return nil
	}
	m := owner.GetMetadata()
	uid := m.GetUid()
	switch {
	case controllerutil.HasFinalizer(m, FinalizerOrphan):
		var errs []error
		for _, ds := range gc.sources {
			for _, dep := range ds.dependents(uid) {
				if err := gc.removeReferences(ctx, ds.info(), dep, []string{uid}); err != nil {
					errs = append(errs, err)
				}
			}
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		gc.logger.Info("orphaned dependents", "owner", key)
		return gc.removeFinalizer(ctx, s.info(), owner, FinalizerOrphan)
	case controllerutil.HasFinalizer(m, FinalizerForeground):
		blocking := 0
		for _, ds := range gc.sources {
			for _, dep := range ds.dependents(uid) {
				dm := dep.GetMetadata()
				for _, ref := range dm.GetOwnerReferences() {
					if ref.GetUid() == uid && ref.GetBlockOwnerDeletion() {
						blocking++
					}
				}
				if dm.GetDeletionTimestamp() == nil {
					gc.deletes.Add(itemKey(ds.info(), dep))
				}
			}
		}
		if blocking > 0 {
			return nil // dependents' deletions bring the owner back here
		}
		gc.logger.Info("foreground deletion done", "owner", key)
		return gc.removeFinalizer(ctx, s.info(), owner, FinalizerForeground)
	}
	return nil
}

func (gc *Collector) removeFinalizer(ctx context.Context, info *kinds.Info, obj kinds.Object, finalizer string) error {
	_, err := controllerutil.Update(ctx, client.ForKind(gc.client, info), obj, func(o kinds.Object) bool {
		return controllerutil.RemoveFinalizer(kinds.Meta(o), finalizer)
	})
	if err != nil && !client.IsNotFound(err) && !errors.Is(err, controllerutil.ErrReplaced) {
		return fmt.Errorf("remove finalizer %s from %s/%s: %w", finalizer, info.Resource, kinds.Key(obj), err)
	}
	return nil
}
