// Package services is the proxy's in-memory view of Services and Endpoints:
// it turns the API objects the informers hand it into ServicePorts, each with
// its ready endpoints, for the iptables proxier and the cluster DNS server.
//
// It must never talk to the apiserver or to the kernel: it is fed by
// informer handlers and read by the proxier, so both sides test in memory.
package services

import (
	"cmp"
	"net/netip"
	"slices"
	"sync"

	"github.com/skiff-dev/skiff/internal/intstr"
	"github.com/skiff-dev/skiff/proto/api"
)

// ClusterIPNone marks a headless Service: no virtual IP, DNS answers with
// the endpoints themselves.
const ClusterIPNone = "None"

// ServicePortName names one port of one Service, as kube-proxy does:
// "namespace/name:port" ("namespace/name" for an unnamed port).
type ServicePortName struct {
	Namespace, Name, Port string
}

func (n ServicePortName) String() string {
	if n.Port == "" {
		return n.Namespace + "/" + n.Name
	}
	return n.Namespace + "/" + n.Name + ":" + n.Port
}

// Endpoint is one ready backend of a ServicePort.
type Endpoint struct {
	IP       netip.Addr
	Port     int32
	NodeName string
	Hostname string
}

// String is "ip:port", the form iptables' --to-destination takes.
func (e Endpoint) String() string {
	return netip.AddrPortFrom(e.IP, uint16(e.Port)).String()
}

// ServicePort is one port of a Service with a ClusterIP, and the ready
// endpoints traffic to it goes to.
type ServicePort struct {
	Name      ServicePortName
	ClusterIP netip.Addr
	Port      int32
	// Protocol is TCP, UDP or SCTP.
	Protocol  string
	NodePort  int32
	Endpoints []Endpoint
}

// Service is what cluster DNS needs to know about one Service.
type Service struct {
	Namespace, Name string
	// ClusterIP is invalid for a headless Service.
	ClusterIP netip.Addr
	Headless  bool
	Ports     []*api.ServicePort
	// Endpoints are the ready endpoint addresses, de-duplicated and sorted.
	Endpoints []Endpoint
}

// Tracker holds the current Services and Endpoints. It is safe for
// concurrent use: informer handlers write, the proxier and DNS read.
type Tracker struct {
	onChange func()

	mu        sync.RWMutex
	services  map[string]*api.Service
	endpoints map[string]*api.Endpoints
}

// NewTracker makes an empty tracker. onChange (may be nil) runs after every
// change, outside the lock; the proxier uses it to request a sync.
func NewTracker(onChange func()) *Tracker {
	return &Tracker{
		onChange:  onChange,
		services:  map[string]*api.Service{},
		endpoints: map[string]*api.Endpoints{},
	}
}

func key(namespace, name string) string { return namespace + "/" + name }

// SetService records an added or updated Service. The object is kept, not
// copied: callers hand over objects they no longer mutate (informer objects).
func (t *Tracker) SetService(svc *api.Service) {
	m := svc.GetMetadata()
	t.mu.Lock()
	t.services[key(m.GetNamespace(), m.GetName())] = svc
	t.mu.Unlock()
	t.changed()
}

// DeleteService forgets a Service.
func (t *Tracker) DeleteService(namespace, name string) {
	t.mu.Lock()
	delete(t.services, key(namespace, name))
	t.mu.Unlock()
	t.changed()
}

// SetEndpoints records added or updated Endpoints.
func (t *Tracker) SetEndpoints(ep *api.Endpoints) {
	m := ep.GetMetadata()
	t.mu.Lock()
	t.endpoints[key(m.GetNamespace(), m.GetName())] = ep
	t.mu.Unlock()
	t.changed()
}

// DeleteEndpoints forgets Endpoints.
func (t *Tracker) DeleteEndpoints(namespace, name string) {
	t.mu.Lock()
	delete(t.endpoints, key(namespace, name))
	t.mu.Unlock()
	t.changed()
}

func (t *Tracker) changed() {
	if t.onChange != nil {
		t.onChange()
	}
}

