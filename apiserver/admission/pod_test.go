package admission

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/internal/intstr"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

const (
	required     = field.ErrorTypeRequired
	invalidT     = field.ErrorTypeInvalid
	notSupported = field.ErrorTypeNotSupported
	duplicate    = field.ErrorTypeDuplicate
	forbidden    = field.ErrorTypeForbidden
	notFound     = field.ErrorTypeNotFound
	tooLong      = field.ErrorTypeTooLong
)

func pod(mutate func(*api.Pod)) func() kinds.Object { return with(validPod, mutate) }

func ctr(p *api.Pod) *api.Container { return p.Spec.Containers[0] }

func TestValidatePodMetadata(t *testing.T) {
	runRules(t, []rule{
		{"valid pod", pod(nil), "", ""},
		{"name or generateName required", pod(func(p *api.Pod) { p.Metadata.Name = "" }), "metadata.name", required},
		{"name must be a DNS-1123 subdomain", pod(func(p *api.Pod) { p.Metadata.Name = "Web_1" }), "metadata.name", invalidT},
		{"name may be a dotted subdomain", pod(func(p *api.Pod) { p.Metadata.Name = "web.v1" }), "", ""},
		{"name too long", pod(func(p *api.Pod) { p.Metadata.Name = strings.Repeat("a", 254) }), "metadata.name", invalidT},
		{"generateName alone is enough", pod(func(p *api.Pod) { p.Metadata.Name, p.Metadata.GenerateName = "", "web-" }), "", ""},
		{"generateName prefix must be valid", pod(func(p *api.Pod) { p.Metadata.GenerateName = "Web-" }), "metadata.generateName", invalidT},
		{"namespace required for namespaced kinds", pod(func(p *api.Pod) { p.Metadata.Namespace = "" }), "metadata.namespace", required},
		{"namespace must be a DNS-1123 label", pod(func(p *api.Pod) { p.Metadata.Namespace = "a.b" }), "metadata.namespace", invalidT},
		{"label key must be a qualified name", pod(func(p *api.Pod) { p.Metadata.Labels["bad key"] = "x" }), "metadata.labels", invalidT},
		{"label key may carry a prefix", pod(func(p *api.Pod) { p.Metadata.Labels["app.kubernetes.io/name"] = "web" }), "", ""},
		{"label value must be valid", pod(func(p *api.Pod) { p.Metadata.Labels["app"] = "-web" }), "metadata.labels", invalidT},
		{"label value too long", pod(func(p *api.Pod) { p.Metadata.Labels["app"] = strings.Repeat("a", 64) }), "metadata.labels", invalidT},
		{"annotation key must be a qualified name", pod(func(p *api.Pod) { p.Metadata.Annotations = map[string]string{"a b": ""} }), "metadata.annotations", invalidT},
		{"annotation values may be anything", pod(func(p *api.Pod) { p.Metadata.Annotations = map[string]string{"Example.com/Note": "any text: {}"} }), "", ""},
		{"annotations total size", pod(func(p *api.Pod) { p.Metadata.Annotations = map[string]string{"big": strings.Repeat("x", 256*1024)} }), "metadata.annotations", tooLong},
		{"ownerReference uid required", pod(func(p *api.Pod) {
			p.Metadata.OwnerReferences = []*api.OwnerReference{{ApiVersion: "apps/v1", Kind: "ReplicaSet", Name: "web"}}
		}), "metadata.ownerReferences[0].uid", required},
		{"ownerReference apiVersion required", pod(func(p *api.Pod) {
			p.Metadata.OwnerReferences = []*api.OwnerReference{{Kind: "ReplicaSet", Name: "web", Uid: "u"}}
		}), "metadata.ownerReferences[0].apiVersion", required},
		{"ownerReference kind required", pod(func(p *api.Pod) {
			p.Metadata.OwnerReferences = []*api.OwnerReference{{ApiVersion: "apps/v1", Name: "web", Uid: "u"}}
		}), "metadata.ownerReferences[0].kind", required},
		{"ownerReference name required", pod(func(p *api.Pod) {
			p.Metadata.OwnerReferences = []*api.OwnerReference{{ApiVersion: "apps/v1", Kind: "ReplicaSet", Uid: "u"}}
		}), "metadata.ownerReferences[0].name", required},
		{"only one controller reference", pod(func(p *api.Pod) {
			p.Metadata.OwnerReferences = []*api.OwnerReference{
				{ApiVersion: "apps/v1", Kind: "ReplicaSet", Name: "a", Uid: "1", Controller: proto.Bool(true)},
				{ApiVersion: "apps/v1", Kind: "ReplicaSet", Name: "b", Uid: "2", Controller: proto.Bool(true)},
			}
		}), "metadata.ownerReferences", invalidT},
		{"finalizer must be standard or qualified", pod(func(p *api.Pod) { p.Metadata.Finalizers = []string{"cleanup"} }), "metadata.finalizers[0]", invalidT},
		{"qualified finalizer", pod(func(p *api.Pod) { p.Metadata.Finalizers = []string{"skiff.dev/cleanup", "foregroundDeletion"} }), "", ""},
		{"finalizer syntax", pod(func(p *api.Pod) { p.Metadata.Finalizers = []string{"a/b/c"} }), "metadata.finalizers[0]", invalidT},
		{"orphan and foregroundDeletion exclusive", pod(func(p *api.Pod) { p.Metadata.Finalizers = []string{"orphan", "foregroundDeletion"} }), "metadata.finalizers", invalidT},
		{"deletionGracePeriodSeconds not negative", pod(func(p *api.Pod) { p.Metadata.DeletionGracePeriodSeconds = proto.Int64(-1) }), "metadata.deletionGracePeriodSeconds", invalidT},
	})
}

