package garbagecollector

import (
	"context"

	"github.com/skiff-dev/skiff/internal/informer"
	"github.com/skiff-dev/skiff/internal/kinds"
)

// Source is one kind the collector follows, over a shared informer.
type Source interface {
	info() *kinds.Info
	get(namespace, name string) (kinds.Object, bool)
	dependents(uid string) []kinds.Object
	register(gc *Collector)
	synced(ctx context.Context) bool
}

// Watch makes a Source of a shared informer. Pass every namespaced kind
// whose objects may carry ownerReferences, and every kind that may own
// them (nodes, namespaces).
func Watch[T kinds.Object](inf *informer.Informer[T], info *kinds.Info) Source {
	return &typedSource[T]{inf: inf, kind: info}
}

type typedSource[T kinds.Object] struct {
	inf  *informer.Informer[T]
	kind *kinds.Info
}

func (s *typedSource[T]) info() *kinds.Info { return s.kind }

func (s *typedSource[T]) get(namespace, name string) (kinds.Object, bool) {
	obj, ok := s.inf.Lister().Get(namespace, name)
	if !ok {
		return nil, false
	}
	return obj, true
}

func (s *typedSource[T]) dependents(uid string) []kinds.Object {
	objs := s.inf.Lister().ByIndex(informer.IndexOwnerUID, uid)
	out := make([]kinds.Object, len(objs))
	for i, o := range objs {
		out[i] = o
	}
	return out
}

func (s *typedSource[T]) synced(ctx context.Context) bool { return s.inf.WaitForSync(ctx) }

func (s *typedSource[T]) register(gc *Collector) { s.inf.AddEventHandler(s.handler(gc)) }

// handler feeds the informer's events to gc. A resync (the same object
// before and after) re-checks the object's owners against the caches:
// the safety net for a delete event the collector never saw.
func (s *typedSource[T]) handler(gc *Collector) informer.Handler[T] {
	return informer.Handler[T]{
		OnAdd: func(obj T) { gc.observe(s.kind, nil, obj) },
		OnUpdate: func(old, cur T) {
			if old.GetMetadata().GetResourceVersion() == cur.GetMetadata().GetResourceVersion() {
				gc.recheck(s.kind, cur)
				return
			}
			gc.observe(s.kind, old, cur)
		},
		OnDelete: func(obj T) { gc.observeDelete(s.kind, obj) },
	}
}
