package admission

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// updateRule changes a valid stored object; path "" means the update is allowed.
type updateRule struct {
	name   string
	old    func() kinds.Object
	mutate func(kinds.Object)
	path   string
	typ    field.ErrorType
}

func TestValidateUpdate(t *testing.T) {
	boundPod := func() kinds.Object {
		p := validPod()
		p.Metadata.Uid = "uid-1"
		p.Spec.NodeName = "worker-1"
		p.Spec.ActiveDeadlineSeconds = proto.Int64(600)
		p.Spec.Tolerations = []*api.Toleration{{Key: "node.kubernetes.io/not-ready", Operator: "Exists", Effect: "NoExecute", TolerationSeconds: proto.Int64(300)}}
		return p
	}
	podFn := func(f func(*api.Pod)) func(kinds.Object) { return func(o kinds.Object) { f(o.(*api.Pod)) } }
	deployFn := func(f func(*api.Deployment)) func(kinds.Object) {
		return func(o kinds.Object) { f(o.(*api.Deployment)) }
	}
	allocated := func() kinds.Object {
		s := validService()
		s.Spec.ClusterIp, s.Spec.ClusterIps = "10.96.0.10", []string{"10.96.0.10"}
		return s
	}
	svcFn := func(f func(*api.Service)) func(kinds.Object) { return func(o kinds.Object) { f(o.(*api.Service)) } }

	for _, r := range []updateRule{
		{"no change", boundPod, func(kinds.Object) {}, "", ""},
		{"labels, annotations, finalizers and owners may change", boundPod, podFn(func(p *api.Pod) {
			p.Metadata.Labels["version"] = "2"
			p.Metadata.Annotations = map[string]string{"note": "x"}
			p.Metadata.Finalizers = []string{"skiff.dev/protect"}
			p.Metadata.OwnerReferences = nil
		}), "", ""},
		{"name is immutable", boundPod, podFn(func(p *api.Pod) { p.Metadata.Name = "web-2" }), "metadata.name", invalidT},
		{"namespace is immutable", boundPod, podFn(func(p *api.Pod) { p.Metadata.Namespace = "other" }), "metadata.namespace", invalidT},
		{"uid is immutable", boundPod, podFn(func(p *api.Pod) { p.Metadata.Uid = "uid-2" }), "metadata.uid", invalidT},
		{"missing uid means unchanged", boundPod, podFn(func(p *api.Pod) { p.Metadata.Uid = "" }), "", ""},
		{"pod image may change", boundPod, podFn(func(p *api.Pod) { p.Spec.Containers[0].Image = "nginx:1.27" }), "", ""},
		{"pod image must stay valid", boundPod, podFn(func(p *api.Pod) { p.Spec.Containers[0].Image = "" }), "spec.containers[0].image", required},
		{"pod activeDeadlineSeconds may shrink", boundPod, podFn(func(p *api.Pod) { p.Spec.ActiveDeadlineSeconds = proto.Int64(60) }), "", ""},
		{"pod activeDeadlineSeconds may not grow", boundPod, podFn(func(p *api.Pod) { p.Spec.ActiveDeadlineSeconds = proto.Int64(6000) }), "spec.activeDeadlineSeconds", invalidT},
		{"pod activeDeadlineSeconds may not be removed", boundPod, podFn(func(p *api.Pod) { p.Spec.ActiveDeadlineSeconds = nil }), "spec.activeDeadlineSeconds", invalidT},
		{"pod tolerations may be added", boundPod, podFn(func(p *api.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, &api.Toleration{Key: "dedicated", Operator: "Equal", Value: "db", Effect: "NoSchedule"})
		}), "", ""},
		{"pod tolerationSeconds may change", boundPod, podFn(func(p *api.Pod) { p.Spec.Tolerations[0].TolerationSeconds = proto.Int64(10) }), "", ""},
		{"pod tolerations may not be removed", boundPod, podFn(func(p *api.Pod) { p.Spec.Tolerations = nil }), "spec.tolerations", forbidden},
		{"pod nodeName is set by Bind only", boundPod, podFn(func(p *api.Pod) { p.Spec.NodeName = "worker-2" }), "spec", forbidden},
		{"pod ports are immutable", boundPod, podFn(func(p *api.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 8080 }), "spec", forbidden},
		{"pod containers may not be added", boundPod, podFn(func(p *api.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, &api.Container{Name: "sidecar", Image: "busybox", ImagePullPolicy: "Always"})
		}), "spec", forbidden},
		{"pod status is not spec", boundPod, podFn(func(p *api.Pod) { p.Status = &api.PodStatus{Phase: "Running", PodIp: "10.244.1.5"} }), "", ""},
		{"deployment selector is immutable", func() kinds.Object { return validDeployment() }, deployFn(func(d *api.Deployment) {
			d.Spec.Selector.MatchLabels["tier"] = "front"
		}), "spec.selector", invalidT},
		{"deployment scale and template may change", func() kinds.Object { return validDeployment() }, deployFn(func(d *api.Deployment) {
			d.Spec.Replicas = proto.Int32(5)
			d.Spec.Template.Spec.Containers[0].Image = "nginx:1.27"
			d.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort = 8080
		}), "", ""},
		{"replicaset selector is immutable", func() kinds.Object { return validReplicaSet() }, func(o kinds.Object) {
			o.(*api.ReplicaSet).Spec.Selector.MatchExpressions = []*api.LabelSelectorRequirement{{Key: "app", Operator: "Exists"}}
		}, "spec.selector", invalidT},
		{"service clusterIP is immutable once set", allocated, svcFn(func(s *api.Service) {
			s.Spec.ClusterIp, s.Spec.ClusterIps = "10.96.0.11", []string{"10.96.0.11"}
		}), "spec.clusterIP", invalidT},
		{"service clusterIPs are immutable once set", allocated, svcFn(func(s *api.Service) { s.Spec.ClusterIps = nil }), "spec.clusterIPs[0]", invalidT},
		{"service clusterIP may be allocated", func() kinds.Object { return validService() }, svcFn(func(s *api.Service) { s.Spec.ClusterIp = "10.96.0.10" }), "", ""},
		{"service ports may change", allocated, svcFn(func(s *api.Service) { s.Spec.Ports[0].Port = 8080 }), "", ""},
		{"node podCIDR is assigned once", func() kinds.Object { return validNode() }, func(o kinds.Object) {
			n := o.(*api.Node)
			n.Spec.PodCidr, n.Spec.PodCidrs = "10.244.2.0/24", []string{"10.244.2.0/24"}
		}, "spec.podCIDR", forbidden},
		{"node podCIDR may be assigned", func() kinds.Object { n := validNode(); n.Spec.PodCidr, n.Spec.PodCidrs = "", nil; return n }, func(kinds.Object) {}, "", ""},
		{"rolebinding roleRef is immutable", func() kinds.Object { return validRoleBinding() }, func(o kinds.Object) { o.(*api.RoleBinding).RoleRef.Name = "admin" }, "roleRef", invalidT},
		{"rolebinding subjects may change", func() kinds.Object { return validRoleBinding() }, func(o kinds.Object) { o.(*api.RoleBinding).Subjects = nil }, "", ""},
	} {
		t.Run(r.name, func(t *testing.T) {
			old := r.old()
			obj := proto.Clone(old).(kinds.Object)
			r.mutate(obj)
			err := ValidateUpdate(obj, old)
			if r.path == "" {
				if err != nil {
					t.Fatalf("want allowed, got %v", err)
				}
				return
			}
			assertInvalidAt(t, err, r.path, r.typ)
		})
	}
}

func TestValidateUpdateNamesChangedPodSpecFields(t *testing.T) {
	old := validPod()
	obj := proto.Clone(old).(*api.Pod)
	obj.Spec.NodeName = "worker-9"
	obj.Spec.RestartPolicy = "Never"
	err := ValidateUpdate(obj, old)
	const want = "Pod \"web-1\" is invalid: spec: Forbidden: " + msgPodSpecImmutable + ": changed restartPolicy, nodeName"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}
