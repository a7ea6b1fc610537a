package admission

import (
	"strconv"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/proto/api"
)

var (
	supportedServiceTypes     = []string{serviceTypeCIP, serviceTypeNP}
	supportedSessionAffinity  = []string{"None", "ClientIP"}
	supportedTrafficPolicies  = []string{"Cluster", "Local"}
	msgClusterIPNoneOrIP      = "must be empty, 'None', or a valid IP address"
	msgNodePortRange          = "provided port is not in the valid range. The range of valid ports is " + strconv.Itoa(minNodePort) + "-" + strconv.Itoa(maxNodePort)
	msgNodePortForbiddenOnCIP = "may not be used when `type` is 'ClusterIP'"
)

func validateService(svc *api.Service) field.ErrorList {
	errs := validateObjectMeta(svc.GetMetadata(), true, dnsLabelName)
	s := svc.GetSpec()
	if s == nil {
		return append(errs, field.Required(specPath, ""))
	}
	errs = append(errs, validateEnum(s.GetType(), supportedServiceTypes, false, specPath.Child("type"))...)
	headless := s.GetClusterIp() == clusterIPNone
	cipPath := specPath.Child("clusterIP")
	switch ip := s.GetClusterIp(); {
	case ip == "":
	case headless:
		if s.GetType() == serviceTypeNP {
			errs = append(errs, field.Invalid(cipPath, ip, "may not be set to 'None' for NodePort services"))
		}
	default:
		if len(validateIP(ip, cipPath)) > 0 {
			errs = append(errs, field.Invalid(cipPath, ip, msgClusterIPNoneOrIP))
		}
	}
	for i, ip := range s.GetClusterIps() {
		p := specPath.Child("clusterIPs").Index(i)
		if ip == clusterIPNone {
			if i > 0 || !headless {
				errs = append(errs, field.Invalid(p, ip, "'None' must be the first and only value, and match spec.clusterIP"))
			}
			continue
		}
		errs = append(errs, validateIP(ip, p)...)
	}
	if ips := s.GetClusterIps(); len(ips) > 0 && s.GetClusterIp() != "" && ips[0] != s.GetClusterIp() {
		errs = append(errs, field.Invalid(specPath.Child("clusterIPs").Index(0), ips[0], "must match `spec.clusterIP`"))
	}

	portsPath := specPath.Child("ports")
	if len(s.GetPorts()) == 0 && !headless {
		errs = append(errs, field.Required(portsPath, ""))
	}
	names := make(map[string]bool, len(s.GetPorts()))
	portProtocols := make(map[string]bool, len(s.GetPorts()))
	nodePorts := make(map[string]bool, len(s.GetPorts()))
	for i, p := range s.GetPorts() {
		idx := portsPath.Index(i)
		if p == nil {
			errs = append(errs, field.Required(idx, ""))
			continue
		}
		namePath := idx.Child("name")
		switch {
		case p.GetName() == "":
			if len(s.GetPorts()) > 1 {
				errs = append(errs, field.Required(namePath, "must be specified when there is more than one port"))
			}
		case names[p.GetName()]:
			errs = append(errs, field.Duplicate(namePath, p.GetName()))
		default:
			names[p.GetName()] = true
			errs = append(errs, dnsLabel(p.GetName(), namePath)...)
		}
		errs = append(errs, validatePortNumber(p.GetPort(), idx.Child("port"))...)
		errs = append(errs, validateProtocol(p.GetProtocol(), idx.Child("protocol"))...)
		key := strconv.Itoa(int(p.GetPort())) + "/" + p.GetProtocol()
		if portProtocols[key] {
			errs = append(errs, field.Duplicate(idx, key))
		}
		portProtocols[key] = true
		errs = append(errs, validatePortNumOrName(p.GetTargetPort(), idx.Child("targetPort"))...)
		if np := p.GetNodePort(); np != 0 {
			npPath := idx.Child("nodePort")
			switch {
			case s.GetType() == serviceTypeCIP:
				errs = append(errs, field.Forbidden(npPath, msgNodePortForbiddenOnCIP))
			case np < minNodePort || np > maxNodePort:
				errs = append(errs, field.Invalid(npPath, np, msgNodePortRange))
			}
			npKey := strconv.Itoa(int(np)) + "/" + p.GetProtocol()
			if nodePorts[npKey] {
				errs = append(errs, field.Duplicate(npPath, np))
			}
			nodePorts[npKey] = true
		}
	}
	errs = append(errs, validateLabels(s.GetSelector(), specPath.Child("selector"))...)
	errs = append(errs, validateEnum(s.GetSessionAffinity(), supportedSessionAffinity, true, specPath.Child("sessionAffinity"))...)
	etpPath := specPath.Child("externalTrafficPolicy")
	errs = append(errs, validateEnum(s.GetExternalTrafficPolicy(), supportedTrafficPolicies, true, etpPath)...)
	if s.GetExternalTrafficPolicy() == "Local" && s.GetType() != serviceTypeNP {
		errs = append(errs, field.Invalid(etpPath, s.GetExternalTrafficPolicy(), "may only be set when `type` is 'NodePort'"))
	}
	for i, ip := range s.GetExternalIps() {
		errs = append(errs, validateIP(ip, specPath.Child("externalIPs").Index(i))...)
	}
	return errs
}

func validateEndpoints(ep *api.Endpoints) field.ErrorList {
	errs := validateObjectMeta(ep.GetMetadata(), true, dnsSubdomainName)
	subsetsPath := field.NewPath("subsets")
	for i, ss := range ep.GetSubsets() {
		idx := subsetsPath.Index(i)
		for j, a := range ss.GetAddresses() {
			errs = append(errs, validateEndpointAddress(a, idx.Child("addresses").Index(j))...)
		}
		for j, a := range ss.GetNotReadyAddresses() {
			errs = append(errs, validateEndpointAddress(a, idx.Child("notReadyAddresses").Index(j))...)
		}
		names := make(map[string]bool, len(ss.GetPorts()))
		for j, p := range ss.GetPorts() {
			pp := idx.Child("ports").Index(j)
			namePath := pp.Child("name")
			switch {
			case p.GetName() == "":
				if len(ss.GetPorts()) > 1 {
					errs = append(errs, field.Required(namePath, ""))
				}
			case names[p.GetName()]:
				errs = append(errs, field.Duplicate(namePath, p.GetName()))
			default:
				names[p.GetName()] = true
				errs = append(errs, dnsLabel(p.GetName(), namePath)...)
			}
			errs = append(errs, validatePortNumber(p.GetPort(), pp.Child("port"))...)
			errs = append(errs, validateProtocol(p.GetProtocol(), pp.Child("protocol"))...)
		}
	}
	return errs
}

func validateEndpointAddress(a *api.EndpointAddress, fldPath *field.Path) field.ErrorList {
	errs := validateIP(a.GetIp(), fldPath.Child("ip"))
	if a.GetHostname() != "" {
		errs = append(errs, dnsLabel(a.GetHostname(), fldPath.Child("hostname"))...)
	}
	if a.GetNodeName() != "" {
		errs = append(errs, dnsSubdomain(a.GetNodeName(), fldPath.Child("nodeName"))...)
	}
	return errs
}
