package admission

import (
	"github.com/skiff-dev/skiff/apiserver/auth"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/proto/api"
)

// maxDataSize is Kubernetes' limit on a ConfigMap's or Secret's data.
const maxDataSize = 1 << 20

var (
	// builtinRoles are the roles a RoleBinding may grant, as
	// apiserver/auth defines them.
	builtinRoles = auth.RoleNames()

	supportedSubjectKinds  = []string{"User", "Group"}
	supportedAddressTypes  = []string{"InternalIP", "ExternalIP", "Hostname", "InternalDNS", "ExternalDNS"}
	supportedEventTypes    = []string{"Normal", "Warning"}
	supportedNSPhases      = []string{"Active", "Terminating"}
	supportedConditionVals = []string{"True", "False", "Unknown"}
	statusPath             = field.NewPath("status")
)

func validateNamespace(ns *api.Namespace) field.ErrorList {
	errs := validateObjectMeta(ns.GetMetadata(), false, dnsLabelName)
	for i, f := range ns.GetSpec().GetFinalizers() {
		errs = append(errs, validateFinalizerName(f, specPath.Child("finalizers").Index(i))...)
	}
	errs = append(errs, validateEnum(ns.GetStatus().GetPhase(), supportedNSPhases, true, statusPath.Child("phase"))...)
	return errs
}

func validateNode(n *api.Node) field.ErrorList {
	errs := validateObjectMeta(n.GetMetadata(), false, dnsSubdomainName)
	s := n.GetSpec()
	if s.GetPodCidr() != "" {
		errs = append(errs, validateCIDR(s.GetPodCidr(), specPath.Child("podCIDR"))...)
	}
	for i, c := range s.GetPodCidrs() {
		errs = append(errs, validateCIDR(c, specPath.Child("podCIDRs").Index(i))...)
	}
	if cidrs := s.GetPodCidrs(); len(cidrs) > 0 && s.GetPodCidr() != "" && cidrs[0] != s.GetPodCidr() {
		errs = append(errs, field.Invalid(specPath.Child("podCIDRs").Index(0), cidrs[0], "must match `spec.podCIDR`"))
	}
	errs = append(errs, validateTaints(s.GetTaints(), specPath.Child("taints"))...)

	st := n.GetStatus()
	for i, a := range st.GetAddresses() {
		p := statusPath.Child("addresses").Index(i)
		errs = append(errs, validateEnum(a.GetType(), supportedAddressTypes, false, p.Child("type"))...)
		switch a.GetType() {
		case "InternalIP", "ExternalIP":
			errs = append(errs, validateIP(a.GetAddress(), p.Child("address"))...)
		default:
			if a.GetAddress() == "" {
				errs = append(errs, field.Required(p.Child("address"), ""))
			}
		}
	}
	for _, name := range sortedKeys(st.GetCapacity()) {
		_, qErrs := parseQuantity(st.GetCapacity()[name], statusPath.Child("capacity").Key(name))
		errs = append(errs, qErrs...)
	}
	for _, name := range sortedKeys(st.GetAllocatable()) {
		_, qErrs := parseQuantity(st.GetAllocatable()[name], statusPath.Child("allocatable").Key(name))
		errs = append(errs, qErrs...)
	}
	errs = append(errs, validateConditions(st.GetConditions(), statusPath.Child("conditions"))...)
	if port := st.GetDaemonEndpoints().GetKubeletPort(); port != 0 {
		errs = append(errs, validatePortNumber(port, statusPath.Child("daemonEndpoints", "kubeletPort"))...)
	}
	return errs
}

func validateConditions(conds []*api.Condition, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, c := range conds {
		p := fldPath.Index(i)
		if c.GetType() == "" {
			errs = append(errs, field.Required(p.Child("type"), ""))
		}
		errs = append(errs, validateEnum(c.GetStatus(), supportedConditionVals, false, p.Child("status"))...)
	}
	return errs
}

