package informer

import (
	"fmt"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// Built-in indexes, present on every informer and Lister.
const (
	// IndexNamespace indexes objects by metadata.namespace.
	IndexNamespace = "namespace"
	// IndexNodeName indexes pods by spec.nodeName; unbound pods are under "".
	// Other kinds are not in it.
	IndexNodeName = "spec.nodeName"
	// IndexOwnerUID indexes objects by the uid of every ownerReference.
	IndexOwnerUID = "ownerUID"
)

// IndexFunc returns the values an object is indexed under.
type IndexFunc[T kinds.Object] func(T) []string

func builtinIndexes[T kinds.Object]() map[string]IndexFunc[T] {
	return map[string]IndexFunc[T]{
		IndexNamespace: func(obj T) []string { return []string{obj.GetMetadata().GetNamespace()} },
		IndexNodeName: func(obj T) []string {
			if pod, ok := any(obj).(*api.Pod); ok {
				return []string{pod.GetSpec().GetNodeName()}
			}
			return nil
		},
		IndexOwnerUID: func(obj T) []string {
			refs := obj.GetMetadata().GetOwnerReferences()
			out := make([]string, 0, len(refs))
			for _, r := range refs {
				out = append(out, r.GetUid())
			}
			return out
		},
	}
}

// store is the indexed cache. It does no locking: the Informer's lock
// guards it.
type store[T kinds.Object] struct {
	items    map[string]T
	indexers map[string]IndexFunc[T]
	// indices[index][value] is the set of keys indexed under value.
	indices map[string]map[string]map[string]struct{}
}

func newStore[T kinds.Object]() *store[T] {
	s := &store[T]{items: map[string]T{}, indexers: map[string]IndexFunc[T]{}, indices: map[string]map[string]map[string]struct{}{}}
	for name, fn := range builtinIndexes[T]() {
		s.addIndex(name, fn)
	}
	return s
}

func (s *store[T]) addIndex(name string, fn IndexFunc[T]) {
	if _, ok := s.indexers[name]; ok {
		panic(fmt.Sprintf("informer: index %q already exists", name))
	}
	s.indexers[name] = fn
	s.indices[name] = map[string]map[string]struct{}{}
	for key, obj := range s.items {
		s.index(name, fn, key, obj)
	}
}

func (s *store[T]) index(name string, fn IndexFunc[T], key string, obj T) {
	idx := s.indices[name]
	for _, v := range fn(obj) {
		set := idx[v]
		if set == nil {
			set = map[string]struct{}{}
			idx[v] = set
		}
		set[key] = struct{}{}
	}
}

func (s *store[T]) unindex(key string, obj T) {
	for name, fn := range s.indexers {
		idx := s.indices[name]
		for _, v := range fn(obj) {
			if set := idx[v]; set != nil {
				delete(set, key)
				if len(set) == 0 {
					delete(idx, v)
				}
			}
		}
	}
}

// put stores obj and returns what it replaced.
func (s *store[T]) put(obj T) (old T, existed bool) {
	key := kinds.Key(obj)
	old, existed = s.items[key]
	if existed {
		s.unindex(key, old)
	}
	s.items[key] = obj
	for name, fn := range s.indexers {
		s.index(name, fn, key, obj)
	}
	return old, existed
}

// remove drops the object under key and returns it.
func (s *store[T]) remove(key string) (old T, existed bool) {
	old, existed = s.items[key]
	if existed {
		s.unindex(key, old)
		delete(s.items, key)
	}
	return old, existed
}

func (s *store[T]) list(sel labels.Selector) []T {
	out := make([]T, 0, len(s.items))
	for _, obj := range s.items {
		if sel == nil || sel.Matches(labels.Set(obj.GetMetadata().GetLabels())) {
			out = append(out, obj)
		}
	}
	return out
}

func (s *store[T]) byIndex(name, value string) []T {
	idx, ok := s.indices[name]
	if !ok {
		panic(fmt.Sprintf("informer: no index %q", name))
	}
	set := idx[value]
	out := make([]T, 0, len(set))
	for key := range set {
		out = append(out, s.items[key])
	}
	return out
}
