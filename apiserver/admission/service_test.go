package admission

import (
	"testing"

	"github.com/skiff-dev/skiff/internal/intstr"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

func service(mutate func(*api.Service)) func() kinds.Object { return with(validService, mutate) }

func nodePortService(s *api.Service) {
	s.Spec.Type = "NodePort"
	s.Spec.Ports[0].NodePort = 30080
}

func TestValidateService(t *testing.T) {
	runRules(t, []rule{
		{"valid service", service(nil), "", ""},
		{"name is a DNS-1123 label", service(func(s *api.Service) { s.Metadata.Name = "web.v1" }), "metadata.name", invalidT},
		{"type enum", service(func(s *api.Service) { s.Spec.Type = "LoadBalancer" }), "spec.type", notSupported},
		{"clusterIP is an IP", service(func(s *api.Service) { s.Spec.ClusterIp = "10.96.0.300" }), "spec.clusterIP", invalidT},
		{"clusterIP allocated", service(func(s *api.Service) { s.Spec.ClusterIp = "10.96.0.10"; s.Spec.ClusterIps = []string{"10.96.0.10"} }), "", ""},
		{"clusterIPs match clusterIP", service(func(s *api.Service) { s.Spec.ClusterIp = "10.96.0.10"; s.Spec.ClusterIps = []string{"10.96.0.11"} }), "spec.clusterIPs[0]", invalidT},
		{"headless service", service(func(s *api.Service) { s.Spec.ClusterIp = "None"; s.Spec.Ports = nil }), "", ""},
		{"headless is not NodePort", service(func(s *api.Service) { nodePortService(s); s.Spec.ClusterIp = "None" }), "spec.clusterIP", invalidT},
		{"ports required", service(func(s *api.Service) { s.Spec.Ports = nil }), "spec.ports", required},
		{"port required", service(func(s *api.Service) { s.Spec.Ports[0].Port = 0 }), "spec.ports[0].port", required},
		{"port range", service(func(s *api.Service) { s.Spec.Ports[0].Port = 65536 }), "spec.ports[0].port", invalidT},
		{"port protocol enum", service(func(s *api.Service) { s.Spec.Ports[0].Protocol = "HTTP" }), "spec.ports[0].protocol", notSupported},
		{"port names required with several ports", service(func(s *api.Service) { s.Spec.Ports[1].Name = "" }), "spec.ports[1].name", required},
		{"single port needs no name", service(func(s *api.Service) { s.Spec.Ports = s.Spec.Ports[:1]; s.Spec.Ports[0].Name = "" }), "", ""},
		{"port names unique", service(func(s *api.Service) { s.Spec.Ports[1].Name = "http" }), "spec.ports[1].name", duplicate},
		{"port name syntax", service(func(s *api.Service) { s.Spec.Ports[1].Name = "Metrics" }), "spec.ports[1].name", invalidT},
		{"port and protocol unique", service(func(s *api.Service) { s.Spec.Ports[1].Port = 80 }), "spec.ports[1]", duplicate},
		{"same port on UDP", service(func(s *api.Service) { s.Spec.Ports[1].Port = 80; s.Spec.Ports[1].Protocol = "UDP" }), "", ""},
		{"targetPort range", service(func(s *api.Service) { s.Spec.Ports[1].TargetPort = intstr.FromInt(0) }), "spec.ports[1].targetPort", invalidT},
		{"targetPort name syntax", service(func(s *api.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("web_http") }), "spec.ports[0].targetPort", invalidT},
		{"targetPort required", service(func(s *api.Service) { s.Spec.Ports[0].TargetPort = nil }), "spec.ports[0].targetPort", required},
		{"nodePort only for NodePort", service(func(s *api.Service) { s.Spec.Ports[0].NodePort = 30080 }), "spec.ports[0].nodePort", forbidden},
		{"NodePort service", service(nodePortService), "", ""},
		{"nodePort range", service(func(s *api.Service) { nodePortService(s); s.Spec.Ports[0].NodePort = 8080 }), "spec.ports[0].nodePort", invalidT},
		{"nodePorts unique", service(func(s *api.Service) { nodePortService(s); s.Spec.Ports[1].NodePort = 30080 }), "spec.ports[1].nodePort", duplicate},
		{"selector label syntax", service(func(s *api.Service) { s.Spec.Selector["app"] = "web/v1" }), "spec.selector", invalidT},
		{"sessionAffinity enum", service(func(s *api.Service) { s.Spec.SessionAffinity = "Cookie" }), "spec.sessionAffinity", notSupported},
		{"externalTrafficPolicy Local needs NodePort", service(func(s *api.Service) { s.Spec.ExternalTrafficPolicy = "Local" }), "spec.externalTrafficPolicy", invalidT},
		{"externalIPs are IPs", service(func(s *api.Service) { s.Spec.ExternalIps = []string{"example.com"} }), "spec.externalIPs[0]", invalidT},
	})
}

func endpoints(mutate func(*api.Endpoints)) func() kinds.Object { return with(validEndpoints, mutate) }

func TestValidateEndpoints(t *testing.T) {
	runRules(t, []rule{
		{"valid endpoints", endpoints(nil), "", ""},
		{"address ip required", endpoints(func(e *api.Endpoints) { e.Subsets[0].Addresses[0].Ip = "" }), "subsets[0].addresses[0].ip", required},
		{"address ip valid", endpoints(func(e *api.Endpoints) { e.Subsets[0].Addresses[0].Ip = "10.244.1" }), "subsets[0].addresses[0].ip", invalidT},
		{"not ready address ip valid", endpoints(func(e *api.Endpoints) { e.Subsets[0].NotReadyAddresses[0].Ip = "fe80::1%eth0" }), "subsets[0].notReadyAddresses[0].ip", invalidT},
		{"address hostname label", endpoints(func(e *api.Endpoints) { e.Subsets[0].Addresses[0].Hostname = "a.b" }), "subsets[0].addresses[0].hostname", invalidT},
		{"port required", endpoints(func(e *api.Endpoints) { e.Subsets[0].Ports[0].Port = 0 }), "subsets[0].ports[0].port", required},
		{"port range", endpoints(func(e *api.Endpoints) { e.Subsets[0].Ports[0].Port = -80 }), "subsets[0].ports[0].port", invalidT},
		{"port protocol enum", endpoints(func(e *api.Endpoints) { e.Subsets[0].Ports[0].Protocol = "tcp" }), "subsets[0].ports[0].protocol", notSupported},
		{"port names unique", endpoints(func(e *api.Endpoints) {
			e.Subsets[0].Ports = append(e.Subsets[0].Ports, &api.EndpointPort{Name: "http", Port: 81, Protocol: "TCP"})
		}), "subsets[0].ports[1].name", duplicate},
	})
}
