// Package framework holds the scheduler's vocabulary and its plugin runner:
// PodInfo and NodeInfo (a pod's requests and a node's aggregated usage,
// computed once so plugins never parse quantities in the hot path), the
// Filter and Score plugin interfaces, and the algorithm that runs them over
// the nodes of a snapshot: filter in parallel, stop once enough feasible nodes
// are found (percentageOfNodesToScore), score, normalize, weight, pick.
//
// It must never talk to the apiserver or mutate shared state: it reads a
// snapshot and returns a decision.
package framework

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// Resource names as they appear in requests and allocatable.
const (
	ResourceCPU    = "cpu"
	ResourceMemory = "memory"
	ResourcePods   = "pods"
)

// Defaults counted for a container that requests no cpu or memory when
// spreading load, as kube-scheduler does, so that request-less pods do not
// all land on one node.
const (
	DefaultMilliCPURequest int64 = 100               // 0.1 core
	DefaultMemoryRequest   int64 = 200 * 1024 * 1024 // 200 MiB
)

// Resource is an amount of the resources the scheduler accounts for.
type Resource struct {
	MilliCPU int64
	Memory   int64
	// Pods is the allowed pod count (allocatable) or unused for requests.
	Pods int64
}

// Add adds r2 to r.
func (r *Resource) Add(r2 Resource) {
	r.MilliCPU += r2.MilliCPU
	r.Memory += r2.Memory
	r.Pods += r2.Pods
}

// Sub subtracts r2 from r.
func (r *Resource) Sub(r2 Resource) {
	r.MilliCPU -= r2.MilliCPU
	r.Memory -= r2.Memory
	r.Pods -= r2.Pods
}

// ParseResourceList reads cpu (as millicores), memory (bytes) and pods from a
// Kubernetes resource map ("cpu": "500m", "memory": "1Gi", "pods": "110").
// Unknown resources are ignored; a missing one counts as zero.
func ParseResourceList(list map[string]string) (Resource, error) {
	var r Resource
	for name, value := range list {
		switch name {
		case ResourceCPU, ResourceMemory, ResourcePods:
		default:
			continue
		}
		q, err := resource.ParseQuantity(value)
		if err != nil {
			return Resource{}, fmt.Errorf("%s %q: %w", name, value, err)
		}
		switch name {
		case ResourceCPU:
			r.MilliCPU = q.MilliValue()
		case ResourceMemory:
			r.Memory = q.Value()
		case ResourcePods:
			r.Pods = q.Value()
		}
	}
	return r, nil
}

// HostPort is one host port a pod binds.
type HostPort struct {
	IP       string // "0.0.0.0" when the container did not name one
	Protocol string // TCP, UDP or SCTP
	Port     int32
}

// wildcardIP is the host IP that means every address.
const wildcardIP = "0.0.0.0"

func (p HostPort) conflicts(q HostPort) bool {
	if p.Port != q.Port || p.Protocol != q.Protocol {
		return false
	}
	return p.IP == q.IP || p.IP == wildcardIP || q.IP == wildcardIP
}

// PodInfo is a pod with what the scheduler needs from it computed once.
type PodInfo struct {
	Pod *api.Pod
	Key string // "namespace/name"
	// Requests are the pod's effective requests: the larger of the sum over
	// containers and the largest init container, per resource.
	Requests Resource
	// NonZeroRequests are Requests with the defaults above for containers
	// that request nothing; scoring uses them.
	NonZeroRequests Resource
	HostPorts       []HostPort
	// OwnerUID is the uid of the pod's controller (its ReplicaSet), or of its
	// first owner; empty for a bare pod.
	OwnerUID string
}

// NewPodInfo computes a PodInfo. Quantities that do not parse are an error:
// admission should have refused them, so the pod cannot be placed safely.
func NewPodInfo(pod *api.Pod) (*PodInfo, error) {
	pi := &PodInfo{Pod: pod, Key: kinds.Key(pod), OwnerUID: ControllerUID(pod.GetMetadata())}
	var sum, sumNonZero, initMax, initMaxNonZero Resource
	for _, c := range pod.GetSpec().GetContainers() {
		req, nz, err := containerRequests(c)
		if err != nil {
			return nil, fmt.Errorf("pod %s container %s requests: %w", pi.Key, c.GetName(), err)
		}
		sum.Add(req)
		sumNonZero.Add(nz)
		for _, p := range c.GetPorts() {
			if p.GetHostPort() <= 0 {
				continue
			}
			hp := HostPort{IP: p.GetHostIp(), Protocol: p.GetProtocol(), Port: p.GetHostPort()}
			if hp.IP == "" {
				hp.IP = wildcardIP
			}
			if hp.Protocol == "" {
				hp.Protocol = "TCP"
			}
			pi.HostPorts = append(pi.HostPorts, hp)
		}
	}
	for _, c := range pod.GetSpec().GetInitContainers() {
		req, nz, err := containerRequests(c)
		if err != nil {
			return nil, fmt.Errorf("pod %s init container %s requests: %w", pi.Key, c.GetName(), err)
		}
		initMax = maxResource(initMax, req)
		initMaxNonZero = maxResource(initMaxNonZero, nz)
	}
	pi.Requests = maxResource(sum, initMax)
	pi.NonZeroRequests = maxResource(sumNonZero, initMaxNonZero)
	return pi, nil
}

