package admission

import (
	"github.com/distribution/reference"
	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/internal/intstr"
	"github.com/skiff-dev/skiff/proto/api"
)

// Default values, from docs/architecture.md "Defaults".
const (
	DefaultSchedulerName                 = "default-scheduler"
	DefaultTerminationGracePeriodSeconds = 30
	DefaultDNSPolicy                     = "ClusterFirst"
	DefaultDeploymentReplicas            = 1
	DefaultRevisionHistoryLimit          = 10
	DefaultProgressDeadlineSeconds       = 600
	DefaultMaxSurge                      = "25%"
	DefaultMaxUnavailable                = "25%"

	defaultProbeTimeoutSeconds   = 1
	defaultProbePeriodSeconds    = 10
	defaultProbeSuccessThreshold = 1
	defaultProbeFailureThreshold = 3
	pullAlways                   = "Always"
	pullIfNotPresent             = "IfNotPresent"
	pullNever                    = "Never"
	strategyRollingUpdate        = "RollingUpdate"
	strategyRecreate             = "Recreate"
	defaultImageTagForPullAlways = "latest"
	// DefaultSecretType is a Secret's type when it names none.
	DefaultSecretType = "Opaque"
)

// defaultSecret folds stringData into data, stringData winning, and
// empties it, as Kubernetes does on write: stringData is a write-only
// convenience, so readers (the kubelet, ctl) only ever see data. An empty
// type is Opaque.
func defaultSecret(s *api.Secret) {
	if s == nil {
		return
	}
	if len(s.StringData) > 0 {
		if s.Data == nil {
			s.Data = make(map[string][]byte, len(s.StringData))
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
		s.StringData = nil
	}
	if s.Type == "" {
		s.Type = DefaultSecretType
	}
}

func defaultPodSpec(s *api.PodSpec) {
	if s.RestartPolicy == "" {
		s.RestartPolicy = restartAlways
	}
	if s.TerminationGracePeriodSeconds == nil {
		s.TerminationGracePeriodSeconds = proto.Int64(DefaultTerminationGracePeriodSeconds)
	}
	if s.DnsPolicy == "" {
		s.DnsPolicy = DefaultDNSPolicy
	}
	if s.SchedulerName == "" {
		s.SchedulerName = DefaultSchedulerName
	}
	for _, c := range s.Containers {
		defaultContainer(c)
	}
	for _, c := range s.InitContainers {
		defaultContainer(c)
	}
}

func defaultContainer(c *api.Container) {
	if c == nil {
		return
	}
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = DefaultPullPolicy(c.Image)
	}
	for _, p := range c.Ports {
		if p != nil && p.Protocol == "" {
			p.Protocol = protocolTCP
		}
	}
	defaultProbe(c.LivenessProbe)
	defaultProbe(c.ReadinessProbe)
	defaultProbe(c.StartupProbe)
}

// DefaultPullPolicy is the imagePullPolicy Kubernetes gives a container:
// Always for an untagged or ":latest" image, IfNotPresent otherwise
// (including images pinned by digest and references that do not parse,
// which validation rejects anyway).
func DefaultPullPolicy(image string) string {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return pullIfNotPresent
	}
	if tagged, ok := named.(reference.Tagged); ok {
		if tagged.Tag() == defaultImageTagForPullAlways {
			return pullAlways
		}
		return pullIfNotPresent
	}
	if _, ok := named.(reference.Digested); ok {
		return pullIfNotPresent
	}
	return pullAlways
}

func defaultProbe(p *api.Probe) {
	if p == nil {
		return
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = defaultProbeTimeoutSeconds
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = defaultProbePeriodSeconds
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = defaultProbeSuccessThreshold
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = defaultProbeFailureThreshold
	}
}

// defaultTemplate defaults the pod spec of a controller's pod template. The
// selector is never derived from the template labels: apps/v1 requires one.
func defaultTemplate(t *api.PodTemplateSpec) {
	if t == nil {
		return
	}
	if t.Spec == nil {
		t.Spec = &api.PodSpec{}
	}
	defaultPodSpec(t.Spec)
}

