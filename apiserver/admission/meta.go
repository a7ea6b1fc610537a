package admission

import (
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/proto/api"
)

// totalAnnotationSizeLimit is Kubernetes' limit on the sum of annotation
// keys and values.
const totalAnnotationSizeLimit = 256 * 1024

// Finalizers the system itself understands; any other finalizer must be a
// domain-qualified name ("example.com/cleanup"), as in Kubernetes.
const (
	finalizerOrphan     = "orphan"
	finalizerForeground = "foregroundDeletion"
	finalizerKubernetes = "kubernetes"
)

// nameFunc validates a name, or a generateName prefix when prefix is true.
type nameFunc func(name string, prefix bool) []string

func dnsSubdomainName(name string, prefix bool) []string {
	if prefix {
		name = maskTrailingDash(name)
	}
	return validation.IsDNS1123Subdomain(name)
}

func dnsLabelName(name string, prefix bool) []string {
	if prefix {
		name = maskTrailingDash(name)
	}
	return validation.IsDNS1123Label(name)
}

// pathSegmentName allows names such as "system:node:worker-1" (role
// bindings), which only have to be usable as a path segment of a key.
func pathSegmentName(name string, prefix bool) []string {
	if prefix {
		return content.IsPathSegmentPrefix(name)
	}
	return content.IsPathSegmentName(name)
}

// maskTrailingDash lets a generateName prefix end in '-' ("web-"), since a
// random alphanumeric suffix follows it.
func maskTrailingDash(name string) string {
	if len(name) > 1 && strings.HasSuffix(name, "-") {
		return name[:len(name)-1] + "a"
	}
	return name
}

var metadataPath = field.NewPath("metadata")

// validateObjectMeta checks the metadata of a top-level object. namespaced
// says whether the kind lives in a namespace.
func validateObjectMeta(m *api.ObjectMeta, namespaced bool, nameFn nameFunc) field.ErrorList {
	fldPath := metadataPath
	var errs field.ErrorList
	if m == nil {
		return append(errs, field.Required(fldPath, ""))
	}
	if m.GetGenerateName() != "" {
		for _, msg := range nameFn(m.GetGenerateName(), true) {
			errs = append(errs, field.Invalid(fldPath.Child("generateName"), m.GetGenerateName(), msg))
		}
	}
	// The apiserver makes the name from generateName before admission, so
	// a create reaching us with neither is a client error, and one with a
	// generated name is validated like any other.
	switch {
	case m.GetName() == "" && m.GetGenerateName() == "":
		errs = append(errs, field.Required(fldPath.Child("name"), "name or generateName is required"))
	case m.GetName() != "":
		for _, msg := range nameFn(m.GetName(), false) {
			errs = append(errs, field.Invalid(fldPath.Child("name"), m.GetName(), msg))
		}
	}
	if namespaced {
		if m.GetNamespace() == "" {
			errs = append(errs, field.Required(fldPath.Child("namespace"), ""))
		} else {
			for _, msg := range validation.IsDNS1123Label(m.GetNamespace()) {
				errs = append(errs, field.Invalid(fldPath.Child("namespace"), m.GetNamespace(), msg))
			}
		}
	} else if m.GetNamespace() != "" {
		errs = append(errs, field.Forbidden(fldPath.Child("namespace"), "not allowed on this type"))
	}
	if m.GetDeletionGracePeriodSeconds() < 0 {
		errs = append(errs, field.Invalid(fldPath.Child("deletionGracePeriodSeconds"), m.GetDeletionGracePeriodSeconds(), msgNonNegative))
	}
	errs = append(errs, validateLabels(m.GetLabels(), fldPath.Child("labels"))...)
	errs = append(errs, validateAnnotations(m.GetAnnotations(), fldPath.Child("annotations"))...)
	errs = append(errs, validateOwnerReferences(m.GetOwnerReferences(), fldPath.Child("ownerReferences"))...)
	errs = append(errs, validateFinalizers(m.GetFinalizers(), fldPath.Child("finalizers"))...)
	return errs
}

// validateTemplateMeta checks a pod template's metadata: only labels and
// annotations mean anything there.
func validateTemplateMeta(m *api.ObjectMeta, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateLabels(m.GetLabels(), fldPath.Child("labels"))...)
	errs = append(errs, validateAnnotations(m.GetAnnotations(), fldPath.Child("annotations"))...)
	return errs
}

// sortedKeys gives map keys in a stable order, so that error lists (and the
// messages built from them) do not depend on map iteration.
func sortedKeys[V any](m map[string]V) []string {
	if len(m) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(m))
}

// validateLabels checks label keys (qualified names) and values, as
// Kubernetes' ValidateLabels; node selectors and service selectors use it too.
func validateLabels(labels map[string]string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, k := range sortedKeys(labels) {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, field.Invalid(fldPath, k, msg))
		}
		v := labels[k]
		for _, msg := range validation.IsValidLabelValue(v) {
			errs = append(errs, field.Invalid(fldPath, v, msg))
		}
	}
	return errs
}

