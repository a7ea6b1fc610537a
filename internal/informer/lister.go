package informer

import (
	"sync"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiff-dev/skiff/internal/kinds"
)

// Lister reads an informer's cache. The objects it returns are shared with
// the cache and every other reader: never mutate them, proto.Clone first.
type Lister[T kinds.Object] struct {
	mu *sync.RWMutex
	s  *store[T]
}

// NewLister is a Lister over a fixed set of objects with the built-in
// indexes, for tests of code that reads a cache.
func NewLister[T kinds.Object](objs ...T) *Lister[T] {
	s := newStore[T]()
	for _, obj := range objs {
		s.put(obj)
	}
	return &Lister[T]{mu: &sync.RWMutex{}, s: s}
}

// Get returns the object namespace/name (namespace "" for cluster-scoped
// kinds).
func (l *Lister[T]) Get(namespace, name string) (T, bool) {
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	return l.GetByKey(key)
}

// GetByKey returns the object under a kinds.Key, the form work queues carry.
func (l *Lister[T]) GetByKey(key string) (T, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	obj, ok := l.s.items[key]
	return obj, ok
}

// List returns the objects whose labels match sel (nil or
// labels.Everything() for all), in no particular order.
func (l *Lister[T]) List(sel labels.Selector) []T {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.list(sel)
}

// ByIndex returns the objects indexed under value, in no particular order.
// It panics on an index that was never added: that is a programming error.
func (l *Lister[T]) ByIndex(index, value string) []T {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.s.byIndex(index, value)
}

// Len is the number of cached objects.
func (l *Lister[T]) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.s.items)
}