func containerRequests(c *api.Container) (req, nonZero Resource, err error) {
	requests := c.GetResources().GetRequests()
	req, err = ParseResourceList(requests)
	if err != nil {
		return Resource{}, Resource{}, err
	}
	nonZero = req
	if _, ok := requests[ResourceCPU]; !ok {
		nonZero.MilliCPU = DefaultMilliCPURequest
	}
	if _, ok := requests[ResourceMemory]; !ok {
		nonZero.Memory = DefaultMemoryRequest
	}
	req.Pods, nonZero.Pods = 0, 0
	return req, nonZero, nil
}

func maxResource(a, b Resource) Resource {
	return Resource{MilliCPU: max(a.MilliCPU, b.MilliCPU), Memory: max(a.Memory, b.Memory), Pods: max(a.Pods, b.Pods)}
}

// ControllerUID returns the uid of the managing controller (the owner
// reference with controller=true), else of the first owner, else "".
func ControllerUID(m *api.ObjectMeta) string {
	refs := m.GetOwnerReferences()
	for _, ref := range refs {
		if ref.GetController() {
			return ref.GetUid()
		}
	}
	if len(refs) > 0 {
		return refs[0].GetUid()
	}
	return ""
}

// NodeInfo is a node with the pods the scheduler counts on it (bound and
// assumed), aggregated. A NodeInfo in a snapshot is never mutated: the cache
// clones on change.
type NodeInfo struct {
	// Node is nil while pods are known on a node whose Node object has not
	// arrived yet.
	Node        *api.Node
	Allocatable Resource
	// Requested is the sum of the pods' requests; NonZeroRequested the sum of
	// their NonZeroRequests. Requested.Pods is unused: see PodCount.
	Requested        Resource
	NonZeroRequested Resource
	PodCount         int64
	UsedPorts        map[HostPort]int
	// OwnerPods counts the pods on the node by OwnerUID.
	OwnerPods map[string]int
	// Generation increases on every change; the cache uses it to copy only
	// changed nodes into a snapshot.
	Generation int64
}

// Name is the node's name, or "" for a NodeInfo without a Node.
func (n *NodeInfo) Name() string { return n.Node.GetMetadata().GetName() }

// SetNode sets the Node and parses its allocatable.
func (n *NodeInfo) SetNode(node *api.Node) error {
	alloc, err := ParseResourceList(node.GetStatus().GetAllocatable())
	n.Node = node
	n.Allocatable = alloc
	if err != nil {
		n.Allocatable = Resource{}
		return fmt.Errorf("node %s allocatable: %w", node.GetMetadata().GetName(), err)
	}
	return nil
}

// AddPod counts a pod on the node.
func (n *NodeInfo) AddPod(p *PodInfo) { n.update(p, 1) }

// RemovePod uncounts a pod previously added.
func (n *NodeInfo) RemovePod(p *PodInfo) { n.update(p, -1) }

func (n *NodeInfo) update(p *PodInfo, sign int64) {
	n.Requested.MilliCPU += sign * p.Requests.MilliCPU
	n.Requested.Memory += sign * p.Requests.Memory
	n.NonZeroRequested.MilliCPU += sign * p.NonZeroRequests.MilliCPU
	n.NonZeroRequested.Memory += sign * p.NonZeroRequests.Memory
	n.PodCount += sign
	for _, hp := range p.HostPorts {
		if n.UsedPorts == nil {
			n.UsedPorts = map[HostPort]int{}
		}
		n.UsedPorts[hp] += int(sign)
		if n.UsedPorts[hp] <= 0 {
			delete(n.UsedPorts, hp)
		}
	}
	if p.OwnerUID != "" {
		if n.OwnerPods == nil {
			n.OwnerPods = map[string]int{}
		}
		n.OwnerPods[p.OwnerUID] += int(sign)
		if n.OwnerPods[p.OwnerUID] <= 0 {
			delete(n.OwnerPods, p.OwnerUID)
		}
	}
}

// PortsConflict reports whether any of ports is already bound on the node.
func (n *NodeInfo) PortsConflict(ports []HostPort) bool {
	if len(n.UsedPorts) == 0 {
		return false
	}
	for _, want := range ports {
		for used := range n.UsedPorts {
			if want.conflicts(used) {
				return true
			}
		}
	}
	return false
}

// Clone copies the NodeInfo; the Node object is shared (it is immutable).
func (n *NodeInfo) Clone() *NodeInfo {
	c := *n
	if n.UsedPorts != nil {
		c.UsedPorts = make(map[HostPort]int, len(n.UsedPorts))
		for k, v := range n.UsedPorts {
			c.UsedPorts[k] = v
		}
	}
	if n.OwnerPods != nil {
		c.OwnerPods = make(map[string]int, len(n.OwnerPods))
		for k, v := range n.OwnerPods {
			c.OwnerPods[k] = v
		}
	}
	return &c
}