func validateAnnotations(annotations map[string]string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	total := 0
	for _, k := range sortedKeys(annotations) {
		// Kubernetes accepts upper case in annotation keys.
		for _, msg := range validation.IsQualifiedName(strings.ToLower(k)) {
			errs = append(errs, field.Invalid(fldPath, k, msg))
		}
		total += len(k) + len(annotations[k])
	}
	if total > totalAnnotationSizeLimit {
		errs = append(errs, field.TooLong(fldPath, "", totalAnnotationSizeLimit))
	}
	return errs
}

func validateOwnerReferences(refs []*api.OwnerReference, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	controllers := 0
	for i, ref := range refs {
		p := fldPath.Index(i)
		if ref.GetApiVersion() == "" {
			errs = append(errs, field.Required(p.Child("apiVersion"), "apiVersion must not be empty"))
		}
		if ref.GetKind() == "" {
			errs = append(errs, field.Required(p.Child("kind"), "kind must not be empty"))
		}
		if ref.GetName() == "" {
			errs = append(errs, field.Required(p.Child("name"), "name must not be empty"))
		}
		if ref.GetUid() == "" {
			errs = append(errs, field.Required(p.Child("uid"), "uid must not be empty"))
		}
		if ref.GetController() {
			controllers++
		}
	}
	if controllers > 1 {
		errs = append(errs, field.Invalid(fldPath, controllers, "Only one reference can have Controller set to true"))
	}
	return errs
}

func validateFinalizers(finalizers []string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	hasOrphan, hasForeground := false, false
	for i, f := range finalizers {
		errs = append(errs, validateFinalizerName(f, fldPath.Index(i))...)
		hasOrphan = hasOrphan || f == finalizerOrphan
		hasForeground = hasForeground || f == finalizerForeground
	}
	if hasOrphan && hasForeground {
		errs = append(errs, field.Invalid(fldPath, finalizers, "finalizers orphan and foregroundDeletion cannot be both set"))
	}
	return errs
}

func validateFinalizerName(name string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsQualifiedName(name) {
		errs = append(errs, field.Invalid(fldPath, name, msg))
	}
	if len(errs) == 0 && !strings.Contains(name, "/") {
		switch name {
		case finalizerOrphan, finalizerForeground, finalizerKubernetes:
		default:
			errs = append(errs, field.Invalid(fldPath, name, "name is neither a standard finalizer name nor is it fully qualified"))
		}
	}
	return errs
}

// validateLabelSelector checks a LabelSelector's syntax (not whether it is
// empty: callers decide that).
func validateLabelSelector(s *api.LabelSelector, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if s == nil {
		return errs
	}
	errs = append(errs, validateLabels(s.GetMatchLabels(), fldPath.Child("matchLabels"))...)
	for i, r := range s.GetMatchExpressions() {
		p := fldPath.Child("matchExpressions").Index(i)
		for _, msg := range validation.IsQualifiedName(r.GetKey()) {
			errs = append(errs, field.Invalid(p.Child("key"), r.GetKey(), msg))
		}
		switch r.GetOperator() {
		case "In", "NotIn":
			if len(r.GetValues()) == 0 {
				errs = append(errs, field.Required(p.Child("values"), "must be specified when `operator` is 'In' or 'NotIn'"))
			}
		case "Exists", "DoesNotExist":
			if len(r.GetValues()) > 0 {
				errs = append(errs, field.Forbidden(p.Child("values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
			}
		default:
			errs = append(errs, field.NotSupported(p.Child("operator"), r.GetOperator(), []string{"In", "NotIn", "Exists", "DoesNotExist"}))
		}
		for j, v := range r.GetValues() {
			for _, msg := range validation.IsValidLabelValue(v) {
				errs = append(errs, field.Invalid(p.Child("values").Index(j), v, msg))
			}
		}
	}
	return errs
}

// selectorIsEmpty reports whether s selects everything.
func selectorIsEmpty(s *api.LabelSelector) bool {
	return len(s.GetMatchLabels()) == 0 && len(s.GetMatchExpressions()) == 0
}

// selectorMatches evaluates a LabelSelector against labels without building
// a labels.Selector, which admission would throw away at once.
func selectorMatches(s *api.LabelSelector, labels map[string]string) bool {
	for k, v := range s.GetMatchLabels() {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, r := range s.GetMatchExpressions() {
		v, has := labels[r.GetKey()]
		switch r.GetOperator() {
		case "In":
			if !has || !slices.Contains(r.GetValues(), v) {
				return false
			}
		case "NotIn":
			if has && slices.Contains(r.GetValues(), v) {
				return false
			}
		case "Exists":
			if !has {
				return false
			}
		case "DoesNotExist":
			if has {
				return false
			}
		default:
			return false
		}
	}
	return true
}
