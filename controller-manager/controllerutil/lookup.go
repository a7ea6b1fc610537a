package controllerutil

import (
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiff-dev/skiff/internal/informer"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/internal/selectors"
	"github.com/skiff-dev/skiff/proto/api"
)

// ResolveControllerRef returns the owner of the given kind that a child's
// controllerRef names, if the cache holds that very object (same uid).
func ResolveControllerRef[T kinds.Object](owners *informer.Lister[T], child *api.ObjectMeta, kind string) (T, bool) {
	var zero T
	ref := ControllerOf(child)
	if ref == nil || ref.GetKind() != kind {
		return zero, false
	}
	owner, ok := owners.Get(child.GetNamespace(), ref.GetName())
	if !ok || owner.GetMetadata().GetUid() != ref.GetUid() {
		return zero, false
	}
	return owner, true
}

// Selecting returns the cached objects in namespace whose label selector
// matches lbls; an empty or invalid selector selects nothing.
func Selecting[T kinds.Object](objs *informer.Lister[T], namespace string, lbls map[string]string, selectorOf func(T) *api.LabelSelector) []T {
	var out []T
	set := labels.Set(lbls)
	for _, o := range objs.ByIndex(informer.IndexNamespace, namespace) {
		sel, err := selectors.FromLabelSelector(selectorOf(o))
		if err == nil && !sel.Empty() && sel.Matches(set) {
			out = append(out, o)
		}
	}
	return out
}