func defaultDeployment(d *api.Deployment) {
	if d == nil {
		return
	}
	if d.Spec == nil {
		d.Spec = &api.DeploymentSpec{}
	}
	s := d.Spec
	if s.Replicas == nil {
		s.Replicas = proto.Int32(DefaultDeploymentReplicas)
	}
	if s.Strategy == nil {
		s.Strategy = &api.DeploymentStrategy{}
	}
	if s.Strategy.Type == "" {
		s.Strategy.Type = strategyRollingUpdate
	}
	// Recreate has no rolling parameters: filling them would make the
	// object invalid ("may not be specified when type is Recreate").
	if s.Strategy.Type == strategyRollingUpdate {
		if s.Strategy.RollingUpdate == nil {
			s.Strategy.RollingUpdate = &api.RollingUpdateDeployment{}
		}
		ru := s.Strategy.RollingUpdate
		if ru.MaxUnavailable == nil {
			ru.MaxUnavailable = intstr.FromString(DefaultMaxUnavailable)
		}
		if ru.MaxSurge == nil {
			ru.MaxSurge = intstr.FromString(DefaultMaxSurge)
		}
	}
	if s.RevisionHistoryLimit == nil {
		s.RevisionHistoryLimit = proto.Int32(DefaultRevisionHistoryLimit)
	}
	if s.ProgressDeadlineSeconds == nil {
		s.ProgressDeadlineSeconds = proto.Int32(DefaultProgressDeadlineSeconds)
	}
	defaultTemplate(s.Template)
}

func defaultReplicaSet(rs *api.ReplicaSet) {
	if rs == nil {
		return
	}
	if rs.Spec == nil {
		rs.Spec = &api.ReplicaSetSpec{}
	}
	if rs.Spec.Replicas == nil {
		rs.Spec.Replicas = proto.Int32(DefaultDeploymentReplicas)
	}
	defaultTemplate(rs.Spec.Template)
}

func defaultService(svc *api.Service) {
	if svc == nil {
		return
	}
	if svc.Spec == nil {
		svc.Spec = &api.ServiceSpec{}
	}
	if svc.Spec.Type == "" {
		svc.Spec.Type = serviceTypeCIP
	}
	for _, p := range svc.Spec.Ports {
		if p == nil {
			continue
		}
		if p.Protocol == "" {
			p.Protocol = protocolTCP
		}
		if p.TargetPort == nil && p.Port != 0 {
			p.TargetPort = intstr.FromInt(int(p.Port))
		}
	}
}

func defaultEndpoints(ep *api.Endpoints) {
	if ep == nil {
		return
	}
	for _, ss := range ep.Subsets {
		for _, p := range ss.GetPorts() {
			if p != nil && p.Protocol == "" {
				p.Protocol = protocolTCP
			}
		}
	}
}

// keepAllocatedServiceValues copies what the apiserver allocated to old
// (clusterIP, clusterIPs, nodePorts) into svc where svc leaves it empty.
func keepAllocatedServiceValues(svc, old *api.Service) {
	if svc == nil || old == nil || old.Spec == nil {
		return
	}
	if svc.Spec == nil {
		svc.Spec = &api.ServiceSpec{}
	}
	if svc.Spec.ClusterIp == "" && len(svc.Spec.ClusterIps) == 0 {
		svc.Spec.ClusterIp = old.Spec.ClusterIp
		svc.Spec.ClusterIps = append([]string(nil), old.Spec.ClusterIps...)
	}
	newType, oldType := svc.Spec.Type, old.Spec.Type
	if newType == "" {
		newType = serviceTypeCIP
	}
	if newType != serviceTypeNP || oldType != serviceTypeNP {
		return
	}
	for _, p := range svc.Spec.Ports {
		if p == nil || p.NodePort != 0 {
			continue
		}
		for _, op := range old.Spec.Ports {
			if op.GetPort() == p.Port && protocolOrTCP(op.GetProtocol()) == protocolOrTCP(p.Protocol) {
				p.NodePort = op.GetNodePort()
				break
			}
		}
	}
}

func protocolOrTCP(p string) string {
	if p == "" {
		return protocolTCP
	}
	return p
}
