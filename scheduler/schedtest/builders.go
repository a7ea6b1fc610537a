// Package schedtest builds Pods and Nodes for scheduler tests, in the style
// of kube-scheduler's st.MakePod(): MakePod("p").Req("500m", "1Gi").Obj().
//
// It must never be imported by non-test code.
package schedtest

import (
	"github.com/skiff-dev/skiff/proto/api"
)

// PodWrapper builds a Pod.
type PodWrapper struct{ p *api.Pod }

// MakePod starts a pod in namespace default with one container.
func MakePod(name string) *PodWrapper {
	return &PodWrapper{p: &api.Pod{
		ApiVersion: "v1", Kind: "Pod",
		Metadata: &api.ObjectMeta{Name: name, Namespace: "default", Uid: "uid-" + name},
		Spec: &api.PodSpec{
			SchedulerName: "default-scheduler",
			Containers:    []*api.Container{{Name: "c", Image: "busybox", Resources: &api.ResourceRequirements{}}},
		},
		Status: &api.PodStatus{Phase: "Pending"},
	}}
}

// Obj returns the pod.
func (w *PodWrapper) Obj() *api.Pod { return w.p }

// Namespace sets the namespace.
func (w *PodWrapper) Namespace(ns string) *PodWrapper { w.p.Metadata.Namespace = ns; return w }

// Req sets the first container's cpu and memory requests ("" leaves one
// out).
func (w *PodWrapper) Req(cpu, memory string) *PodWrapper {
	req := map[string]string{}
	if cpu != "" {
		req["cpu"] = cpu
	}
	if memory != "" {
		req["memory"] = memory
	}
	w.p.Spec.Containers[0].Resources.Requests = req
	return w
}

// Container adds a container with requests.
func (w *PodWrapper) Container(name, cpu, memory string) *PodWrapper {
	req := map[string]string{}
	if cpu != "" {
		req["cpu"] = cpu
	}
	if memory != "" {
		req["memory"] = memory
	}
	w.p.Spec.Containers = append(w.p.Spec.Containers, &api.Container{Name: name, Image: "busybox", Resources: &api.ResourceRequirements{Requests: req}})
	return w
}

// InitContainer adds an init container with requests.
func (w *PodWrapper) InitContainer(name, cpu, memory string) *PodWrapper {
	req := map[string]string{}
	if cpu != "" {
		req["cpu"] = cpu
	}
	if memory != "" {
		req["memory"] = memory
	}
	w.p.Spec.InitContainers = append(w.p.Spec.InitContainers, &api.Container{Name: name, Image: "busybox", Resources: &api.ResourceRequirements{Requests: req}})
	return w
}

// HostPort adds a host port to the first container.
func (w *PodWrapper) HostPort(ip, protocol string, port int32) *PodWrapper {
	c := w.p.Spec.Containers[0]
	c.Ports = append(c.Ports, &api.ContainerPort{HostIp: ip, Protocol: protocol, HostPort: port, ContainerPort: port})
	return w
}

