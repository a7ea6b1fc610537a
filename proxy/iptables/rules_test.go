package iptables

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skiff-dev/skiff/proxy/services"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func servicePort(ns, name, port string, clusterIP string, p int32, proto string, nodePort int32, endpoints ...string) services.ServicePort {
	sp := services.ServicePort{
		Name:      services.ServicePortName{Namespace: ns, Name: name, Port: port},
		ClusterIP: netip.MustParseAddr(clusterIP), Port: p, Protocol: proto, NodePort: nodePort,
	}
	for _, e := range endpoints {
		ap := netip.MustParseAddrPort(e)
		sp.Endpoints = append(sp.Endpoints, services.Endpoint{IP: ap.Addr(), Port: int32(ap.Port())})
	}
	return sp
}

func TestGenerateMatchesGolden(t *testing.T) {
	cidr := netip.MustParsePrefix("10.244.0.0/16")
	web := servicePort("default", "web", "http", "10.96.0.20", 80, "TCP", 0, "10.244.1.2:8080", "10.244.1.3:8080", "10.244.2.2:8080")
	tests := []struct {
		name     string
		ports    []services.ServicePort
		existing map[string][]string
		// prev, when set, is synced first, and the payload is the
		// second sync's.
		prev []services.ServicePort
		opts Options
	}{
		{name: "empty", opts: Options{ClusterCIDR: cidr}},
		{name: "clusterip-three-endpoints", ports: []services.ServicePort{web}, opts: Options{ClusterCIDR: cidr}},
		{
			name: "nodeport-udp-and-no-endpoints",
			ports: []services.ServicePort{
				servicePort("default", "dns", "", "10.96.0.53", 53, "UDP", 0, "10.244.1.9:5353"),
				servicePort("default", "empty", "", "10.96.0.40", 80, "TCP", 30081),
				servicePort("shop", "front", "web", "10.96.1.1", 80, "TCP", 30080, "10.244.1.4:80", "10.244.2.4:80"),
			},
			opts: Options{ClusterCIDR: cidr, RandomFully: true},
		},
		{name: "masquerade-all", ports: []services.ServicePort{web}, opts: Options{MasqueradeAll: true}},
		{
			name:  "stale-chains-are-deleted",
			ports: []services.ServicePort{web},
			existing: map[string][]string{
				tableNAT:    {"PREROUTING", chainServices, "SKIFF-SVC-GONE0000000000000", "SKIFF-SEP-GONE0000000000000", ServiceChain(&web), "OTHER-CHAIN"},
				tableFilter: {"INPUT", chainServices},
			},
			opts: Options{ClusterCIDR: cidr},
		},
		{
			name: "endpoints-change-writes-only-that-service",
			prev: []services.ServicePort{
				web,
				servicePort("default", "api", "", "10.96.0.30", 443, "TCP", 0, "10.244.1.7:8443", "10.244.1.8:8443"),
			},
			ports: []services.ServicePort{
				web,
				servicePort("default", "api", "", "10.96.0.30", 443, "TCP", 0, "10.244.1.8:8443", "10.244.1.9:8443"),
			},
			opts: Options{ClusterCIDR: cidr},
		},
		{
			name: "partial-sync-writes-only-changed-services",
			prev: []services.ServicePort{
				web,
				servicePort("default", "api", "", "10.96.0.30", 443, "TCP", 0, "10.244.1.7:8443", "10.244.1.8:8443"),
				servicePort("default", "old", "", "10.96.0.31", 80, "TCP", 0, "10.244.1.9:80"),
			},
			ports: []services.ServicePort{
				web,
				servicePort("default", "api", "", "10.96.0.30", 443, "TCP", 0, "10.244.1.7:8443"),
				servicePort("default", "new", "", "10.96.0.32", 80, "TCP", 0, "10.244.2.9:80"),
			},
			opts: Options{ClusterCIDR: cidr},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := State{Chains: map[string]map[string]bool{}}
			for table, chains := range tt.existing {
				state.Chains[table] = ChainSet(chains)
			}
			if tt.prev != nil {
				state = Generate(tt.prev, state, tt.opts).State
			}
			got := Generate(tt.ports, state, tt.opts).Bytes()
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if string(got) != string(want) {
				t.Errorf("payload differs from %s:\n--- got\n%s\n--- want\n%s", path, got, want)
			}
		})
	}
}

func TestGenerateBalancesEvenly(t *testing.T) {
	// With n endpoints the i-th statistic rule must fire with 1/(n-i), so
	// that every endpoint ends up with 1/n of new connections.
	sp := servicePort("default", "web", "", "10.96.0.20", 80, "TCP", 0, "10.244.1.1:80", "10.244.1.2:80", "10.244.1.3:80", "10.244.1.4:80")
	data := string(Generate([]services.ServicePort{sp}, State{}, Options{}).Bytes())
	var probs []string
	for _, line := range strings.Split(data, "\n") {
		if strings.HasPrefix(line, "-A "+ServiceChain(&sp)) {
			_, after, found := strings.Cut(line, "--probability ")
			if !found {
				probs = append(probs, "last")
				continue
			}
			probs = append(probs, strings.Fields(after)[0])
		}
	}
	want := []string{"0.2500000000", "0.3333333333", "0.5000000000", "last"}
	if strings.Join(probs, ",") != strings.Join(want, ",") {
		t.Errorf("probabilities = %v, want %v", probs, want)
	}
}