func validateEvent(ev *api.Event) field.ErrorList {
	// Event names ("<object>.<hex>") are keys, never DNS names, and follow
	// the object's name, which may be a role binding's "system:node:x".
	errs := validateObjectMeta(ev.GetMetadata(), true, pathSegmentName)
	ioPath := field.NewPath("involvedObject")
	io := ev.GetInvolvedObject()
	if io == nil {
		return append(errs, field.Required(ioPath, ""))
	}
	if io.GetKind() == "" {
		errs = append(errs, field.Required(ioPath.Child("kind"), ""))
	}
	if io.GetName() == "" {
		errs = append(errs, field.Required(ioPath.Child("name"), ""))
	}
	// An event about a namespaced object lives in that object's namespace.
	if ns := io.GetNamespace(); ns != "" && ev.GetMetadata().GetNamespace() != "" && ns != ev.GetMetadata().GetNamespace() {
		errs = append(errs, field.Invalid(ioPath.Child("namespace"), ns, "does not match event.namespace"))
	}
	errs = append(errs, validateEnum(ev.GetType(), supportedEventTypes, true, field.NewPath("type"))...)
	errs = append(errs, nonNegative(ev.GetCount(), field.NewPath("count"))...)
	return errs
}

func validateConfigMap(cm *api.ConfigMap) field.ErrorList {
	errs := validateObjectMeta(cm.GetMetadata(), true, dnsSubdomainName)
	size := 0
	dataPath, binPath := field.NewPath("data"), field.NewPath("binaryData")
	for _, k := range sortedKeys(cm.GetData()) {
		errs = append(errs, validateConfigKey(k, dataPath)...)
		size += len(k) + len(cm.GetData()[k])
	}
	for _, k := range sortedKeys(cm.GetBinaryData()) {
		errs = append(errs, validateConfigKey(k, binPath)...)
		if _, dup := cm.GetData()[k]; dup {
			errs = append(errs, field.Invalid(binPath, k, "duplicate of key present in data"))
		}
		size += len(k) + len(cm.GetBinaryData()[k])
	}
	if size > maxDataSize {
		errs = append(errs, field.TooLong(dataPath, "", maxDataSize))
	}
	return errs
}

func validateSecret(sec *api.Secret) field.ErrorList {
	errs := validateObjectMeta(sec.GetMetadata(), true, dnsSubdomainName)
	size := 0
	dataPath, strPath := field.NewPath("data"), field.NewPath("stringData")
	for _, k := range sortedKeys(sec.GetData()) {
		errs = append(errs, validateConfigKey(k, dataPath)...)
		size += len(k) + len(sec.GetData()[k])
	}
	for _, k := range sortedKeys(sec.GetStringData()) {
		errs = append(errs, validateConfigKey(k, strPath)...)
		size += len(k) + len(sec.GetStringData()[k])
	}
	if size > maxDataSize {
		errs = append(errs, field.TooLong(dataPath, "", maxDataSize))
	}
	if t := sec.GetType(); t != "" {
		errs = append(errs, qualifiedName(t, field.NewPath("type"))...)
	}
	return errs
}

func validateConfigKey(k string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsConfigMapKey(k) {
		errs = append(errs, field.Invalid(fldPath, k, msg))
	}
	return errs
}

func validateLease(l *api.Lease) field.ErrorList {
	errs := validateObjectMeta(l.GetMetadata(), true, dnsSubdomainName)
	s := l.GetSpec()
	if s != nil && s.LeaseDurationSeconds != nil && s.GetLeaseDurationSeconds() <= 0 {
		errs = append(errs, field.Invalid(specPath.Child("leaseDurationSeconds"), s.GetLeaseDurationSeconds(), msgPositive))
	}
	errs = append(errs, nonNegative(s.GetLeaseTransitions(), specPath.Child("leaseTransitions"))...)
	return errs
}

func validateRoleBinding(rb *api.RoleBinding) field.ErrorList {
	errs := validateObjectMeta(rb.GetMetadata(), false, pathSegmentName)
	rrPath := field.NewPath("roleRef", "name")
	errs = append(errs, validateEnum(rb.GetRoleRef().GetName(), builtinRoles, false, rrPath)...)
	for i, s := range rb.GetSubjects() {
		p := field.NewPath("subjects").Index(i)
		errs = append(errs, validateEnum(s.GetKind(), supportedSubjectKinds, false, p.Child("kind"))...)
		if s.GetName() == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		}
	}
	return errs
}