// Owner sets the controller ownerReference (a ReplicaSet).
func (w *PodWrapper) Owner(uid string) *PodWrapper {
	ctrl := true
	w.p.Metadata.OwnerReferences = []*api.OwnerReference{{ApiVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs-" + uid, Uid: uid, Controller: &ctrl}}
	return w
}

// Node sets spec.nodeName (a bound pod).
func (w *PodWrapper) Node(name string) *PodWrapper { w.p.Spec.NodeName = name; return w }

// Priority sets spec.priority.
func (w *PodWrapper) Priority(p int32) *PodWrapper { w.p.Spec.Priority = &p; return w }

// Labels sets metadata.labels.
func (w *PodWrapper) Labels(l map[string]string) *PodWrapper { w.p.Metadata.Labels = l; return w }

// NodeSelector sets spec.nodeSelector.
func (w *PodWrapper) NodeSelector(s map[string]string) *PodWrapper {
	w.p.Spec.NodeSelector = s
	return w
}

// RequiredAffinity sets required node affinity terms (ORed).
func (w *PodWrapper) RequiredAffinity(terms ...*api.NodeSelectorTerm) *PodWrapper {
	w.affinity().RequiredDuringSchedulingIgnoredDuringExecution = &api.NodeSelector{NodeSelectorTerms: terms}
	return w
}

// PreferredAffinity adds a preferred node affinity term.
func (w *PodWrapper) PreferredAffinity(weight int32, term *api.NodeSelectorTerm) *PodWrapper {
	na := w.affinity()
	na.PreferredDuringSchedulingIgnoredDuringExecution = append(na.PreferredDuringSchedulingIgnoredDuringExecution,
		&api.PreferredSchedulingTerm{Weight: weight, Preference: term})
	return w
}

func (w *PodWrapper) affinity() *api.NodeAffinity {
	if w.p.Spec.Affinity == nil {
		w.p.Spec.Affinity = &api.Affinity{}
	}
	if w.p.Spec.Affinity.NodeAffinity == nil {
		w.p.Spec.Affinity.NodeAffinity = &api.NodeAffinity{}
	}
	return w.p.Spec.Affinity.NodeAffinity
}

// Toleration adds a toleration.
func (w *PodWrapper) Toleration(key, op, value, effect string) *PodWrapper {
	w.p.Spec.Tolerations = append(w.p.Spec.Tolerations, &api.Toleration{Key: key, Operator: op, Value: value, Effect: effect})
	return w
}

// Expr is a node selector requirement.
func Expr(key, op string, values ...string) *api.NodeSelectorRequirement {
	return &api.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

// Term is a node selector term of expressions.
func Term(exprs ...*api.NodeSelectorRequirement) *api.NodeSelectorTerm {
	return &api.NodeSelectorTerm{MatchExpressions: exprs}
}

// NodeWrapper builds a Node.
type NodeWrapper struct{ n *api.Node }

// MakeNode starts a Ready node with 4 cpu, 8Gi memory and 110 pods.
func MakeNode(name string) *NodeWrapper {
	return &NodeWrapper{n: &api.Node{
		ApiVersion: "v1", Kind: "Node",
		Metadata: &api.ObjectMeta{Name: name, Uid: "uid-" + name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Spec:     &api.NodeSpec{},
		Status: &api.NodeStatus{
			Capacity:    map[string]string{"cpu": "4", "memory": "8Gi", "pods": "110"},
			Allocatable: map[string]string{"cpu": "4", "memory": "8Gi", "pods": "110"},
			Conditions:  []*api.Condition{{Type: "Ready", Status: "True", Reason: "KubeletReady"}},
		},
	}}
}

// Obj returns the node.
func (w *NodeWrapper) Obj() *api.Node { return w.n }

// Allocatable sets cpu, memory and pods allocatable (and capacity).
func (w *NodeWrapper) Allocatable(cpu, memory, pods string) *NodeWrapper {
	a := map[string]string{"cpu": cpu, "memory": memory, "pods": pods}
	w.n.Status.Allocatable = a
	c := map[string]string{"cpu": cpu, "memory": memory, "pods": pods}
	w.n.Status.Capacity = c
	return w
}

// Ready sets the Ready condition's status ("True", "False", "Unknown").
func (w *NodeWrapper) Ready(status string) *NodeWrapper {
	w.n.Status.Conditions = []*api.Condition{{Type: "Ready", Status: status}}
	return w
}

// NoConditions removes every condition (a node that never reported).
func (w *NodeWrapper) NoConditions() *NodeWrapper { w.n.Status.Conditions = nil; return w }

// Unschedulable cordons the node.
func (w *NodeWrapper) Unschedulable() *NodeWrapper { w.n.Spec.Unschedulable = true; return w }

// Taint adds a taint.
func (w *NodeWrapper) Taint(key, value, effect string) *NodeWrapper {
	w.n.Spec.Taints = append(w.n.Spec.Taints, &api.Taint{Key: key, Value: value, Effect: effect})
	return w
}

// Label sets a label.
func (w *NodeWrapper) Label(k, v string) *NodeWrapper { w.n.Metadata.Labels[k] = v; return w }
