package printers

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/internal/selectors"
	"github.com/skiff-dev/skiff/proto/api"
)

// kindTables returns kubectl's columns for each kind, keyed by Kind.
func kindTables() map[string]kindTable {
	return map[string]kindTable{
		"Pod": {
			columns: []Column{{Name: "NAME"}, {Name: "READY"}, {Name: "STATUS"}, {Name: "RESTARTS"}, {Name: "AGE"},
				{Name: "IP", Wide: true}, {Name: "NODE", Wide: true}, {Name: "NOMINATED NODE", Wide: true}, {Name: "READINESS GATES", Wide: true}},
			row: func(obj kinds.Object, now time.Time) []string { return podRow(obj.(*api.Pod), now) },
		},
		"Deployment": {
			columns: []Column{{Name: "NAME"}, {Name: "READY"}, {Name: "UP-TO-DATE"}, {Name: "AVAILABLE"}, {Name: "AGE"},
				{Name: "CONTAINERS", Wide: true}, {Name: "IMAGES", Wide: true}, {Name: "SELECTOR", Wide: true}},
			row: func(obj kinds.Object, now time.Time) []string {
				d := obj.(*api.Deployment)
				st := d.GetStatus()
				names, images := containerCells(d.GetSpec().GetTemplate().GetSpec().GetContainers())
				return []string{d.GetMetadata().GetName(),
					fmt.Sprintf("%d/%d", st.GetReadyReplicas(), d.GetSpec().GetReplicas()),
					itoa(st.GetUpdatedReplicas()), itoa(st.GetAvailableReplicas()),
					Age(d.GetMetadata().GetCreationTimestamp(), now),
					names, images, SelectorString(d.GetSpec().GetSelector())}
			},
		},
		"ReplicaSet": {
			columns: []Column{{Name: "NAME"}, {Name: "DESIRED"}, {Name: "CURRENT"}, {Name: "READY"}, {Name: "AGE"},
				{Name: "CONTAINERS", Wide: true}, {Name: "IMAGES", Wide: true}, {Name: "SELECTOR", Wide: true}},
			row: func(obj kinds.Object, now time.Time) []string {
				rs := obj.(*api.ReplicaSet)
				names, images := containerCells(rs.GetSpec().GetTemplate().GetSpec().GetContainers())
				return []string{rs.GetMetadata().GetName(), itoa(rs.GetSpec().GetReplicas()),
					itoa(rs.GetStatus().GetReplicas()), itoa(rs.GetStatus().GetReadyReplicas()),
					Age(rs.GetMetadata().GetCreationTimestamp(), now),
					names, images, SelectorString(rs.GetSpec().GetSelector())}
			},
		},
		"Service": {
			columns: []Column{{Name: "NAME"}, {Name: "TYPE"}, {Name: "CLUSTER-IP"}, {Name: "EXTERNAL-IP"}, {Name: "PORT(S)"}, {Name: "AGE"},
				{Name: "SELECTOR", Wide: true}},
			row: func(obj kinds.Object, now time.Time) []string {
				s := obj.(*api.Service)
				spec := s.GetSpec()
				clusterIP := "<none>"
				if ips := spec.GetClusterIps(); len(ips) > 0 {
					clusterIP = ips[0]
				} else if spec.GetClusterIp() != "" {
					clusterIP = spec.GetClusterIp()
				}
				external := "<none>"
				if len(spec.GetExternalIps()) > 0 {
					external = strings.Join(spec.GetExternalIps(), ",")
				}
				ports := ServicePorts(spec.GetPorts())
				if ports == "" {
					ports = "<none>"
				}
				return []string{s.GetMetadata().GetName(), spec.GetType(), clusterIP, external, ports,
					Age(s.GetMetadata().GetCreationTimestamp(), now), labels.FormatLabels(spec.GetSelector())}
			},
		},
		"Endpoints": {
			columns: []Column{{Name: "NAME"}, {Name: "ENDPOINTS"}, {Name: "AGE"}},
			row: func(obj kinds.Object, now time.Time) []string {
				e := obj.(*api.Endpoints)
				return []string{e.GetMetadata().GetName(), FormatEndpoints(e), Age(e.GetMetadata().GetCreationTimestamp(), now)}
			},
		},
		"Namespace": {
			columns: []Column{{Name: "NAME"}, {Name: "STATUS"}, {Name: "AGE"}},
			row: func(obj kinds.Object, now time.Time) []string {
				n := obj.(*api.Namespace)
				return []string{n.GetMetadata().GetName(), n.GetStatus().GetPhase(), Age(n.GetMetadata().GetCreationTimestamp(), now)}
			},
		},
		"Node": {
			columns: []Column{{Name: "NAME"}, {Name: "STATUS"}, {Name: "ROLES"}, {Name: "AGE"}, {Name: "VERSION"},
				{Name: "INTERNAL-IP", Wide: true}, {Name: "EXTERNAL-IP", Wide: true}, {Name: "OS-IMAGE", Wide: true},
				{Name: "KERNEL-VERSION", Wide: true}, {Name: "CONTAINER-RUNTIME", Wide: true}},
			row: func(obj kinds.Object, now time.Time) []string { return nodeRow(obj.(*api.Node), now) },
		},
		"Event": {
			columns: []Column{{Name: "LAST SEEN"}, {Name: "TYPE"}, {Name: "REASON"}, {Name: "OBJECT"},
				{Name: "SUBOBJECT", Wide: true}, {Name: "SOURCE", Wide: true}, {Name: "MESSAGE"},
				{Name: "FIRST SEEN", Wide: true}, {Name: "COUNT", Wide: true}, {Name: "NAME", Wide: true}},
			row: func(obj kinds.Object, now time.Time) []string { return eventRow(obj.(*api.Event), now) },
		},
		"ConfigMap": {
			columns: []Column{{Name: "NAME"}, {Name: "DATA"}, {Name: "AGE"}},
			row: func(obj kinds.Object, now time.Time) []string {
				c := obj.(*api.ConfigMap)
				return []string{c.GetMetadata().GetName(), strconv.Itoa(len(c.GetData()) + len(c.GetBinaryData())),
					Age(c.GetMetadata().GetCreationTimestamp(), now)}
			},
		},
		"Secret": {
			columns: []Column{{Name: "NAME"}, {Name: "TYPE"}, {Name: "DATA"}, {Name: "AGE"}},
			row: func(obj kinds.Object, now time.Time) []string {
				s := obj.(*api.Secret)
				return []string{s.GetMetadata().GetName(), s.GetType(), strconv.Itoa(len(secretKeys(s))),
					Age(s.GetMetadata().GetCreationTimestamp(), now)}
			},
		},
		"Lease": {
			columns: []Column{{Name: "NAME"}, {Name: "HOLDER"}, {Name: "AGE"}},
			row: func(obj kinds.Object, now time.Time) []string {
				l := obj.(*api.Lease)
				return []string{l.GetMetadata().GetName(), l.GetSpec().GetHolderIdentity(), Age(l.GetMetadata().GetCreationTimestamp(), now)}
			},
		},
		"RoleBinding": {
			columns: []Column{{Name: "NAME"}, {Name: "ROLE"}, {Name: "AGE"},
				{Name: "USERS", Wide: true}, {Name: "GROUPS", Wide: true}},
			row: func(obj kinds.Object, now time.Time) []string {
				b := obj.(*api.RoleBinding)
				var users, groups []string
				for _, s := range b.GetSubjects() {
					switch s.GetKind() {
					case "User":
						users = append(users, s.GetName())
					case "Group":
						groups = append(groups, s.GetName())
					}
				}
				return []string{b.GetMetadata().GetName(), "Role/" + b.GetRoleRef().GetName(),
					Age(b.GetMetadata().GetCreationTimestamp(), now), strings.Join(users, ", "), strings.Join(groups, ", ")}
			},
		},
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

func containerCells(cs []*api.Container) (names, images string) {
	var n, i []string
	for _, c := range cs {
		n = append(n, c.GetName())
		i = append(i, c.GetImage())
	}
	return strings.Join(n, ","), strings.Join(i, ",")
}

// SelectorString is a label selector in kubectl's syntax ("app=web"),
// "<none>" when it is empty or invalid.
func SelectorString(ls *api.LabelSelector) string {
	sel, err := selectors.FromLabelSelector(ls)
	if err != nil || sel.String() == "" {
		return "<none>"
	}
	return sel.String()
}

// ServicePorts is kubectl's PORT(S) cell: "80/TCP" or "80:30080/TCP".
func ServicePorts(ports []*api.ServicePort) string {
	pieces := make([]string, len(ports))
	for i, p := range ports {
		pieces[i] = fmt.Sprintf("%d/%s", p.GetPort(), p.GetProtocol())
		if p.GetNodePort() > 0 {
			pieces[i] = fmt.Sprintf("%d:%d/%s", p.GetPort(), p.GetNodePort(), p.GetProtocol())
		}
	}
	return strings.Join(pieces, ",")
}

// FormatEndpoints is kubectl's ENDPOINTS cell: up to three ip:port pairs,
// then "+ N more...".
func FormatEndpoints(e *api.Endpoints) string {
	if len(e.GetSubsets()) == 0 {
		return "<none>"
	}
	const max = 3
	var list []string
	more := false
	count := 0
	for _, ss := range e.GetSubsets() {
		if len(ss.GetPorts()) == 0 {
			count += len(ss.GetAddresses())
			for _, a := range ss.GetAddresses() {
				if len(list) == max {
					more = true
					break
				}
				list = append(list, a.GetIp())
			}
			continue
		}
		for _, port := range ss.GetPorts() {
			count += len(ss.GetAddresses())
			for _, a := range ss.GetAddresses() {
				if len(list) == max {
					more = true
					break
				}
				list = append(list, net.JoinHostPort(a.GetIp(), strconv.Itoa(int(port.GetPort()))))
			}
		}
	}
	ret := strings.Join(list, ",")
	if more {
		return fmt.Sprintf("%s + %d more...", ret, count-max)
	}
	if ret == "" {
		ret = "<none>"
	}
	return ret
}

func nodeRow(n *api.Node, now time.Time) []string {
	var status []string
	for _, c := range n.GetStatus().GetConditions() {
		if c.GetType() != "Ready" {
			continue
		}
		if c.GetStatus() == "True" {
			status = append(status, "Ready")
		} else {
			status = append(status, "NotReady")
		}
	}
	if len(status) == 0 {
		status = append(status, "Unknown")
	}
	if n.GetSpec().GetUnschedulable() {
		status = append(status, "SchedulingDisabled")
	}
	roles := strings.Join(NodeRoles(n), ",")
	if roles == "" {
		roles = "<none>"
	}
	info := n.GetStatus().GetNodeInfo()
	orUnknown := func(s string) string {
		if s == "" {
			return "<unknown>"
		}
		return s
	}
	return []string{n.GetMetadata().GetName(), strings.Join(status, ","), roles,
		Age(n.GetMetadata().GetCreationTimestamp(), now), info.GetKubeletVersion(),
		nodeAddress(n, "InternalIP"), nodeAddress(n, "ExternalIP"),
		orUnknown(info.GetOsImage()), orUnknown(info.GetKernelVersion()), orUnknown(info.GetContainerRuntimeVersion())}
}

func nodeAddress(n *api.Node, typ string) string {
	for _, a := range n.GetStatus().GetAddresses() {
		if a.GetType() == typ {
			return a.GetAddress()
		}
	}
	return "<none>"
}

// NodeRoles are the node-role.kubernetes.io/<role> and kubernetes.io/role
// labels, sorted.
func NodeRoles(n *api.Node) []string {
	set := map[string]bool{}
	for k, v := range n.GetMetadata().GetLabels() {
		switch {
		case strings.HasPrefix(k, "node-role.kubernetes.io/"):
			if role := strings.TrimPrefix(k, "node-role.kubernetes.io/"); role != "" {
				set[role] = true
			}
		case k == "kubernetes.io/role" && v != "":
			set[v] = true
		}
	}
	out := make([]string, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

func eventRow(e *api.Event, now time.Time) []string {
	first := Age(e.GetFirstTimestamp(), now)
	last := Age(e.GetLastTimestamp(), now)
	if e.GetLastTimestamp() == nil {
		last = first
	}
	if e.GetCount() > 1 {
		last += fmt.Sprintf(" (x%d over %s)", e.GetCount(), first)
	}
	io := e.GetInvolvedObject()
	target := strings.ToLower(io.GetKind())
	if io.GetName() != "" {
		target += "/" + io.GetName()
	}
	return []string{last, e.GetType(), e.GetReason(), target, io.GetFieldPath(),
		EventSource(e), strings.TrimSpace(e.GetMessage()), first, strconv.Itoa(int(e.GetCount())), e.GetMetadata().GetName()}
}

// EventSource is kubectl's "component, host" form of who reported an event.
func EventSource(e *api.Event) string {
	component := e.GetSource().GetComponent()
	if component == "" {
		component = e.GetReportingComponent()
	}
	host := e.GetSource().GetHost()
	if host == "" {
		host = e.GetReportingInstance()
	}
	if component == "" && host == "" {
		return ""
	}
	if host == "" {
		return component
	}
	return component + ", " + host
}
