package admission

import (
	"net/netip"

	"google.golang.org/protobuf/types/known/structpb"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/internal/intstr"
)

// Messages shared by many checks, worded as Kubernetes words them.
const (
	msgNonNegative   = "must be greater than or equal to 0"
	msgPositive      = "must be greater than 0"
	msgImmutable     = "field is immutable"
	msgInvalidIP     = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
	msgIntOrPercent  = "must be an integer or percentage (e.g '5%')"
	msgNumberOrName  = "must be a port number or an IANA_SVC_NAME"
	protocolTCP      = "TCP"
	protocolUDP      = "UDP"
	protocolSCTP     = "SCTP"
	minNodePort      = 30000
	maxNodePort      = 32767
	serviceTypeCIP   = "ClusterIP"
	serviceTypeNP    = "NodePort"
	clusterIPNone    = "None"
	restartAlways    = "Always"
	restartOnFailure = "OnFailure"
	restartNever     = "Never"
)

var supportedProtocols = []string{protocolTCP, protocolUDP, protocolSCTP}

func validateProtocol(p string, fldPath *field.Path) field.ErrorList {
	switch p {
	case protocolTCP, protocolUDP, protocolSCTP:
		return nil
	case "":
		return field.ErrorList{field.Required(fldPath, "")}
	}
	return field.ErrorList{field.NotSupported(fldPath, p, supportedProtocols)}
}

// validateEnum accepts one of values; empty is Required unless allowEmpty.
func validateEnum(v string, values []string, allowEmpty bool, fldPath *field.Path) field.ErrorList {
	if v == "" {
		if allowEmpty {
			return nil
		}
		return field.ErrorList{field.Required(fldPath, "")}
	}
	for _, ok := range values {
		if v == ok {
			return nil
		}
	}
	return field.ErrorList{field.NotSupported(fldPath, v, values)}
}

// validatePortNumber checks 1–65535; a zero port is missing, not invalid.
func validatePortNumber(port int32, fldPath *field.Path) field.ErrorList {
	if port == 0 {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	var errs field.ErrorList
	for _, msg := range validation.IsValidPortNum(int(port)) {
		errs = append(errs, field.Invalid(fldPath, port, msg))
	}
	return errs
}

func validatePortName(name string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsValidPortName(name) {
		errs = append(errs, field.Invalid(fldPath, name, msg))
	}
	return errs
}

// validatePortNumOrName checks an IntOrString port: a number 1–65535 or an
// IANA_SVC_NAME (targetPort, probe ports).
func validatePortNumOrName(v *structpb.Value, fldPath *field.Path) field.ErrorList {
	switch intstr.TypeOf(v) {
	case intstr.Int:
		n, _ := intstr.IntValue(v)
		var errs field.ErrorList
		for _, msg := range validation.IsValidPortNum(n) {
			errs = append(errs, field.Invalid(fldPath, int64(n), msg))
		}
		return errs
	case intstr.String:
		s, _ := intstr.StringValue(v)
		if s == "" {
			return field.ErrorList{field.Required(fldPath, "")}
		}
		return validatePortName(s, fldPath)
	}
	if v == nil {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	return field.ErrorList{field.Invalid(fldPath, v.AsInterface(), msgNumberOrName)}
}

// validateNonNegativeIntOrPercent checks maxSurge and maxUnavailable: an
// integer ≥ 0 or "N%".
func validateNonNegativeIntOrPercent(v *structpb.Value, fldPath *field.Path) field.ErrorList {
	switch intstr.TypeOf(v) {
	case intstr.Int:
		if n, _ := intstr.IntValue(v); n < 0 {
			return field.ErrorList{field.Invalid(fldPath, int64(n), msgNonNegative)}
		}
		return nil
	case intstr.String:
		s, _ := intstr.StringValue(v)
		var errs field.ErrorList
		for _, msg := range validation.IsValidPercent(s) {
			errs = append(errs, field.Invalid(fldPath, s, msg))
		}
		return errs
	}
	if v == nil {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	return field.ErrorList{field.Invalid(fldPath, v.AsInterface(), msgIntOrPercent)}
}

// validateIP accepts any address netip parses (IPv4 or IPv6, no zones, no
// leading zeros), without Kubernetes' canonical-form rule.
func validateIP(ip string, fldPath *field.Path) field.ErrorList {
	if ip == "" {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil || addr.Zone() != "" {
		return field.ErrorList{field.Invalid(fldPath, ip, msgInvalidIP)}
	}
	if addr.Is4In6() {
		return field.ErrorList{field.Invalid(fldPath, ip, "must not be an IPv4-mapped IPv6 address")}
	}
	return nil
}

func validateCIDR(cidr string, fldPath *field.Path) field.ErrorList {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return field.ErrorList{field.Invalid(fldPath, cidr, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")}
	}
	if p.Masked() != p {
		return field.ErrorList{field.Invalid(fldPath, cidr, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64): host bits must be zero, e.g. "+p.Masked().String())}
	}
	return nil
}

// parseQuantity parses a Kubernetes quantity ("500m", "1Gi"), reporting
// malformed and negative values at fldPath.
func parseQuantity(s string, fldPath *field.Path) (resource.Quantity, field.ErrorList) {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return q, field.ErrorList{field.Invalid(fldPath, s, err.Error())}
	}
	if q.Sign() < 0 {
		return q, field.ErrorList{field.Invalid(fldPath, s, msgNonNegative)}
	}
	return q, nil
}

func nonNegative[T int32 | int64](v T, fldPath *field.Path) field.ErrorList {
	if v < 0 {
		return field.ErrorList{field.Invalid(fldPath, int64(v), msgNonNegative)}
	}
	return nil
}

func dnsSubdomain(v string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(v) {
		errs = append(errs, field.Invalid(fldPath, v, msg))
	}
	return errs
}

func dnsLabel(v string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Label(v) {
		errs = append(errs, field.Invalid(fldPath, v, msg))
	}
	return errs
}

func qualifiedName(v string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsQualifiedName(v) {
		errs = append(errs, field.Invalid(fldPath, v, msg))
	}
	return errs
}
