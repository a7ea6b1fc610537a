package admission

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

func TestValidateNamespace(t *testing.T) {
	ns := func(m func(*api.Namespace)) func() kinds.Object { return with(validNamespace, m) }
	runRules(t, []rule{
		{"valid namespace", ns(nil), "", ""},
		{"name is a DNS-1123 label", ns(func(n *api.Namespace) { n.Metadata.Name = "team.a" }), "metadata.name", invalidT},
		{"cluster-scoped: no namespace", ns(func(n *api.Namespace) { n.Metadata.Namespace = "default" }), "metadata.namespace", forbidden},
		{"spec finalizers", ns(func(n *api.Namespace) { n.Spec.Finalizers = []string{"wipe"} }), "spec.finalizers[0]", invalidT},
		{"phase enum", ns(func(n *api.Namespace) { n.Status = &api.NamespaceStatus{Phase: "Gone"} }), "status.phase", notSupported},
	})
}

func TestValidateNode(t *testing.T) {
	node := func(m func(*api.Node)) func() kinds.Object { return with(validNode, m) }
	runRules(t, []rule{
		{"valid node", node(nil), "", ""},
		{"cluster-scoped: no namespace", node(func(n *api.Node) { n.Metadata.Namespace = "default" }), "metadata.namespace", forbidden},
		{"name is a subdomain", node(func(n *api.Node) { n.Metadata.Name = "Worker 1" }), "metadata.name", invalidT},
		{"podCIDR is a CIDR", node(func(n *api.Node) { n.Spec.PodCidr = "10.244.1.0/33"; n.Spec.PodCidrs = nil }), "spec.podCIDR", invalidT},
		{"podCIDR has no host bits", node(func(n *api.Node) { n.Spec.PodCidr = "10.244.1.1/24"; n.Spec.PodCidrs = nil }), "spec.podCIDR", invalidT},
		{"podCIDRs match podCIDR", node(func(n *api.Node) { n.Spec.PodCidrs = []string{"10.244.2.0/24"} }), "spec.podCIDRs[0]", invalidT},
		{"taint key required", node(func(n *api.Node) { n.Spec.Taints[0].Key = "" }), "spec.taints[0].key", required},
		{"taint effect required", node(func(n *api.Node) { n.Spec.Taints[0].Effect = "" }), "spec.taints[0].effect", required},
		{"taint effect enum", node(func(n *api.Node) { n.Spec.Taints[0].Effect = "Evict" }), "spec.taints[0].effect", notSupported},
		{"taint value syntax", node(func(n *api.Node) { n.Spec.Taints[0].Value = "a b" }), "spec.taints[0].value", invalidT},
		{"taints unique by key and effect", node(func(n *api.Node) { n.Spec.Taints = append(n.Spec.Taints, proto.Clone(n.Spec.Taints[0]).(*api.Taint)) }), "spec.taints[1]", duplicate},
		{"address type enum", node(func(n *api.Node) { n.Status.Addresses[0].Type = "PublicIP" }), "status.addresses[0].type", notSupported},
		{"InternalIP is an IP", node(func(n *api.Node) { n.Status.Addresses[0].Address = "worker-1" }), "status.addresses[0].address", invalidT},
		{"Hostname address required", node(func(n *api.Node) { n.Status.Addresses[1].Address = "" }), "status.addresses[1].address", required},
		{"capacity quantities", node(func(n *api.Node) { n.Status.Capacity["memory"] = "8 GB" }), "status.capacity[memory]", invalidT},
		{"condition status enum", node(func(n *api.Node) { n.Status.Conditions[0].Status = "Yes" }), "status.conditions[0].status", notSupported},
		{"kubelet port range", node(func(n *api.Node) { n.Status.DaemonEndpoints = &api.NodeDaemonEndpoints{KubeletPort: 70000} }), "status.daemonEndpoints.kubeletPort", invalidT},
	})
}

