package routes

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/skiff-dev/skiff/proto/api"
	"github.com/skiff-dev/skiff/proxy/internal/netnstest"
)

func node(name, podCIDR string, addrs ...string) *api.Node {
	n := &api.Node{Metadata: &api.ObjectMeta{Name: name}, Spec: &api.NodeSpec{PodCidr: podCIDR}, Status: &api.NodeStatus{}}
	for i := 0; i+1 < len(addrs); i += 2 {
		n.Status.Addresses = append(n.Status.Addresses, &api.NodeAddress{Type: addrs[i], Address: addrs[i+1]})
	}
	return n
}

func route(dst, via, node string) Route {
	return Route{Dst: netip.MustParsePrefix(dst), Via: netip.MustParseAddr(via), Node: node}
}

func TestDesiredRoutesToOtherNodesPodSubnets(t *testing.T) {
	tests := []struct {
		name  string
		nodes []*api.Node
		want  []Route
	}{
		{
			name: "every other node with a podCIDR and an InternalIP, sorted",
			nodes: []*api.Node{
				node("self", "10.244.0.0/24", "InternalIP", "192.168.50.1"),
				node("b", "10.244.2.0/24", "Hostname", "b", "InternalIP", "192.168.50.3"),
				node("a", "10.244.1.0/24", "ExternalIP", "203.0.113.2", "InternalIP", "192.168.50.2"),
			},
			want: []Route{route("10.244.1.0/24", "192.168.50.2", "a"), route("10.244.2.0/24", "192.168.50.3", "b")},
		},
		{
			name: "nodes without podCIDR or InternalIP are skipped",
			nodes: []*api.Node{
				node("nocidr", "", "InternalIP", "192.168.50.4"),
				node("noip", "10.244.5.0/24", "ExternalIP", "203.0.113.5"),
				node("bad", "not-a-cidr", "InternalIP", "192.168.50.6"),
			},
		},
		{
			name:  "unmasked podCIDR is masked",
			nodes: []*api.Node{node("a", "10.244.1.7/24", "InternalIP", "192.168.50.2")},
			want:  []Route{route("10.244.1.0/24", "192.168.50.2", "a")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Desired(tt.nodes, "self"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Desired = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSyncKeepsRoutesInStepAndLeavesOthersAlone(t *testing.T) {
	netnstest.Require(t)
	ns := netnstest.New(t, "rt")
	// The shared L2 segment: a veth whose peer stays in the namespace too.
	ns.MustExec(t, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
	ns.MustExec(t, "ip", "addr", "add", "192.168.50.1/24", "dev", "eth0")
	ns.MustExec(t, "ip", "link", "set", "eth0", "up")
	ns.MustExec(t, "ip", "link", "set", "eth0p", "up")
	// A route somebody else made, inside the range Skiff manages.
	ns.MustExec(t, "ip", "route", "add", "10.244.9.0/24", "via", "192.168.50.9")
	m := NewManager(nil)

	sync := func(want ...Route) {
		t.Helper()
		if err := ns.Do(func() error { return m.Sync(want) }); err != nil {
			t.Fatal(err)
		}
	}
	routes := func() string {
		t.Helper()
		return ns.MustExec(t, "ip", "route", "show")
	}

	sync(route("10.244.1.0/24", "192.168.50.2", "a"), route("10.244.2.0/24", "192.168.50.3", "b"))
	got := routes()
	for _, want := range []string{"10.244.1.0/24 via 192.168.50.2 dev eth0 proto 74", "10.244.2.0/24 via 192.168.50.3 dev eth0 proto 74", "10.244.9.0/24 via 192.168.50.9 dev eth0"} {
		if !strings.Contains(got, want) {
			t.Errorf("routes lack %q:\n%s", want, got)
		}
	}

	// Node b is deleted and node a moves to another address.
	sync(route("10.244.1.0/24", "192.168.50.4", "a"))
	got = routes()
	if !strings.Contains(got, "10.244.1.0/24 via 192.168.50.4 dev eth0 proto 74") || strings.Contains(got, "10.244.2.0/24") {
		t.Errorf("after node changes:\n%s", got)
	}
	var listed []Route
	if err := ns.Do(func() (err error) { listed, err = m.List(); return err }); err != nil {
		t.Fatal(err)
	}
	if want := []Route{{Dst: netip.MustParsePrefix("10.244.1.0/24"), Via: netip.MustParseAddr("192.168.50.4")}}; !reflect.DeepEqual(listed, want) {
		t.Errorf("List = %v, want %v (only Skiff's own routes)", listed, want)
	}

	if err := ns.Do(m.Cleanup); err != nil {
		t.Fatal(err)
	}
	got = routes()
	if strings.Contains(got, "proto 74") || !strings.Contains(got, "10.244.9.0/24 via 192.168.50.9") {
		t.Errorf("after cleanup, want only the foreign route left:\n%s", got)
	}
}