func TestChainNamesAreStableAndFit(t *testing.T) {
	sp := servicePort("a-very-long-namespace-name", "a-very-long-service-name", "https", "10.96.0.1", 443, "TCP", 0, "10.244.1.1:8443")
	svc, sep := ServiceChain(&sp), EndpointChain(&sp, sp.Endpoints[0])
	if len(svc) > 28 || len(sep) > 28 {
		t.Errorf("chain names %q (%d), %q (%d) exceed iptables' 28 characters", svc, len(svc), sep, len(sep))
	}
	if svc != ServiceChain(&sp) || !strings.HasPrefix(svc, svcChainPrefix) || !strings.HasPrefix(sep, sepChainPrefix) {
		t.Errorf("unstable or misnamed chains %q %q", svc, sep)
	}
	udp := sp
	udp.Protocol = "UDP"
	if ServiceChain(&udp) == svc {
		t.Error("TCP and UDP ports of one service share a chain")
	}
}

func TestGenerateCountsRulesAndChains(t *testing.T) {
	sp := servicePort("default", "web", "", "10.96.0.20", 80, "TCP", 30080, "10.244.1.1:80", "10.244.1.2:80")
	existing := State{Chains: map[string]map[string]bool{tableNAT: ChainSet([]string{"SKIFF-SVC-GONE0000000000000"})}}
	opts := Options{ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16")}
	p := Generate([]services.ServicePort{sp}, existing, opts)
	if got, counted := strings.Count(string(p.Bytes()), "\n-A "), p.Rules[tableNAT]+p.Rules[tableFilter]; got != counted {
		t.Errorf("payload has %d rules, counted %d", got, counted)
	}
	// 4 fixed + service + masq + 2 nodeport + 2 statistic + 2x2 endpoint + nodeports jump.
	if p.Rules[tableNAT] != 15 {
		t.Errorf("nat rules = %d, want 15", p.Rules[tableNAT])
	}
	nat := p.State.Chains[tableNAT]
	if nat["SKIFF-SVC-GONE0000000000000"] {
		t.Error("a deleted stale chain is reported as present")
	}
	if !nat[ServiceChain(&sp)] || !nat[EndpointChain(&sp, sp.Endpoints[1])] || len(nat) != 7 {
		t.Errorf("nat chains = %v, want the 4 base chains, the service chain and 2 endpoint chains", nat)
	}

	// Unchanged, the next sync writes no service chain yet counts and keeps them.
	again := Generate([]services.ServicePort{sp}, p.State, opts)
	if len(again.Bytes()) != 0 {
		t.Errorf("nothing changed, yet the payload is:\n%s", again.Bytes())
	}
	if again.Rules[tableNAT] != 15 || len(again.State.Chains[tableNAT]) != 7 {
		t.Errorf("unchanged sync counts %d nat rules and chains %v, want 15 and the same 7", again.Rules[tableNAT], again.State.Chains[tableNAT])
	}
	// A chain that vanished from the tables is written again.
	delete(again.State.Chains[tableNAT], EndpointChain(&sp, sp.Endpoints[0]))
	if repaired := Generate([]services.ServicePort{sp}, again.State, opts); !strings.Contains(string(repaired.Bytes()), ":"+ServiceChain(&sp)) {
		t.Errorf("service with a missing endpoint chain not rewritten:\n%s", repaired.Bytes())
	}
}

func TestGenerateDropsEndpointCommentsInLargeClusters(t *testing.T) {
	small := Generate(benchServices(10), State{}, Options{})
	large := Generate(benchServices(400), State{}, Options{}) // 1,200 endpoints
	sp := benchServices(1)[0]
	sepRule := "-A " + EndpointChain(&sp, sp.Endpoints[0]) + " -m comment"
	if !strings.Contains(string(small.Bytes()), sepRule) {
		t.Errorf("small cluster: endpoint rules lack comments")
	}
	if strings.Contains(string(large.Bytes()), sepRule) || !strings.Contains(string(large.Bytes()), "bench/svc-0:http cluster IP") {
		t.Errorf("large cluster: want endpoint rules without comments and service rules with them")
	}
}

func TestGenerateListsTheTableBeforeLargeTransactions(t *testing.T) {
	cidr := netip.MustParsePrefix("10.244.0.0/16")
	ports := benchServices(100) // 400 service and endpoint chains
	synced := Generate(ports, State{}, Options{ClusterCIDR: cidr}).State
	changed := slices.Clone(ports)
	changed[7].Endpoints = changed[7].Endpoints[1:]
	others := State{Chains: map[string]map[string]bool{tableNAT: {}}}
	for i := range 1000 {
		others.Chains[tableNAT][fmt.Sprintf("OTHER-%d", i)] = true
	}
	tests := []struct {
		name  string
		ports []services.ServicePort
		prev  State
		list  bool // Options.ListLargeTransactions
		want  bool
	}{
		{name: "iptables-legacy never lists", ports: ports, want: false},
		{name: "first sync of 400 chains lists", ports: ports, list: true, want: true},
		{name: "partial sync of one service does not", ports: changed, prev: synced, list: true, want: false},
		{name: "400 chains into a table of 1,000 others do not", ports: ports, prev: others, list: true, want: false},
		{name: "small first sync does not", ports: ports[:10], list: true, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := string(Generate(tt.ports, tt.prev, Options{ClusterCIDR: cidr, ListLargeTransactions: tt.list}).Bytes())
			if got := strings.Contains(data, "*nat\n-S\n"); got != tt.want {
				t.Errorf("nat transaction starts with a listing = %v, want %v", got, tt.want)
			}
			if strings.Contains(data, "*filter\n-S\n") {
				t.Error("the filter transaction, a handful of chains, starts with a listing")
			}
			if n := strings.Count(data, "-S\n"); n > 1 {
				t.Errorf("%d listings, want at most one", n)
			}
		})
	}
}