// ServicePorts returns every port of every Service that has a ClusterIP,
// sorted by name, each with its ready endpoints sorted by address. Services
// with an unparsable ClusterIP are left out: they cannot have rules.
func (t *Tracker) ServicePorts() []ServicePort {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]ServicePort, 0, len(t.services))
	for k, svc := range t.services {
		ip, err := netip.ParseAddr(svc.GetSpec().GetClusterIp())
		if err != nil {
			continue
		}
		ep := t.endpoints[k]
		for _, p := range svc.GetSpec().GetPorts() {
			out = append(out, ServicePort{
				Name:      ServicePortName{Namespace: svc.GetMetadata().GetNamespace(), Name: svc.GetMetadata().GetName(), Port: p.GetName()},
				ClusterIP: ip,
				Port:      p.GetPort(),
				Protocol:  protocol(p.GetProtocol()),
				NodePort:  p.GetNodePort(),
				Endpoints: endpointsFor(p, ep),
			})
		}
	}
	slices.SortFunc(out, func(a, b ServicePort) int {
		return cmp.Or(cmp.Compare(a.Name.Namespace, b.Name.Namespace), cmp.Compare(a.Name.Name, b.Name.Name),
			cmp.Compare(a.Name.Port, b.Name.Port), cmp.Compare(a.Protocol, b.Protocol))
	})
	return out
}

// Service returns one Service with its ready endpoint addresses, for DNS.
func (t *Tracker) Service(namespace, name string) (Service, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	k := key(namespace, name)
	svc, ok := t.services[k]
	if !ok {
		return Service{}, false
	}
	out := Service{Namespace: namespace, Name: name, Ports: svc.GetSpec().GetPorts()}
	switch ip := svc.GetSpec().GetClusterIp(); ip {
	case ClusterIPNone:
		out.Headless = true
	default:
		out.ClusterIP, _ = netip.ParseAddr(ip)
	}
	seen := map[netip.Addr]bool{}
	for _, s := range t.endpoints[k].GetSubsets() {
		for _, a := range s.GetAddresses() {
			ip, err := netip.ParseAddr(a.GetIp())
			if err != nil || seen[ip] {
				continue
			}
			seen[ip] = true
			out.Endpoints = append(out.Endpoints, Endpoint{IP: ip, NodeName: a.GetNodeName(), Hostname: a.GetHostname()})
		}
	}
	slices.SortFunc(out.Endpoints, func(a, b Endpoint) int { return a.IP.Compare(b.IP) })
	return out, true
}

// ServiceByClusterIP finds the Service owning a ClusterIP (reverse DNS).
func (t *Tracker) ServiceByClusterIP(ip netip.Addr) (namespace, name string, ok bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, svc := range t.services {
		if a, err := netip.ParseAddr(svc.GetSpec().GetClusterIp()); err == nil && a == ip {
			return svc.GetMetadata().GetNamespace(), svc.GetMetadata().GetName(), true
		}
	}
	return "", "", false
}

func protocol(p string) string {
	if p == "" {
		return "TCP"
	}
	return p
}

// endpointsFor lists the ready endpoints of one service port. The
// endpoints controller writes one EndpointPort per service port, named after
// it and carrying the resolved target port, so the port is found by name
// (and protocol). When the names do not line up, a named targetPort may match
// an endpoint port of that name, and a lone unnamed endpoint port serves a
// lone service port.
func endpointsFor(sp *api.ServicePort, ep *api.Endpoints) []Endpoint {
	var out []Endpoint
	proto := protocol(sp.GetProtocol())
	for _, s := range ep.GetSubsets() {
		port, ok := matchPort(sp, proto, s.GetPorts())
		if !ok {
			continue
		}
		for _, a := range s.GetAddresses() {
			ip, err := netip.ParseAddr(a.GetIp())
			if err != nil {
				continue
			}
			out = append(out, Endpoint{IP: ip, Port: port, NodeName: a.GetNodeName(), Hostname: a.GetHostname()})
		}
	}
	slices.SortFunc(out, func(a, b Endpoint) int { return cmp.Or(a.IP.Compare(b.IP), cmp.Compare(a.Port, b.Port)) })
	return slices.CompactFunc(out, func(a, b Endpoint) bool { return a.IP == b.IP && a.Port == b.Port })
}

func matchPort(sp *api.ServicePort, proto string, ports []*api.EndpointPort) (int32, bool) {
	for _, p := range ports {
		if p.GetName() == sp.GetName() && protocol(p.GetProtocol()) == proto {
			return p.GetPort(), true
		}
	}
	if name, ok := intstr.StringValue(sp.GetTargetPort()); ok {
		for _, p := range ports {
			if p.GetName() == name && protocol(p.GetProtocol()) == proto {
				return p.GetPort(), true
			}
		}
	}
	if len(ports) == 1 && ports[0].GetName() == "" && protocol(ports[0].GetProtocol()) == proto {
		return ports[0].GetPort(), true
	}
	return 0, false
}