func TestValidateEvent(t *testing.T) {
	ev := func(m func(*api.Event)) func() kinds.Object { return with(validEvent, m) }
	runRules(t, []rule{
		{"valid event", ev(nil), "", ""},
		{"involvedObject required", ev(func(e *api.Event) { e.InvolvedObject = nil }), "involvedObject", required},
		{"involvedObject kind required", ev(func(e *api.Event) { e.InvolvedObject.Kind = "" }), "involvedObject.kind", required},
		{"involvedObject name required", ev(func(e *api.Event) { e.InvolvedObject.Name = "" }), "involvedObject.name", required},
		{"involvedObject in the event's namespace", ev(func(e *api.Event) { e.InvolvedObject.Namespace = "other" }), "involvedObject.namespace", invalidT},
		{"event about a node", ev(func(e *api.Event) { e.InvolvedObject = &api.ObjectReference{Kind: "Node", Name: "worker-1"} }), "", ""},
		{"type enum", ev(func(e *api.Event) { e.Type = "Error" }), "type", notSupported},
		{"count not negative", ev(func(e *api.Event) { e.Count = -1 }), "count", invalidT},
		{"namespace required", ev(func(e *api.Event) { e.Metadata.Namespace = "" }), "metadata.namespace", required},
		{"about a role binding", ev(func(e *api.Event) { e.Metadata.Name = "system:node:worker-1.17f3a2b4c5d6e7f8" }), "", ""},
		{"name is a path segment", ev(func(e *api.Event) { e.Metadata.Name = "a/b" }), "metadata.name", invalidT},
	})
}

func TestValidateConfigMapAndSecret(t *testing.T) {
	cm := func(m func(*api.ConfigMap)) func() kinds.Object { return with(validConfigMap, m) }
	sec := func(m func(*api.Secret)) func() kinds.Object { return with(validSecret, m) }
	big := strings.Repeat("x", 1<<20)
	runRules(t, []rule{
		{"valid configmap", cm(nil), "", ""},
		{"data key syntax", cm(func(c *api.ConfigMap) { c.Data["conf/nginx"] = "" }), "data", invalidT},
		{"binaryData key syntax", cm(func(c *api.ConfigMap) { c.BinaryData["a b"] = nil }), "binaryData", invalidT},
		{"key in data and binaryData", cm(func(c *api.ConfigMap) { c.BinaryData["nginx.conf"] = nil }), "binaryData", invalidT},
		{"configmap at most 1 MiB", cm(func(c *api.ConfigMap) { c.Data["big"] = big }), "data", tooLong},
		{"valid secret", sec(nil), "", ""},
		{"secret data key syntax", sec(func(s *api.Secret) { s.Data["../x"] = nil }), "data", invalidT},
		{"secret stringData key syntax", sec(func(s *api.Secret) { s.StringData["a:b"] = "" }), "stringData", invalidT},
		{"secret at most 1 MiB", sec(func(s *api.Secret) { s.Data["big"] = []byte(big) }), "data", tooLong},
		{"secret type syntax", sec(func(s *api.Secret) { s.Type = "my type" }), "type", invalidT},
	})
}

func TestValidateLease(t *testing.T) {
	lease := func(m func(*api.Lease)) func() kinds.Object { return with(validLease, m) }
	runRules(t, []rule{
		{"valid lease", lease(nil), "", ""},
		{"leaseDurationSeconds positive", lease(func(l *api.Lease) { l.Spec.LeaseDurationSeconds = proto.Int32(0) }), "spec.leaseDurationSeconds", invalidT},
		{"leaseDurationSeconds optional", lease(func(l *api.Lease) { l.Spec.LeaseDurationSeconds = nil }), "", ""},
		{"leaseTransitions not negative", lease(func(l *api.Lease) { l.Spec.LeaseTransitions = -1 }), "spec.leaseTransitions", invalidT},
		{"namespace required", lease(func(l *api.Lease) { l.Metadata.Namespace = "" }), "metadata.namespace", required},
	})
}

func TestValidateRoleBinding(t *testing.T) {
	rb := func(m func(*api.RoleBinding)) func() kinds.Object { return with(validRoleBinding, m) }
	runRules(t, []rule{
		{"valid rolebinding", rb(nil), "", ""},
		{"roleRef required", rb(func(r *api.RoleBinding) { r.RoleRef = nil }), "roleRef.name", required},
		{"proxy role", rb(func(r *api.RoleBinding) { r.RoleRef.Name = "proxy" }), "", ""},
		{"roleRef is a built-in role", rb(func(r *api.RoleBinding) { r.RoleRef.Name = "root" }), "roleRef.name", notSupported},
		{"subject kind enum", rb(func(r *api.RoleBinding) { r.Subjects[0].Kind = "ServiceAccount" }), "subjects[0].kind", notSupported},
		{"subject name required", rb(func(r *api.RoleBinding) { r.Subjects[1].Name = "" }), "subjects[1].name", required},
		{"cluster-scoped: no namespace", rb(func(r *api.RoleBinding) { r.Metadata.Namespace = "default" }), "metadata.namespace", forbidden},
		{"name is a path segment", rb(func(r *api.RoleBinding) { r.Metadata.Name = "a/b" }), "metadata.name", invalidT},
	})
}
