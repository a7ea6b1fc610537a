package admission

import (
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

const msgPodSpecImmutable = "pod updates may not change fields other than `spec.containers[*].image`, " +
	"`spec.initContainers[*].image`, `spec.activeDeadlineSeconds` or `spec.tolerations` (only additions to existing tolerations)"

// validateUpdate checks what may not change between old and obj; obj itself
// has been validated already.
func validateUpdate(obj, old kinds.Object) field.ErrorList {
	errs := validateObjectMetaUpdate(obj.GetMetadata(), old.GetMetadata())
	switch o := obj.(type) {
	case *api.Pod:
		if oldPod, ok := old.(*api.Pod); ok {
			errs = append(errs, validatePodSpecUpdate(o.GetSpec(), oldPod.GetSpec())...)
		}
	case *api.Deployment:
		if oldD, ok := old.(*api.Deployment); ok {
			errs = append(errs, immutableSelector(o.GetSpec().GetSelector(), oldD.GetSpec().GetSelector())...)
		}
	case *api.ReplicaSet:
		if oldRS, ok := old.(*api.ReplicaSet); ok {
			errs = append(errs, immutableSelector(o.GetSpec().GetSelector(), oldRS.GetSpec().GetSelector())...)
		}
	case *api.Service:
		if oldSvc, ok := old.(*api.Service); ok {
			errs = append(errs, validateServiceUpdate(o.GetSpec(), oldSvc.GetSpec())...)
		}
	case *api.Node:
		if oldNode, ok := old.(*api.Node); ok {
			// The node IPAM controller assigns the pod CIDR once.
			if prev := oldNode.GetSpec().GetPodCidr(); prev != "" && o.GetSpec().GetPodCidr() != prev {
				errs = append(errs, field.Forbidden(specPath.Child("podCIDR"), "node updates may not change podCIDR except from \"\" to valid"))
			}
		}
	case *api.RoleBinding:
		if oldRB, ok := old.(*api.RoleBinding); ok && o.GetRoleRef().GetName() != oldRB.GetRoleRef().GetName() {
			errs = append(errs, field.Invalid(field.NewPath("roleRef"), o.GetRoleRef().GetName(), "cannot change roleRef"))
		}
	}
	return errs
}

func validateObjectMetaUpdate(m, old *api.ObjectMeta) field.ErrorList {
	var errs field.ErrorList
	if m.GetName() != old.GetName() {
		errs = append(errs, field.Invalid(metadataPath.Child("name"), m.GetName(), msgImmutable))
	}
	if m.GetNamespace() != old.GetNamespace() {
		errs = append(errs, field.Invalid(metadataPath.Child("namespace"), m.GetNamespace(), msgImmutable))
	}
	// An empty uid means the client did not send one; the apiserver keeps
	// the stored uid.
	if m.GetUid() != "" && m.GetUid() != old.GetUid() {
		errs = append(errs, field.Invalid(metadataPath.Child("uid"), m.GetUid(), msgImmutable))
	}
	return errs
}

// immutableSelector enforces apps/v1: a controller's selector never changes,
// or it would orphan the pods it owns.
func immutableSelector(sel, old *api.LabelSelector) field.ErrorList {
	if proto.Equal(sel, old) {
		return nil
	}
	return field.ErrorList{field.Invalid(specPath.Child("selector"), sel, msgImmutable)}
}

func validateServiceUpdate(s, old *api.ServiceSpec) field.ErrorList {
	var errs field.ErrorList
	if prev := old.GetClusterIp(); prev != "" && s.GetClusterIp() != prev {
		errs = append(errs, field.Invalid(specPath.Child("clusterIP"), s.GetClusterIp(), msgImmutable))
	}
	// clusterIPs[0] mirrors clusterIP: report it only when clusterIP is fine.
	if prev := old.GetClusterIps(); len(prev) > 0 && len(errs) == 0 {
		now := s.GetClusterIps()
		if len(now) < len(prev) || now[0] != prev[0] {
			errs = append(errs, field.Invalid(specPath.Child("clusterIPs").Index(0), firstOrEmpty(now), msgImmutable))
		}
	}
	return errs
}

func firstOrEmpty(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// validatePodSpecUpdate allows only what Kubernetes allows on a running
// pod: container images, a shorter activeDeadlineSeconds, and added
// tolerations. The node is set by Bind, never by Update.
func validatePodSpecUpdate(s, old *api.PodSpec) field.ErrorList {
	var errs field.ErrorList
	if s == nil || old == nil {
		if s != old {
			errs = append(errs, field.Forbidden(specPath, msgPodSpecImmutable))
		}
		return errs
	}
	adPath := specPath.Child("activeDeadlineSeconds")
	switch {
	case s.ActiveDeadlineSeconds != nil && old.ActiveDeadlineSeconds != nil && s.GetActiveDeadlineSeconds() > old.GetActiveDeadlineSeconds():
		errs = append(errs, field.Invalid(adPath, s.GetActiveDeadlineSeconds(), "must be less than or equal to previous value"))
	case s.ActiveDeadlineSeconds == nil && old.ActiveDeadlineSeconds != nil:
		errs = append(errs, field.Invalid(adPath, nil, "must not update from a positive integer to nil value"))
	}
	tolPath := specPath.Child("tolerations")
	if !tolerationsOnlyAdded(s.GetTolerations(), old.GetTolerations()) {
		errs = append(errs, field.Forbidden(tolPath, "existing toleration can not be modified except its tolerationSeconds"))
	}

	// Compare everything else: a copy of the new spec with the mutable
	// fields taken from old must equal old.
	mut := proto.Clone(s).(*api.PodSpec)
	mut.ActiveDeadlineSeconds = old.ActiveDeadlineSeconds
	mut.Tolerations = old.Tolerations
	copyImages(mut.Containers, old.Containers)
	copyImages(mut.InitContainers, old.InitContainers)
	if !proto.Equal(mut, old) {
		errs = append(errs, field.Forbidden(specPath, msgPodSpecImmutable+": changed "+changedFields(mut, old)))
	}
	return errs
}

func copyImages(dst, src []*api.Container) {
	if len(dst) != len(src) {
		return // the container list itself changed: reported by the caller
	}
	for i := range dst {
		if dst[i] != nil && src[i] != nil {
			dst[i].Image = src[i].Image
		}
	}
}

// tolerationsOnlyAdded reports whether every old toleration is still in
// now, tolerationSeconds aside.
func tolerationsOnlyAdded(now, old []*api.Toleration) bool {
	for _, o := range old {
		found := false
		for _, n := range now {
			if n.GetKey() == o.GetKey() && n.GetOperator() == o.GetOperator() &&
				n.GetValue() == o.GetValue() && n.GetEffect() == o.GetEffect() {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// changedFields lists the top-level pod spec fields that differ, by their
// JSON names, for the error message. It only runs on the failure path.
func changedFields(a, b *api.PodSpec) string {
	ma, mb := a.ProtoReflect(), b.ProtoReflect()
	var changed []string
	fields := ma.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if !valuesEqual(fd, ma, mb) {
			changed = append(changed, fd.JSONName())
		}
	}
	return strings.Join(changed, ", ")
}

func valuesEqual(fd protoreflect.FieldDescriptor, a, b protoreflect.Message) bool {
	if a.Has(fd) != b.Has(fd) {
		return false
	}
	// Wrap the single field in fresh messages so proto.Equal compares it
	// with the library's own semantics for lists, maps and messages.
	x, y := a.Type().New(), b.Type().New()
	if a.Has(fd) {
		x.Set(fd, a.Get(fd))
		y.Set(fd, b.Get(fd))
	}
	return proto.Equal(x.Interface(), y.Interface())
}
