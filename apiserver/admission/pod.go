package admission

import (
	"math"
	"path"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/proto/api"
)

var (
	supportedRestartPolicies = []string{restartAlways, restartOnFailure, restartNever}
	supportedDNSPolicies     = []string{"ClusterFirst", "ClusterFirstWithHostNet", "Default"}
	supportedPullPolicies    = []string{pullAlways, pullIfNotPresent, pullNever}
	supportedTaintEffects    = []string{"NoSchedule", "PreferNoSchedule", "NoExecute"}
	supportedTolerationOps   = []string{"Equal", "Exists"}
	supportedNodeSelectorOps = []string{"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"}
	supportedURISchemes      = []string{"HTTP", "HTTPS"}
	supportedHostPathTypes   = []string{"", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"}
	standardResourceNames    = map[string]bool{"cpu": true, "memory": true, "ephemeral-storage": true}

	specPath         = field.NewPath("spec")
	templateSpecPath = field.NewPath("spec", "template", "spec")
)

func validatePod(pod *api.Pod) field.ErrorList {
	errs := validateObjectMeta(pod.GetMetadata(), true, dnsSubdomainName)
	if pod.GetSpec() == nil {
		return append(errs, field.Required(specPath, ""))
	}
	errs = append(errs, validatePodSpec(pod.GetSpec(), specPath)...)
	errs = append(errs, validatePodStatus(pod.GetStatus(), field.NewPath("status"))...)
	return errs
}

// validatePodSpec checks a pod spec wherever it appears: a Pod's spec or a
// controller's spec.template.spec.
func validatePodSpec(s *api.PodSpec, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	volumes, vErrs := validateVolumes(s.GetVolumes(), fldPath.Child("volumes"))
	errs = append(errs, vErrs...)

	if len(s.GetContainers()) == 0 {
		errs = append(errs, field.Required(fldPath.Child("containers"), ""))
	}
	// Container names are unique across containers and init containers;
	// port names across the whole pod.
	names := make(map[string]bool, len(s.GetContainers())+len(s.GetInitContainers()))
	ports := podPorts{names: map[string]bool{}, hostPorts: map[string]bool{}}
	for i, c := range s.GetInitContainers() {
		p := fldPath.Child("initContainers").Index(i)
		errs = append(errs, validateContainer(c, s, volumes, names, ports, p)...)
		for _, probe := range []struct {
			name string
			set  bool
		}{{"livenessProbe", c.GetLivenessProbe() != nil}, {"readinessProbe", c.GetReadinessProbe() != nil}, {"startupProbe", c.GetStartupProbe() != nil}} {
			if probe.set {
				errs = append(errs, field.Forbidden(p.Child(probe.name), "may not be set for init containers"))
			}
		}
	}
	for i, c := range s.GetContainers() {
		p := fldPath.Child("containers").Index(i)
		errs = append(errs, validateContainer(c, s, volumes, names, ports, p)...)
		errs = append(errs, validateProbe(c.GetLivenessProbe(), true, p.Child("livenessProbe"))...)
		errs = append(errs, validateProbe(c.GetReadinessProbe(), false, p.Child("readinessProbe"))...)
		errs = append(errs, validateProbe(c.GetStartupProbe(), true, p.Child("startupProbe"))...)
	}

	errs = append(errs, validateEnum(s.GetRestartPolicy(), supportedRestartPolicies, false, fldPath.Child("restartPolicy"))...)
	errs = append(errs, validateEnum(s.GetDnsPolicy(), supportedDNSPolicies, false, fldPath.Child("dnsPolicy"))...)
	if s.TerminationGracePeriodSeconds != nil {
		errs = append(errs, nonNegative(s.GetTerminationGracePeriodSeconds(), fldPath.Child("terminationGracePeriodSeconds"))...)
	}
	if s.ActiveDeadlineSeconds != nil {
		if v := s.GetActiveDeadlineSeconds(); v < 1 || v > math.MaxInt32 {
			errs = append(errs, field.Invalid(fldPath.Child("activeDeadlineSeconds"), v, validation.InclusiveRangeError(1, math.MaxInt32)))
		}
	}
	if s.GetNodeName() != "" {
		errs = append(errs, dnsSubdomain(s.GetNodeName(), fldPath.Child("nodeName"))...)
	}
	if s.GetSchedulerName() != "" {
		errs = append(errs, dnsSubdomain(s.GetSchedulerName(), fldPath.Child("schedulerName"))...)
	}
	if s.GetServiceAccountName() != "" {
		errs = append(errs, dnsSubdomain(s.GetServiceAccountName(), fldPath.Child("serviceAccountName"))...)
	}
	if s.GetHostname() != "" {
		errs = append(errs, dnsLabel(s.GetHostname(), fldPath.Child("hostname"))...)
	}
	if s.GetSubdomain() != "" {
		errs = append(errs, dnsLabel(s.GetSubdomain(), fldPath.Child("subdomain"))...)
	}
	errs = append(errs, validateLabels(s.GetNodeSelector(), fldPath.Child("nodeSelector"))...)
	errs = append(errs, validateTolerations(s.GetTolerations(), fldPath.Child("tolerations"))...)
	errs = append(errs, validateAffinity(s.GetAffinity(), fldPath.Child("affinity"))...)
	for i, g := range s.GetReadinessGates() {
		errs = append(errs, qualifiedName(g.GetConditionType(), fldPath.Child("readinessGates").Index(i).Child("conditionType"))...)
	}
	return errs
}

// podPorts collects what must be unique across a pod's containers: port
// names, and host ports per protocol and host IP.
type podPorts struct {
	names     map[string]bool
	hostPorts map[string]bool
}

func validateContainer(c *api.Container, s *api.PodSpec, volumes map[string]bool, names map[string]bool, ports podPorts, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c == nil {
		return append(errs, field.Required(fldPath, ""))
	}
	namePath := fldPath.Child("name")
	switch {
	case c.GetName() == "":
		errs = append(errs, field.Required(namePath, ""))
	case names[c.GetName()]:
		errs = append(errs, field.Duplicate(namePath, c.GetName()))
	default:
		names[c.GetName()] = true
		errs = append(errs, dnsLabel(c.GetName(), namePath)...)
	}
	errs = append(errs, validateImage(c.GetImage(), fldPath.Child("image"))...)
	errs = append(errs, validateEnum(c.GetImagePullPolicy(), supportedPullPolicies, false, fldPath.Child("imagePullPolicy"))...)
	errs = append(errs, validateContainerPorts(c.GetPorts(), s.GetHostNetwork(), ports, fldPath.Child("ports"))...)
	errs = append(errs, validateEnv(c.GetEnv(), fldPath.Child("env"))...)
	errs = append(errs, validateResources(c.GetResources(), fldPath.Child("resources"))...)
	errs = append(errs, validateVolumeMounts(c.GetVolumeMounts(), volumes, fldPath.Child("volumeMounts"))...)
	if sc := c.GetSecurityContext(); sc != nil {
		if sc.RunAsUser != nil {
			for _, msg := range validation.IsValidUserID(sc.GetRunAsUser()) {
				errs = append(errs, field.Invalid(fldPath.Child("securityContext", "runAsUser"), sc.GetRunAsUser(), msg))
			}
		}
		if sc.RunAsGroup != nil {
			for _, msg := range validation.IsValidGroupID(sc.GetRunAsGroup()) {
				errs = append(errs, field.Invalid(fldPath.Child("securityContext", "runAsGroup"), sc.GetRunAsGroup(), msg))
			}
		}
	}
	return errs
}

// validateImage requires a reference the container runtime can pull:
// "nginx", "nginx:1.25", "localhost:5000/app@sha256:...".
func validateImage(image string, fldPath *field.Path) field.ErrorList {
	if image == "" {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	if strings.TrimSpace(image) != image {
		return field.ErrorList{field.Invalid(fldPath, image, "must not have leading or trailing whitespace")}
	}
	if _, err := reference.ParseNormalizedNamed(image); err != nil {
		return field.ErrorList{field.Invalid(fldPath, image, "must be a valid image reference: "+err.Error())}
	}
	return nil
}

func validateContainerPorts(ports []*api.ContainerPort, hostNetwork bool, seen podPorts, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, p := range ports {
		idx := fldPath.Index(i)
		if p == nil {
			errs = append(errs, field.Required(idx, ""))
			continue
		}
		if p.GetName() != "" {
			if seen.names[p.GetName()] {
				errs = append(errs, field.Duplicate(idx.Child("name"), p.GetName()))
			} else {
				seen.names[p.GetName()] = true
				errs = append(errs, validatePortName(p.GetName(), idx.Child("name"))...)
			}
		}
		errs = append(errs, validatePortNumber(p.GetContainerPort(), idx.Child("containerPort"))...)
		if p.GetHostPort() != 0 {
			errs = append(errs, validatePortNumber(p.GetHostPort(), idx.Child("hostPort"))...)
			if hostNetwork && p.GetHostPort() != p.GetContainerPort() {
				errs = append(errs, field.Invalid(idx.Child("hostPort"), p.GetHostPort(), "must match `containerPort` when `hostNetwork` is true"))
			}
			// The node can bind a host port once per protocol and address.
			key := p.GetProtocol() + "/" + p.GetHostIp() + "/" + strconv.Itoa(int(p.GetHostPort()))
			if seen.hostPorts[key] {
				errs = append(errs, field.Duplicate(idx.Child("hostPort"), key))
			}
			seen.hostPorts[key] = true
		}
		errs = append(errs, validateProtocol(p.GetProtocol(), idx.Child("protocol"))...)
		if p.GetHostIp() != "" {
			errs = append(errs, validateIP(p.GetHostIp(), idx.Child("hostIP"))...)
		}
	}
	return errs
}

func validateEnv(env []*api.EnvVar, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, e := range env {
		p := fldPath.Index(i).Child("name")
		if e.GetName() == "" {
			errs = append(errs, field.Required(p, ""))
			continue
		}
		// Kubernetes' relaxed rule (GA in 1.34): printable ASCII but '='.
		for _, msg := range validation.IsRelaxedEnvVarName(e.GetName()) {
			errs = append(errs, field.Invalid(p, e.GetName(), msg))
		}
	}
	return errs
}

func validateResources(r *api.ResourceRequirements, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if r == nil {
		return errs
	}
	limitsPath, requestsPath := fldPath.Child("limits"), fldPath.Child("requests")
	for _, name := range sortedKeys(r.GetLimits()) {
		p := limitsPath.Key(name)
		errs = append(errs, validateResourceName(name, p)...)
		_, qErrs := parseQuantity(r.GetLimits()[name], p)
		errs = append(errs, qErrs...)
	}
	for _, name := range sortedKeys(r.GetRequests()) {
		p := requestsPath.Key(name)
		errs = append(errs, validateResourceName(name, p)...)
		req, qErrs := parseQuantity(r.GetRequests()[name], p)
		errs = append(errs, qErrs...)
		limitStr, hasLimit := r.GetLimits()[name]
		if len(qErrs) > 0 || !hasLimit {
			continue
		}
		limit, lErrs := parseQuantity(limitStr, limitsPath.Key(name))
		if len(lErrs) == 0 && req.Cmp(limit) > 0 {
			errs = append(errs, field.Invalid(p, r.GetRequests()[name], "must be less than or equal to "+name+" limit of "+limit.String()))
		}
	}
	return errs
}

// validateResourceName accepts the standard resources (cpu, memory,
// ephemeral-storage, hugepages-*) and domain-qualified extended resources.
func validateResourceName(name string, fldPath *field.Path) field.ErrorList {
	errs := qualifiedName(name, fldPath)
	if len(errs) > 0 {
		return errs
	}
	if !standardResourceNames[name] && !strings.HasPrefix(name, "hugepages-") && !strings.Contains(name, "/") {
		errs = append(errs, field.Invalid(fldPath, name, "must be a standard resource type or fully qualified"))
	}
	return errs
}

// validateVolumes checks the pod's volumes and returns the set of names
// volumeMounts may refer to.
func validateVolumes(volumes []*api.Volume, fldPath *field.Path) (map[string]bool, field.ErrorList) {
	var errs field.ErrorList
	names := make(map[string]bool, len(volumes))
	for i, v := range volumes {
		idx := fldPath.Index(i)
		namePath := idx.Child("name")
		switch {
		case v.GetName() == "":
			errs = append(errs, field.Required(namePath, ""))
		case names[v.GetName()]:
			errs = append(errs, field.Duplicate(namePath, v.GetName()))
		default:
			names[v.GetName()] = true
			errs = append(errs, dnsLabel(v.GetName(), namePath)...)
		}
		sources := 0
		if ed := v.GetEmptyDir(); ed != nil {
			sources++
			p := idx.Child("emptyDir")
			errs = append(errs, validateEnum(ed.GetMedium(), []string{"Memory"}, true, p.Child("medium"))...)
			if ed.GetSizeLimit() != "" {
				_, qErrs := parseQuantity(ed.GetSizeLimit(), p.Child("sizeLimit"))
				errs = append(errs, qErrs...)
			}
		}
		if hp := v.GetHostPath(); hp != nil {
			sources++
			p := idx.Child("hostPath")
			if hp.GetPath() == "" {
				errs = append(errs, field.Required(p.Child("path"), ""))
			}
			errs = append(errs, validateEnum(hp.GetType(), supportedHostPathTypes, true, p.Child("type"))...)
		}
		if cm := v.GetConfigMap(); cm != nil {
			sources++
			p := idx.Child("configMap", "name")
			if cm.GetName() == "" {
				errs = append(errs, field.Required(p, ""))
			} else {
				errs = append(errs, dnsSubdomain(cm.GetName(), p)...)
			}
		}
		if sec := v.GetSecret(); sec != nil {
			sources++
			p := idx.Child("secret", "secretName")
			if sec.GetSecretName() == "" {
				errs = append(errs, field.Required(p, ""))
			} else {
				errs = append(errs, dnsSubdomain(sec.GetSecretName(), p)...)
			}
		}
		switch {
		case sources == 0:
			errs = append(errs, field.Required(idx, "must specify a volume type"))
		case sources > 1:
			errs = append(errs, field.Forbidden(idx, "may not specify more than 1 volume type"))
		}
	}
	return names, errs
}

func validateVolumeMounts(mounts []*api.VolumeMount, volumes map[string]bool, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	paths := make(map[string]bool, len(mounts))
	for i, m := range mounts {
		idx := fldPath.Index(i)
		switch {
		case m.GetName() == "":
			errs = append(errs, field.Required(idx.Child("name"), ""))
		case !volumes[m.GetName()]:
			errs = append(errs, field.NotFound(idx.Child("name"), m.GetName()))
		}
		mp := m.GetMountPath()
		switch {
		case mp == "":
			errs = append(errs, field.Required(idx.Child("mountPath"), ""))
		case paths[mp]:
			errs = append(errs, field.Invalid(idx.Child("mountPath"), mp, "must be unique"))
		default:
			paths[mp] = true
		}
		if sp := m.GetSubPath(); sp != "" {
			errs = append(errs, validateLocalPath(sp, idx.Child("subPath"))...)
		}
	}
	return errs
}

// validateLocalPath requires a relative path that stays inside its volume.
func validateLocalPath(p string, fldPath *field.Path) field.ErrorList {
	if path.IsAbs(p) {
		return field.ErrorList{field.Invalid(fldPath, p, "must be a relative path")}
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return field.ErrorList{field.Invalid(fldPath, p, "must not contain '..'")}
		}
	}
	return nil
}

// validateProbe checks one probe; liveness and startup probes must have
// successThreshold 1, as in Kubernetes.
func validateProbe(p *api.Probe, successMustBeOne bool, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if p == nil {
		return errs
	}
	handlers := 0
	if e := p.GetExec(); e != nil {
		handlers++
		if len(e.GetCommand()) == 0 {
			errs = append(errs, field.Required(fldPath.Child("exec", "command"), ""))
		}
	}
	if h := p.GetHttpGet(); h != nil {
		handlers++
		hp := fldPath.Child("httpGet")
		if handlers > 1 {
			errs = append(errs, field.Forbidden(hp, "may not specify more than 1 handler type"))
		}
		errs = append(errs, validatePortNumOrName(h.GetPort(), hp.Child("port"))...)
		errs = append(errs, validateEnum(h.GetScheme(), supportedURISchemes, true, hp.Child("scheme"))...)
		if h.GetPath() != "" && !strings.HasPrefix(h.GetPath(), "/") {
			errs = append(errs, field.Invalid(hp.Child("path"), h.GetPath(), "must be an absolute path"))
		}
	}
	if t := p.GetTcpSocket(); t != nil {
		handlers++
		tp := fldPath.Child("tcpSocket")
		if handlers > 1 {
			errs = append(errs, field.Forbidden(tp, "may not specify more than 1 handler type"))
		}
		errs = append(errs, validatePortNumOrName(t.GetPort(), tp.Child("port"))...)
	}
	if handlers == 0 {
		errs = append(errs, field.Required(fldPath, "must specify a handler type"))
	}
	errs = append(errs, nonNegative(p.GetInitialDelaySeconds(), fldPath.Child("initialDelaySeconds"))...)
	for _, f := range []struct {
		name string
		v    int32
	}{
		{"timeoutSeconds", p.GetTimeoutSeconds()},
		{"periodSeconds", p.GetPeriodSeconds()},
		{"successThreshold", p.GetSuccessThreshold()},
		{"failureThreshold", p.GetFailureThreshold()},
	} {
		if f.v < 1 {
			errs = append(errs, field.Invalid(fldPath.Child(f.name), f.v, msgPositive))
		}
	}
	if successMustBeOne && p.GetSuccessThreshold() > 1 {
		errs = append(errs, field.Invalid(fldPath.Child("successThreshold"), p.GetSuccessThreshold(), "must be 1"))
	}
	return errs
}

func validateTolerations(tolerations []*api.Toleration, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, t := range tolerations {
		idx := fldPath.Index(i)
		if t.GetKey() != "" {
			errs = append(errs, qualifiedName(t.GetKey(), idx.Child("key"))...)
		}
		switch t.GetOperator() {
		case "", "Equal":
			if t.GetKey() == "" {
				errs = append(errs, field.Invalid(idx.Child("operator"), t.GetOperator(), "operator must be Exists when `key` is empty, which means \"match all values and all keys\""))
			}
			for _, msg := range validation.IsValidLabelValue(t.GetValue()) {
				errs = append(errs, field.Invalid(idx.Child("value"), t.GetValue(), msg))
			}
		case "Exists":
			if t.GetValue() != "" {
				errs = append(errs, field.Invalid(idx.Child("operator"), t.GetValue(), "value must be empty when `operator` is 'Exists'"))
			}
		default:
			errs = append(errs, field.NotSupported(idx.Child("operator"), t.GetOperator(), supportedTolerationOps))
		}
		errs = append(errs, validateEnum(t.GetEffect(), supportedTaintEffects, true, idx.Child("effect"))...)
		if t != nil && t.TolerationSeconds != nil && t.GetEffect() != "NoExecute" {
			errs = append(errs, field.Invalid(idx.Child("effect"), t.GetEffect(), "effect must be 'NoExecute' when `tolerationSeconds` is set"))
		}
	}
	return errs
}

func validateTaints(taints []*api.Taint, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := make(map[string]bool, len(taints))
	for i, t := range taints {
		idx := fldPath.Index(i)
		if t.GetKey() == "" {
			errs = append(errs, field.Required(idx.Child("key"), ""))
		} else {
			errs = append(errs, qualifiedName(t.GetKey(), idx.Child("key"))...)
		}
		for _, msg := range validation.IsValidLabelValue(t.GetValue()) {
			errs = append(errs, field.Invalid(idx.Child("value"), t.GetValue(), msg))
		}
		errs = append(errs, validateEnum(t.GetEffect(), supportedTaintEffects, false, idx.Child("effect"))...)
		// One taint per key and effect, as Kubernetes requires.
		k := t.GetKey() + "\x00" + t.GetEffect()
		if seen[k] {
			errs = append(errs, field.Duplicate(idx, t.GetKey()+":"+t.GetEffect()))
		}
		seen[k] = true
	}
	return errs
}

func validateAffinity(a *api.Affinity, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	na := a.GetNodeAffinity()
	if na == nil {
		return errs
	}
	p := fldPath.Child("nodeAffinity")
	if req := na.GetRequiredDuringSchedulingIgnoredDuringExecution(); req != nil {
		rp := p.Child("requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
		if len(req.GetNodeSelectorTerms()) == 0 {
			errs = append(errs, field.Required(rp, "must have at least one node selector term"))
		}
		for i, term := range req.GetNodeSelectorTerms() {
			errs = append(errs, validateNodeSelectorTerm(term, rp.Index(i))...)
		}
	}
	for i, pref := range na.GetPreferredDuringSchedulingIgnoredDuringExecution() {
		pp := p.Child("preferredDuringSchedulingIgnoredDuringExecution").Index(i)
		if w := pref.GetWeight(); w < 1 || w > 100 {
			errs = append(errs, field.Invalid(pp.Child("weight"), w, validation.InclusiveRangeError(1, 100)))
		}
		errs = append(errs, validateNodeSelectorTerm(pref.GetPreference(), pp.Child("preference"))...)
	}
	return errs
}

func validateNodeSelectorTerm(term *api.NodeSelectorTerm, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, r := range term.GetMatchExpressions() {
		errs = append(errs, validateNodeSelectorRequirement(r, true, fldPath.Child("matchExpressions").Index(i))...)
	}
	for i, r := range term.GetMatchFields() {
		errs = append(errs, validateNodeSelectorRequirement(r, false, fldPath.Child("matchFields").Index(i))...)
	}
	return errs
}

func validateNodeSelectorRequirement(r *api.NodeSelectorRequirement, labelKey bool, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if labelKey {
		errs = append(errs, qualifiedName(r.GetKey(), fldPath.Child("key"))...)
	} else if r.GetKey() != "metadata.name" {
		errs = append(errs, field.NotSupported(fldPath.Child("key"), r.GetKey(), []string{"metadata.name"}))
	}
	vp := fldPath.Child("values")
	switch r.GetOperator() {
	case "In", "NotIn":
		if len(r.GetValues()) == 0 {
			errs = append(errs, field.Required(vp, "must be specified when `operator` is 'In' or 'NotIn'"))
		}
	case "Exists", "DoesNotExist":
		if len(r.GetValues()) > 0 {
			errs = append(errs, field.Forbidden(vp, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
		}
	case "Gt", "Lt":
		if len(r.GetValues()) != 1 {
			errs = append(errs, field.Required(vp, "must be specified single value when `operator` is 'Lt' or 'Gt'"))
		} else if _, err := strconv.ParseInt(r.GetValues()[0], 10, 64); err != nil {
			errs = append(errs, field.Invalid(vp.Index(0), r.GetValues()[0], "must be an integer"))
		}
	default:
		errs = append(errs, field.NotSupported(fldPath.Child("operator"), r.GetOperator(), supportedNodeSelectorOps))
	}
	return errs
}

func validatePodStatus(st *api.PodStatus, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if st == nil {
		return errs
	}
	if st.GetPodIp() != "" {
		errs = append(errs, validateIP(st.GetPodIp(), fldPath.Child("podIP"))...)
	}
	if st.GetHostIp() != "" {
		errs = append(errs, validateIP(st.GetHostIp(), fldPath.Child("hostIP"))...)
	}
	for i, ip := range st.GetPodIps() {
		errs = append(errs, validateIP(ip.GetIp(), fldPath.Child("podIPs").Index(i).Child("ip"))...)
	}
	errs = append(errs, validateEnum(st.GetPhase(), []string{"Pending", "Running", "Succeeded", "Failed", "Unknown"}, true, fldPath.Child("phase"))...)
	return errs
}
