package services

import (
	"net/netip"
	"reflect"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/skiff-dev/skiff/proto/api"
)

func service(ns, name, clusterIP string, ports ...*api.ServicePort) *api.Service {
	return &api.Service{
		Metadata: &api.ObjectMeta{Namespace: ns, Name: name},
		Spec:     &api.ServiceSpec{ClusterIp: clusterIP, Ports: ports},
	}
}

func endpoints(ns, name string, subsets ...*api.EndpointSubset) *api.Endpoints {
	return &api.Endpoints{Metadata: &api.ObjectMeta{Namespace: ns, Name: name}, Subsets: subsets}
}

func addrs(ips ...string) []*api.EndpointAddress {
	var out []*api.EndpointAddress
	for _, ip := range ips {
		out = append(out, &api.EndpointAddress{Ip: ip})
	}
	return out
}

func eps(port int32, ips ...string) []Endpoint {
	var out []Endpoint
	for _, ip := range ips {
		out = append(out, Endpoint{IP: netip.MustParseAddr(ip), Port: port})
	}
	return out
}

func TestServicePortsJoinServicesWithReadyEndpoints(t *testing.T) {
	tests := []struct {
		name      string
		services  []*api.Service
		endpoints []*api.Endpoints
		want      []ServicePort
	}{
		{
			name:     "service without endpoints has a port and no endpoints",
			services: []*api.Service{service("default", "web", "10.96.0.20", &api.ServicePort{Port: 80, Protocol: "TCP"})},
			want: []ServicePort{{
				Name: ServicePortName{"default", "web", ""}, ClusterIP: netip.MustParseAddr("10.96.0.20"), Port: 80, Protocol: "TCP",
			}},
		},
		{
			name: "ready addresses only, matched by port name, sorted and de-duplicated",
			services: []*api.Service{service("default", "web", "10.96.0.20",
				&api.ServicePort{Name: "http", Port: 80, Protocol: "TCP", NodePort: 30080},
				&api.ServicePort{Name: "dns", Port: 53, Protocol: "UDP"})},
			endpoints: []*api.Endpoints{endpoints("default", "web",
				&api.EndpointSubset{
					Addresses:         addrs("10.244.1.3", "10.244.1.2"),
					NotReadyAddresses: addrs("10.244.1.9"),
					Ports:             []*api.EndpointPort{{Name: "http", Port: 8080, Protocol: "TCP"}, {Name: "dns", Port: 5353, Protocol: "UDP"}},
				},
				&api.EndpointSubset{
					Addresses: addrs("10.244.2.2", "10.244.1.2"),
					Ports:     []*api.EndpointPort{{Name: "http", Port: 8080, Protocol: "TCP"}},
				})},
			want: []ServicePort{
				{Name: ServicePortName{"default", "web", "dns"}, ClusterIP: netip.MustParseAddr("10.96.0.20"), Port: 53, Protocol: "UDP",
					Endpoints: eps(5353, "10.244.1.2", "10.244.1.3")},
				{Name: ServicePortName{"default", "web", "http"}, ClusterIP: netip.MustParseAddr("10.96.0.20"), Port: 80, Protocol: "TCP", NodePort: 30080,
					Endpoints: eps(8080, "10.244.1.2", "10.244.1.3", "10.244.2.2")},
			},
		},
		{
			name: "named targetPort resolves through the endpoint port of that name",
			services: []*api.Service{service("ns1", "api", "10.96.0.30",
				&api.ServicePort{Name: "web", Port: 80, TargetPort: structpb.NewStringValue("http")})},
			endpoints: []*api.Endpoints{endpoints("ns1", "api", &api.EndpointSubset{
				Addresses: addrs("10.244.1.5"),
				Ports:     []*api.EndpointPort{{Name: "http", Port: 8000}},
			})},
			want: []ServicePort{{Name: ServicePortName{"ns1", "api", "web"}, ClusterIP: netip.MustParseAddr("10.96.0.30"), Port: 80, Protocol: "TCP",
				Endpoints: eps(8000, "10.244.1.5")}},
		},
		{
			name: "protocol must match",
			services: []*api.Service{service("ns1", "api", "10.96.0.30",
				&api.ServicePort{Port: 53, Protocol: "UDP"})},
			endpoints: []*api.Endpoints{endpoints("ns1", "api", &api.EndpointSubset{
				Addresses: addrs("10.244.1.5"),
				Ports:     []*api.EndpointPort{{Port: 53, Protocol: "TCP"}},
			})},
			want: []ServicePort{{Name: ServicePortName{"ns1", "api", ""}, ClusterIP: netip.MustParseAddr("10.96.0.30"), Port: 53, Protocol: "UDP"}},
		},
		{
			name: "headless and unallocated services have no service ports",
			services: []*api.Service{
				service("default", "headless", ClusterIPNone, &api.ServicePort{Port: 80}),
				service("default", "pending", "", &api.ServicePort{Port: 80}),
			},
			want: []ServicePort{},
		},
		{
			name: "services sort by namespace then name",
			services: []*api.Service{
				service("b", "a", "10.96.0.2", &api.ServicePort{Port: 80}),
				service("a", "z", "10.96.0.1", &api.ServicePort{Port: 80}),
			},
			want: []ServicePort{
				{Name: ServicePortName{"a", "z", ""}, ClusterIP: netip.MustParseAddr("10.96.0.1"), Port: 80, Protocol: "TCP"},
				{Name: ServicePortName{"b", "a", ""}, ClusterIP: netip.MustParseAddr("10.96.0.2"), Port: 80, Protocol: "TCP"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(nil)
			for _, s := range tt.services {
				tr.SetService(s)
			}
			for _, e := range tt.endpoints {
				tr.SetEndpoints(e)
			}
			if got := tr.ServicePorts(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ServicePorts() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestTrackerReportsEveryChangeAndForgetsDeleted(t *testing.T) {
	changes := 0
	tr := NewTracker(func() { changes++ })
	tr.SetService(service("default", "web", "10.96.0.20", &api.ServicePort{Port: 80}))
	tr.SetEndpoints(endpoints("default", "web", &api.EndpointSubset{Addresses: addrs("10.244.1.2"), Ports: []*api.EndpointPort{{Port: 8080}}}))
	if got := tr.ServicePorts(); len(got) != 1 || len(got[0].Endpoints) != 1 {
		t.Fatalf("ServicePorts() = %+v, want one port with one endpoint", got)
	}
	tr.DeleteEndpoints("default", "web")
	if got := tr.ServicePorts(); len(got) != 1 || len(got[0].Endpoints) != 0 {
		t.Fatalf("after endpoints delete: %+v, want one port without endpoints", got)
	}
	tr.DeleteService("default", "web")
	if got := tr.ServicePorts(); len(got) != 0 {
		t.Fatalf("after service delete: %+v, want none", got)
	}
	if changes != 4 {
		t.Errorf("onChange ran %d times, want 4", changes)
	}
}

func TestServiceForDNS(t *testing.T) {
	tr := NewTracker(nil)
	tr.SetService(service("default", "web", "10.96.0.20", &api.ServicePort{Name: "http", Port: 80}))
	tr.SetService(service("default", "db", ClusterIPNone, &api.ServicePort{Port: 5432}))
	tr.SetEndpoints(endpoints("default", "db",
		&api.EndpointSubset{Addresses: addrs("10.244.2.7", "10.244.1.7"), NotReadyAddresses: addrs("10.244.3.3"), Ports: []*api.EndpointPort{{Port: 5432}}},
		&api.EndpointSubset{Addresses: addrs("10.244.1.7"), Ports: []*api.EndpointPort{{Name: "metrics", Port: 9000}}}))

	web, ok := tr.Service("default", "web")
	if !ok || web.Headless || web.ClusterIP != netip.MustParseAddr("10.96.0.20") {
		t.Errorf("web = %+v, %v; want ClusterIP 10.96.0.20", web, ok)
	}
	db, ok := tr.Service("default", "db")
	if !ok || !db.Headless {
		t.Fatalf("db = %+v, %v; want headless", db, ok)
	}
	var ips []string
	for _, e := range db.Endpoints {
		ips = append(ips, e.IP.String())
	}
	if want := []string{"10.244.1.7", "10.244.2.7"}; !reflect.DeepEqual(ips, want) {
		t.Errorf("db endpoints = %v, want %v (ready, unique, sorted)", ips, want)
	}
	if _, ok := tr.Service("other", "web"); ok {
		t.Error("found a service in the wrong namespace")
	}
	if ns, name, ok := tr.ServiceByClusterIP(netip.MustParseAddr("10.96.0.20")); !ok || ns != "default" || name != "web" {
		t.Errorf("ServiceByClusterIP = %s/%s %v, want default/web", ns, name, ok)
	}
}
