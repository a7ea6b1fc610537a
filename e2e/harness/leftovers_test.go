package harness

import (
	"slices"
	"testing"

	"github.com/skiff-dev/skiff/internal/localcluster"
)

func TestOurRulesSeesOnlyTheClustersChainsAndRules(t *testing.T) {
	c := &Cluster{
		Config:     localcluster.Config{Name: "e2e", Subnet: "10.251.0.0/24", StateDir: "/tmp/x"}.WithDefaults(),
		hostChains: map[string]bool{"nat/POSTROUTING": true, "filter/FORWARD": true, "nat/SKIFF-LOCAL-POSTROUTING": true},
	}
	now := hostRules{
		chains: map[string]bool{
			"nat/POSTROUTING":             true,
			"filter/FORWARD":              true,
			"nat/SKIFF-LOCAL-POSTROUTING": true, // a developer's cluster, there before
			"nat/E2E-LOCAL-POSTROUTING":   true, // ours, left
			"nat/CNI-4ec5c6a9b0adbd205f1": true, // another program's, came meanwhile
		},
		rules: map[string][]string{
			"filter/FORWARD":  {"-A FORWARD -i e2ebr0 -j ACCEPT", "-A FORWARD -i skiffbr0 -j ACCEPT"},
			"nat/POSTROUTING": {"-A POSTROUTING -s 10.251.0.0/24 ! -o e2ebr0 -j MASQUERADE", "-A POSTROUTING -s 10.250.0.0/24 -j MASQUERADE"},
		},
	}
	got := c.ourRules(now)
	slices.Sort(got)
	want := []string{
		"iptables chain nat/E2E-LOCAL-POSTROUTING",
		"iptables rule in filter/FORWARD: -A FORWARD -i e2ebr0 -j ACCEPT",
		"iptables rule in nat/POSTROUTING: -A POSTROUTING -s 10.251.0.0/24 ! -o e2ebr0 -j MASQUERADE",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ourRules =\n%q\nwant\n%q", got, want)
	}
}
