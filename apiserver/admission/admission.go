// Package admission is the apiserver's defaulting and validation of every
// kind, run on each create and update before an object reaches etcd. Errors
// name the field by its manifest (JSON) path, as Kubernetes does:
//
//	Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0
//
// It must never touch storage or the network, and it runs on every write:
// no reflection or regexp compilation per call, dispatch is a type switch.
// Values that need cluster state (a Service's clusterIP and nodePorts, a
// name from generateName) are the apiserver's to fill, not this package's.
package admission

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// maxErrorsInMessage bounds how many causes InvalidError.Error prints; the
// full list stays in Errs.
const maxErrorsInMessage = 10

// InvalidError is a rejected object: every field that failed, by path.
type InvalidError struct {
	Kind string // "Deployment"
	Name string
	Errs field.ErrorList
}

// Error reads like kubectl's message for a 422 Invalid response: the
// group-qualified kind, the name and the causes, bracketed when several.
func (e *InvalidError) Error() string {
	kind := e.Kind
	if info, ok := kinds.Lookup(e.Kind); ok && info.Group != "" {
		kind += "." + info.Group
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q is invalid: ", kind, e.Name)
	// Like Kubernetes' aggregate, repeated messages are printed once.
	seen := make(map[string]bool, len(e.Errs))
	msgs := make([]string, 0, len(e.Errs))
	for _, fe := range e.Errs {
		if m := fe.Error(); !seen[m] {
			seen[m] = true
			msgs = append(msgs, m)
		}
	}
	switch {
	case len(msgs) == 0:
		b.WriteString("unknown reason")
	case len(msgs) == 1:
		b.WriteString(msgs[0])
	default:
		shown := msgs
		if len(shown) > maxErrorsInMessage {
			shown = shown[:maxErrorsInMessage]
		}
		b.WriteByte('[')
		b.WriteString(strings.Join(shown, ", "))
		if extra := len(msgs) - len(shown); extra > 0 {
			fmt.Fprintf(&b, ", and %d more", extra)
		}
		b.WriteByte(']')
	}
	return b.String()
}

func invalid(obj kinds.Object, errs field.ErrorList) error {
	if len(errs) == 0 {
		return nil
	}
	kind := "Object"
	if info, err := kinds.For(obj); err == nil {
		kind = info.Kind
	}
	return &InvalidError{Kind: kind, Name: obj.GetMetadata().GetName(), Errs: errs}
}

// Default fills defaults in place (docs/architecture.md "Defaults"), before
// validation, on create and on update. It only fills what is empty, so it is
// idempotent, and it tolerates any input: validation reports what is wrong.
func Default(obj kinds.Object) {
	switch o := obj.(type) {
	case *api.Pod:
		if o != nil {
			if o.Spec == nil {
				o.Spec = &api.PodSpec{}
			}
			defaultPodSpec(o.Spec)
		}
	case *api.Deployment:
		defaultDeployment(o)
	case *api.ReplicaSet:
		defaultReplicaSet(o)
	case *api.Service:
		defaultService(o)
	case *api.Endpoints:
		defaultEndpoints(o)
	case *api.Secret:
		defaultSecret(o)
	}
}

// DefaultUpdate carries the values the apiserver allocated on create (a
// Service's clusterIP, clusterIPs and nodePorts) from old into obj when
// obj leaves them empty, as Kubernetes does, so that replacing an object
// with its manifest does not trip the immutability checks; then it applies
// Default.
func DefaultUpdate(obj, old kinds.Object) {
	if svc, ok := obj.(*api.Service); ok {
		if oldSvc, ok := old.(*api.Service); ok {
			keepAllocatedServiceValues(svc, oldSvc)
		}
	}
	Default(obj)
}

// ValidateCreate returns nil or an *InvalidError listing every invalid field
// of a new object.
func ValidateCreate(obj kinds.Object) error {
	errs, err := validate(obj)
	if err != nil {
		return err
	}
	return invalid(obj, errs)
}

// ValidateUpdate returns nil or an *InvalidError listing every invalid field
// of obj and every change from old that is not allowed (immutable fields).
func ValidateUpdate(obj, old kinds.Object) error {
	errs, err := validate(obj)
	if err != nil {
		return err
	}
	if old != nil {
		errs = append(errs, validateUpdate(obj, old)...)
	}
	return invalid(obj, errs)
}

func validate(obj kinds.Object) (field.ErrorList, error) {
	switch o := obj.(type) {
	case *api.Namespace:
		return validateNamespace(o), nil
	case *api.Node:
		return validateNode(o), nil
	case *api.Pod:
		return validatePod(o), nil
	case *api.Service:
		return validateService(o), nil
	case *api.Endpoints:
		return validateEndpoints(o), nil
	case *api.Event:
		return validateEvent(o), nil
	case *api.ConfigMap:
		return validateConfigMap(o), nil
	case *api.Secret:
		return validateSecret(o), nil
	case *api.Deployment:
		return validateDeployment(o), nil
	case *api.ReplicaSet:
		return validateReplicaSet(o), nil
	case *api.Lease:
		return validateLease(o), nil
	case *api.RoleBinding:
		return validateRoleBinding(o), nil
	}
	return nil, fmt.Errorf("admission: %T is not an API kind", obj)
}
