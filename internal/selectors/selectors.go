// Package selectors parses and matches label and field selectors the way
// Kubernetes does, over Skiff's API objects.
//
// It must stay free of I/O: the apiserver calls it for every object of every
// list and watch event.
package selectors

import (
	"fmt"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// Selector matches objects by labels and fields.
type Selector struct {
	Labels labels.Selector
	Fields fields.Selector
}

// Everything matches every object.
func Everything() Selector {
	return Selector{Labels: labels.Everything(), Fields: fields.Everything()}
}

// Parse parses a label and a field selector for a kind. Fields the kind does
// not support are an error naming the field.
func Parse(info *kinds.Info, labelSelector, fieldSelector string) (Selector, error) {
	ls, err := labels.Parse(labelSelector)
	if err != nil {
		return Selector{}, fmt.Errorf("labelSelector: %w", err)
	}
	fs, err := fields.ParseSelector(fieldSelector)
	if err != nil {
		return Selector{}, fmt.Errorf("fieldSelector: %w", err)
	}
	supported := supportedFields(info.Kind)
	for _, r := range fs.Requirements() {
		if !supported[r.Field] {
			return Selector{}, fmt.Errorf("fieldSelector: field %q is not supported for %s", r.Field, info.Resource)
		}
	}
	return Selector{Labels: ls, Fields: fs}, nil
}

// Empty reports a selector that matches everything.
func (s Selector) Empty() bool {
	return (s.Labels == nil || s.Labels.Empty()) && (s.Fields == nil || s.Fields.Empty())
}

// Matches reports whether obj is selected.
func (s Selector) Matches(obj kinds.Object) bool {
	if s.Labels != nil && !s.Labels.Empty() && !s.Labels.Matches(labels.Set(obj.GetMetadata().GetLabels())) {
		return false
	}
	if s.Fields != nil && !s.Fields.Empty() && !s.Fields.Matches(FieldSet(obj)) {
		return false
	}
	return true
}

// RequiredField returns the value a selector requires for a field with "=",
// letting callers narrow a search by an index.
func (s Selector) RequiredField(field string) (string, bool) {
	if s.Fields == nil {
		return "", false
	}
	return s.Fields.RequiresExactMatch(field)
}

func supportedFields(kind string) map[string]bool {
	out := map[string]bool{"metadata.name": true, "metadata.namespace": true}
	switch kind {
	case "Pod":
		out["spec.nodeName"] = true
		out["status.phase"] = true
		out["spec.schedulerName"] = true
	case "Event":
		for _, f := range []string{"involvedObject.kind", "involvedObject.name", "involvedObject.namespace", "involvedObject.uid", "reason", "type"} {
			out[f] = true
		}
	case "Node":
		out["spec.unschedulable"] = true
	}
	return out
}

// FieldSet is the set of selectable fields of an object.
func FieldSet(obj kinds.Object) fields.Set {
	m := obj.GetMetadata()
	set := fields.Set{"metadata.name": m.GetName(), "metadata.namespace": m.GetNamespace()}
	switch o := obj.(type) {
	case *api.Pod:
		set["spec.nodeName"] = o.GetSpec().GetNodeName()
		set["status.phase"] = o.GetStatus().GetPhase()
		set["spec.schedulerName"] = o.GetSpec().GetSchedulerName()
	case *api.Event:
		ref := o.GetInvolvedObject()
		set["involvedObject.kind"] = ref.GetKind()
		set["involvedObject.name"] = ref.GetName()
		set["involvedObject.namespace"] = ref.GetNamespace()
		set["involvedObject.uid"] = ref.GetUid()
		set["reason"] = o.GetReason()
		set["type"] = o.GetType()
	case *api.Node:
		set["spec.unschedulable"] = fmt.Sprint(o.GetSpec().GetUnschedulable())
	}
	return set
}

// FromLabelSelector converts an API LabelSelector (as in a Deployment's
// spec.selector) to a labels.Selector. A nil selector selects nothing, an
// empty one everything, as in Kubernetes.
func FromLabelSelector(ls *api.LabelSelector) (labels.Selector, error) {
	if ls == nil {
		return labels.Nothing(), nil
	}
	sel := labels.NewSelector()
	for k, v := range ls.GetMatchLabels() {
		r, err := labels.NewRequirement(k, selection.Equals, []string{v})
		if err != nil {
			return nil, fmt.Errorf("matchLabels: %w", err)
		}
		sel = sel.Add(*r)
	}
	for i, expr := range ls.GetMatchExpressions() {
		var op selection.Operator
		switch expr.GetOperator() {
		case "In":
			op = selection.In
		case "NotIn":
			op = selection.NotIn
		case "Exists":
			op = selection.Exists
		case "DoesNotExist":
			op = selection.DoesNotExist
		default:
			return nil, fmt.Errorf("matchExpressions[%d].operator: %q is not a valid label selector operator", i, expr.GetOperator())
		}
		r, err := labels.NewRequirement(expr.GetKey(), op, expr.GetValues())
		if err != nil {
			return nil, fmt.Errorf("matchExpressions[%d]: %w", i, err)
		}
		sel = sel.Add(*r)
	}
	return sel, nil
}