func TestValidatePodSpec(t *testing.T) {
	runRules(t, []rule{
		{"spec required", pod(func(p *api.Pod) { p.Spec = nil }), "spec", required},
		{"at least one container", pod(func(p *api.Pod) { p.Spec.Containers = nil }), "spec.containers", required},
		{"container name required", pod(func(p *api.Pod) { ctr(p).Name = "" }), "spec.containers[0].name", required},
		{"container name is a DNS-1123 label", pod(func(p *api.Pod) { ctr(p).Name = "my.app" }), "spec.containers[0].name", invalidT},
		{"container names unique", pod(func(p *api.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, &api.Container{Name: "nginx", Image: "busybox", ImagePullPolicy: "Always"})
		}), "spec.containers[1].name", duplicate},
		{"container and init container names unique", pod(func(p *api.Pod) {
			p.Spec.InitContainers = []*api.Container{{Name: "nginx", Image: "busybox", ImagePullPolicy: "Always"}}
		}), "spec.containers[0].name", duplicate},
		{"image required", pod(func(p *api.Pod) { ctr(p).Image = "" }), "spec.containers[0].image", required},
		{"image reference must parse", pod(func(p *api.Pod) { ctr(p).Image = "NGINX:1" }), "spec.containers[0].image", invalidT},
		{"image tag must be valid", pod(func(p *api.Pod) { ctr(p).Image = "nginx:-bad" }), "spec.containers[0].image", invalidT},
		{"image without whitespace", pod(func(p *api.Pod) { ctr(p).Image = " nginx" }), "spec.containers[0].image", invalidT},
		{"image with registry and digest", pod(func(p *api.Pod) {
			ctr(p).Image = "localhost:5000/team/app@sha256:" + strings.Repeat("a", 64)
		}), "", ""},
		{"imagePullPolicy enum", pod(func(p *api.Pod) { ctr(p).ImagePullPolicy = "Sometimes" }), "spec.containers[0].imagePullPolicy", notSupported},
		{"containerPort required", pod(func(p *api.Pod) { ctr(p).Ports[0].ContainerPort = 0 }), "spec.containers[0].ports[0].containerPort", required},
		{"containerPort range", pod(func(p *api.Pod) { ctr(p).Ports[0].ContainerPort = 65536 }), "spec.containers[0].ports[0].containerPort", invalidT},
		{"hostPort range", pod(func(p *api.Pod) { ctr(p).Ports[0].HostPort = -1 }), "spec.containers[0].ports[0].hostPort", invalidT},
		{"hostPort equals containerPort with hostNetwork", pod(func(p *api.Pod) { p.Spec.HostNetwork = true; ctr(p).Ports[0].HostPort = 8080 }), "spec.containers[0].ports[0].hostPort", invalidT},
		{"port protocol enum", pod(func(p *api.Pod) { ctr(p).Ports[0].Protocol = "ICMP" }), "spec.containers[0].ports[0].protocol", notSupported},
		{"port name is an IANA_SVC_NAME", pod(func(p *api.Pod) { ctr(p).Ports[0].Name = "http_alt" }), "spec.containers[0].ports[0].name", invalidT},
		{"port names unique in the pod", pod(func(p *api.Pod) {
			ctr(p).Ports = append(ctr(p).Ports, &api.ContainerPort{Name: "http", ContainerPort: 81, Protocol: "TCP"})
		}), "spec.containers[0].ports[1].name", duplicate},
		{"hostPorts unique per protocol", pod(func(p *api.Pod) {
			ctr(p).Ports[0].HostPort = 8080
			p.Spec.Containers = append(p.Spec.Containers, &api.Container{Name: "second", Image: "busybox", ImagePullPolicy: "Always",
				Ports: []*api.ContainerPort{{ContainerPort: 81, HostPort: 8080, Protocol: "TCP"}}})
		}), "spec.containers[1].ports[0].hostPort", duplicate},
		{"same hostPort on UDP", pod(func(p *api.Pod) {
			ctr(p).Ports[0].HostPort = 8080
			ctr(p).Ports = append(ctr(p).Ports, &api.ContainerPort{ContainerPort: 81, HostPort: 8080, Protocol: "UDP"})
		}), "", ""},
		{"hostIP must be an IP", pod(func(p *api.Pod) { ctr(p).Ports[0].HostIp = "localhost" }), "spec.containers[0].ports[0].hostIP", invalidT},
		{"env name required", pod(func(p *api.Pod) { ctr(p).Env = []*api.EnvVar{{Value: "x"}} }), "spec.containers[0].env[0].name", required},
		{"env name without '='", pod(func(p *api.Pod) { ctr(p).Env = []*api.EnvVar{{Name: "A=B"}} }), "spec.containers[0].env[0].name", invalidT},
		{"resource quantity must parse", pod(func(p *api.Pod) { ctr(p).Resources.Limits["cpu"] = "one" }), "spec.containers[0].resources.limits[cpu]", invalidT},
		{"resource quantity not negative", pod(func(p *api.Pod) { ctr(p).Resources.Requests["memory"] = "-1Mi" }), "spec.containers[0].resources.requests[memory]", invalidT},
		{"requests at most limits", pod(func(p *api.Pod) { ctr(p).Resources.Requests["cpu"] = "1500m" }), "spec.containers[0].resources.requests[cpu]", invalidT},
		{"resource names standard or qualified", pod(func(p *api.Pod) { ctr(p).Resources.Limits["gpu"] = "1" }), "spec.containers[0].resources.limits[gpu]", invalidT},
		{"extended resources allowed", pod(func(p *api.Pod) { ctr(p).Resources.Limits["example.com/gpu"] = "1" }), "", ""},
		{"restartPolicy enum", pod(func(p *api.Pod) { p.Spec.RestartPolicy = "Sometimes" }), "spec.restartPolicy", notSupported},
		{"dnsPolicy enum", pod(func(p *api.Pod) { p.Spec.DnsPolicy = "None" }), "spec.dnsPolicy", notSupported},
		{"terminationGracePeriodSeconds not negative", pod(func(p *api.Pod) { p.Spec.TerminationGracePeriodSeconds = proto.Int64(-1) }), "spec.terminationGracePeriodSeconds", invalidT},
		{"activeDeadlineSeconds positive", pod(func(p *api.Pod) { p.Spec.ActiveDeadlineSeconds = proto.Int64(0) }), "spec.activeDeadlineSeconds", invalidT},
		{"nodeName is a subdomain", pod(func(p *api.Pod) { p.Spec.NodeName = "Worker_1" }), "spec.nodeName", invalidT},
		{"schedulerName is a subdomain", pod(func(p *api.Pod) { p.Spec.SchedulerName = "my scheduler" }), "spec.schedulerName", invalidT},
		{"hostname is a label", pod(func(p *api.Pod) { p.Spec.Hostname = "a.b" }), "spec.hostname", invalidT},
		{"nodeSelector keys are label keys", pod(func(p *api.Pod) { p.Spec.NodeSelector = map[string]string{"disk type": "ssd"} }), "spec.nodeSelector", invalidT},
		{"nodeSelector values are label values", pod(func(p *api.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd fast"} }), "spec.nodeSelector", invalidT},
		{"readinessGates conditionType", pod(func(p *api.Pod) { p.Spec.ReadinessGates = []*api.PodReadinessGate{{ConditionType: "bad type"}} }), "spec.readinessGates[0].conditionType", invalidT},
		{"runAsUser not negative", pod(func(p *api.Pod) { ctr(p).SecurityContext = &api.SecurityContext{RunAsUser: proto.Int64(-1)} }), "spec.containers[0].securityContext.runAsUser", invalidT},
		{"pod IP in status", pod(func(p *api.Pod) { p.Status = &api.PodStatus{PodIp: "10.244.1.300"} }), "status.podIP", invalidT},
		{"pod phase enum", pod(func(p *api.Pod) { p.Status = &api.PodStatus{Phase: "Sleeping"} }), "status.phase", notSupported},
	})
}

func TestValidatePodProbesVolumesTolerations(t *testing.T) {
	rp := func(p *api.Pod) *api.Probe { return ctr(p).ReadinessProbe }
	runRules(t, []rule{
		{"probe needs a handler", pod(func(p *api.Pod) { rp(p).HttpGet = nil }), "spec.containers[0].readinessProbe", required},
		{"probe has one handler", pod(func(p *api.Pod) { rp(p).TcpSocket = &api.TCPSocketAction{Port: intstr.FromInt(80)} }), "spec.containers[0].readinessProbe.tcpSocket", forbidden},
		{"probe port number range", pod(func(p *api.Pod) { rp(p).HttpGet.Port = intstr.FromInt(0) }), "spec.containers[0].readinessProbe.httpGet.port", invalidT},
		{"probe port name syntax", pod(func(p *api.Pod) { rp(p).HttpGet.Port = intstr.FromString("8080") }), "spec.containers[0].readinessProbe.httpGet.port", invalidT},
		{"probe port must be a number or a name", pod(func(p *api.Pod) { rp(p).HttpGet.Port = structpb.NewBoolValue(true) }), "spec.containers[0].readinessProbe.httpGet.port", invalidT},
		{"probe port fractions refused", pod(func(p *api.Pod) { rp(p).HttpGet.Port = structpb.NewNumberValue(80.5) }), "spec.containers[0].readinessProbe.httpGet.port", invalidT},
		{"probe port required", pod(func(p *api.Pod) { rp(p).HttpGet.Port = nil }), "spec.containers[0].readinessProbe.httpGet.port", required},
		{"probe scheme enum", pod(func(p *api.Pod) { rp(p).HttpGet.Scheme = "FTP" }), "spec.containers[0].readinessProbe.httpGet.scheme", notSupported},
		{"probe path absolute", pod(func(p *api.Pod) { rp(p).HttpGet.Path = "healthz" }), "spec.containers[0].readinessProbe.httpGet.path", invalidT},
		{"tcp probe port", pod(func(p *api.Pod) {
			ctr(p).LivenessProbe = &api.Probe{TcpSocket: &api.TCPSocketAction{Port: intstr.FromInt(70000)}, TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3}
		}), "spec.containers[0].livenessProbe.tcpSocket.port", invalidT},
		{"exec probe needs a command", pod(func(p *api.Pod) { rp(p).HttpGet = nil; rp(p).Exec = &api.ExecAction{} }), "spec.containers[0].readinessProbe.exec.command", required},
		{"probe periodSeconds positive", pod(func(p *api.Pod) { rp(p).PeriodSeconds = -1 }), "spec.containers[0].readinessProbe.periodSeconds", invalidT},
		{"probe timeoutSeconds positive", pod(func(p *api.Pod) { rp(p).TimeoutSeconds = -5 }), "spec.containers[0].readinessProbe.timeoutSeconds", invalidT},
		{"probe failureThreshold positive", pod(func(p *api.Pod) { rp(p).FailureThreshold = -1 }), "spec.containers[0].readinessProbe.failureThreshold", invalidT},
		{"probe initialDelaySeconds not negative", pod(func(p *api.Pod) { rp(p).InitialDelaySeconds = -1 }), "spec.containers[0].readinessProbe.initialDelaySeconds", invalidT},
		{"liveness successThreshold is 1", pod(func(p *api.Pod) {
			ctr(p).LivenessProbe = &api.Probe{Exec: &api.ExecAction{Command: []string{"true"}}, TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 2, FailureThreshold: 3}
		}), "spec.containers[0].livenessProbe.successThreshold", invalidT},
		{"init containers have no probes", pod(func(p *api.Pod) {
			p.Spec.InitContainers = []*api.Container{{Name: "init", Image: "busybox", ImagePullPolicy: "Always", ReadinessProbe: proto.Clone(rp(p)).(*api.Probe)}}
		}), "spec.initContainers[0].readinessProbe", forbidden},
		{"volume name required", pod(func(p *api.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, &api.Volume{EmptyDir: &api.EmptyDirVolumeSource{}})
		}), "spec.volumes[1].name", required},
		{"volume names unique", pod(func(p *api.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, &api.Volume{Name: "cache", EmptyDir: &api.EmptyDirVolumeSource{}})
		}), "spec.volumes[1].name", duplicate},
		{"volume needs a source", pod(func(p *api.Pod) { p.Spec.Volumes[0].EmptyDir = nil }), "spec.volumes[0]", required},
		{"volume has one source", pod(func(p *api.Pod) { p.Spec.Volumes[0].HostPath = &api.HostPathVolumeSource{Path: "/tmp"} }), "spec.volumes[0]", forbidden},
		{"hostPath path required", pod(func(p *api.Pod) {
			p.Spec.Volumes[0].EmptyDir = nil
			p.Spec.Volumes[0].HostPath = &api.HostPathVolumeSource{}
		}), "spec.volumes[0].hostPath.path", required},
		{"configMap volume name required", pod(func(p *api.Pod) {
			p.Spec.Volumes[0].EmptyDir = nil
			p.Spec.Volumes[0].ConfigMap = &api.ConfigMapVolumeSource{}
		}), "spec.volumes[0].configMap.name", required},
		{"emptyDir sizeLimit quantity", pod(func(p *api.Pod) { p.Spec.Volumes[0].EmptyDir.SizeLimit = "big" }), "spec.volumes[0].emptyDir.sizeLimit", invalidT},
		{"volumeMount refers to a declared volume", pod(func(p *api.Pod) { ctr(p).VolumeMounts[0].Name = "data" }), "spec.containers[0].volumeMounts[0].name", notFound},
		{"volumeMount mountPath required", pod(func(p *api.Pod) { ctr(p).VolumeMounts[0].MountPath = "" }), "spec.containers[0].volumeMounts[0].mountPath", required},
		{"volumeMount subPath stays inside", pod(func(p *api.Pod) { ctr(p).VolumeMounts[0].SubPath = "../etc" }), "spec.containers[0].volumeMounts[0].subPath", invalidT},
		{"toleration operator enum", pod(func(p *api.Pod) { p.Spec.Tolerations = []*api.Toleration{{Key: "k", Operator: "Matches"}} }), "spec.tolerations[0].operator", notSupported},
		{"toleration Exists has no value", pod(func(p *api.Pod) { p.Spec.Tolerations = []*api.Toleration{{Key: "k", Operator: "Exists", Value: "v"}} }), "spec.tolerations[0].operator", invalidT},
		{"toleration empty key needs Exists", pod(func(p *api.Pod) { p.Spec.Tolerations = []*api.Toleration{{Operator: "Equal"}} }), "spec.tolerations[0].operator", invalidT},
		{"toleration effect enum", pod(func(p *api.Pod) {
			p.Spec.Tolerations = []*api.Toleration{{Key: "k", Operator: "Exists", Effect: "Evict"}}
		}), "spec.tolerations[0].effect", notSupported},
		{"tolerationSeconds only with NoExecute", pod(func(p *api.Pod) {
			p.Spec.Tolerations = []*api.Toleration{{Key: "k", Operator: "Exists", Effect: "NoSchedule", TolerationSeconds: proto.Int64(10)}}
		}), "spec.tolerations[0].effect", invalidT},
		{"toleration of everything", pod(func(p *api.Pod) { p.Spec.Tolerations = []*api.Toleration{{Operator: "Exists"}} }), "", ""},
		{"node affinity operator", pod(func(p *api.Pod) {
			p.Spec.Affinity = &api.Affinity{NodeAffinity: &api.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &api.NodeSelector{
				NodeSelectorTerms: []*api.NodeSelectorTerm{{MatchExpressions: []*api.NodeSelectorRequirement{{Key: "zone", Operator: "Near"}}}},
			}}}
		}), "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator", notSupported},
		{"node affinity Gt takes one integer", pod(func(p *api.Pod) {
			p.Spec.Affinity = &api.Affinity{NodeAffinity: &api.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &api.NodeSelector{
				NodeSelectorTerms: []*api.NodeSelectorTerm{{MatchExpressions: []*api.NodeSelectorRequirement{{Key: "cores", Operator: "Gt", Values: []string{"many"}}}}},
			}}}
		}), "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[0]", invalidT},
		{"preferred weight range", pod(func(p *api.Pod) {
			p.Spec.Affinity = &api.Affinity{NodeAffinity: &api.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []*api.PreferredSchedulingTerm{{Weight: 0, Preference: &api.NodeSelectorTerm{}}}}}
		}), "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight", invalidT},
	})
}
