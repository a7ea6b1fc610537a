package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/testcluster"
	"github.com/skiff-dev/skiff/proto/api"
	"github.com/skiff-dev/skiff/proxy/internal/netnstest"
)

// topology is one node namespace with a pod bridge, two pods serving HTTP
// behind it, and a client outside the pod network on the node's link.
type topology struct {
	node, client, pod1, pod2 *netnstest.NS
}

const (
	nodeIP   = "192.168.77.1"
	clientIP = "192.168.77.2"
	pod1IP   = "10.244.1.2"
	pod2IP   = "10.244.1.3"
)

func newTopology(t *testing.T) *topology {
	t.Helper()
	top := &topology{
		node: netnstest.New(t, "node"), client: netnstest.New(t, "cli"),
		pod1: netnstest.New(t, "pod"), pod2: netnstest.New(t, "pod"),
	}
	n := top.node
	n.MustExec(t, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", top.client.Name)
	n.MustExec(t, "ip", "addr", "add", nodeIP+"/24", "dev", "eth0")
	n.MustExec(t, "ip", "link", "set", "eth0", "up")
	top.client.MustExec(t, "ip", "addr", "add", clientIP+"/24", "dev", "eth0")
	top.client.MustExec(t, "ip", "link", "set", "eth0", "up")
	top.client.MustExec(t, "ip", "route", "add", "default", "via", nodeIP)
	// Nodes have a default route, to an uplink of their own; without one a
	// ClusterIP with no rule would be unroutable before the filter rules
	// could reject it.
	n.MustExec(t, "ip", "link", "add", "uplink", "type", "veth", "peer", "name", "uplinkp")
	n.MustExec(t, "ip", "addr", "add", "192.168.88.1/24", "dev", "uplink")
	n.MustExec(t, "ip", "link", "set", "uplink", "up")
	n.MustExec(t, "ip", "link", "set", "uplinkp", "up")
	n.MustExec(t, "ip", "route", "add", "default", "via", "192.168.88.2")

	n.MustExec(t, "ip", "link", "add", "cni0", "type", "bridge")
	n.MustExec(t, "ip", "addr", "add", "10.244.1.1/24", "dev", "cni0")
	n.MustExec(t, "ip", "link", "set", "cni0", "up")
	// What the kubelet's CNI set-up guarantees: bridged pod traffic goes
	// through iptables, so a pod reaching its own Service is NATed back.
	n.MustExec(t, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1")
	for i, pod := range []*netnstest.NS{top.pod1, top.pod2} {
		veth := fmt.Sprintf("veth%d", i)
		n.MustExec(t, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", pod.Name)
		n.MustExec(t, "ip", "link", "set", veth, "master", "cni0", "up")
		// As the CNI bridge plugin's hairpinMode does: br_netfilter DNATs
		// a pod's packet to its own Service on the bridge itself, so it
		// must be allowed back out of the port it came in by.
		n.MustExec(t, "ip", "link", "set", veth, "type", "bridge_slave", "hairpin", "on")
		pod.MustExec(t, "ip", "addr", "add", []string{pod1IP, pod2IP}[i]+"/24", "dev", "eth0")
		pod.MustExec(t, "ip", "link", "set", "eth0", "up")
		pod.MustExec(t, "ip", "route", "add", "default", "via", "10.244.1.1")
		serveHTTP(t, pod, fmt.Sprintf("pod%d", i+1))
	}
	return top
}

// serveHTTP answers name on port 8080 inside ns.
func serveHTTP(t *testing.T, ns *netnstest.NS, name string) {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() (err error) { ln, err = net.Listen("tcp", ":8080"); return err }); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) }), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
}

// get does one HTTP/1.0 GET from inside ns. The socket is dialled on the
// namespace's thread (net/http's transport would dial on another one).
func get(ns *netnstest.NS, addr string) (string, error) {
	var body string
	err := ns.Do(func() error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
			return err
		}
		b, err := io.ReadAll(c)
		if err != nil {
			return err
		}
		_, body, _ = strings.Cut(string(b), "\r\n\r\n")
		return nil
	})
	return body, err
}

// backends polls addr from ns until every one of want answered, or fails.
func backends(t *testing.T, ns *netnstest.NS, addr string, want ...string) {
	t.Helper()
	seen := map[string]bool{}
	var lastErr error
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		body, err := get(ns, addr)
		if err != nil {
			lastErr = err
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if !slices.Contains(want, body) {
			t.Fatalf("GET %s from %s answered %q, want one of %v", addr, ns.Name, body, want)
		}
		seen[body] = true
		if len(seen) == len(want) {
			return
		}
	}
	t.Fatalf("GET %s from %s reached %v, want all of %v (last error: %v)", addr, ns.Name, seen, want, lastErr)
}

func endpointsOf(ips ...string) *api.Endpoints {
	ep := &api.Endpoints{Metadata: &api.ObjectMeta{Namespace: "default", Name: "web"}}
	s := &api.EndpointSubset{Ports: []*api.EndpointPort{{Name: "http", Port: 8080, Protocol: "TCP"}}}
	for _, ip := range ips {
		s.Addresses = append(s.Addresses, &api.EndpointAddress{Ip: ip})
	}
	ep.Subsets = []*api.EndpointSubset{s}
	return ep
}

func saveNAT(t *testing.T, ns *netnstest.NS) string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(ns.MustExec(t, "iptables-save", "-t", "nat"), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

func TestProxyEndToEnd(t *testing.T) {
	netnstest.Require(t, "iptables", "iptables-save", "iptables-restore", "sysctl")
	top := newTopology(t)
	top.node.MustExec(t, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "192.0.2.0/24", "-j", "MASQUERADE")
	natBefore := saveNAT(t, top.node)

	cluster := testcluster.Start(t)
	ctx := context.Background()
	svc, err := cluster.Client.Services().Create(ctx, &api.Service{
		Metadata: &api.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: &api.ServiceSpec{Type: "NodePort", Selector: map[string]string{"app": "web"},
			Ports: []*api.ServicePort{{Name: "http", Port: 80}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	clusterIP, nodePort := svc.GetSpec().GetClusterIp(), svc.GetSpec().GetPorts()[0].GetNodePort()
	if clusterIP == "" || nodePort == 0 {
		t.Fatalf("apiserver allocated ClusterIP %q NodePort %d", clusterIP, nodePort)
	}
	eps, err := cluster.Client.Endpoints().Create(ctx, endpointsOf(pod1IP, pod2IP))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*api.Node{
		{Metadata: &api.ObjectMeta{Name: "node1"}, Spec: &api.NodeSpec{PodCidr: "10.244.1.0/24"}},
		{Metadata: &api.ObjectMeta{Name: "node2"}, Spec: &api.NodeSpec{PodCidr: "10.244.2.0/24"}},
	} {
		created, err := cluster.Client.Nodes().Create(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		ip := map[string]string{"node1": nodeIP, "node2": clientIP}[n.Metadata.Name]
		created.Status = &api.NodeStatus{Addresses: []*api.NodeAddress{{Type: "InternalIP", Address: ip}}}
		if _, err := cluster.Client.Nodes().UpdateStatus(ctx, created); err != nil {
			t.Fatal(err)
		}
	}

	cfg := Defaults()
	cfg.NodeName = "node1"
	cfg.DNSAddr = net.JoinHostPort(cfg.ClusterDNS.String(), "53")
	cfg.MinSyncPeriod = 200 * time.Millisecond
	// No periodic sync during the test: every rule change it sees was
	// made by the event that caused it.
	cfg.SyncPeriod = time.Hour
	cfg.InNetNS = top.node.Do
	p, err := New(cfg, cluster.Client)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	t.Cleanup(stop)

	ready := time.Now().Add(20 * time.Second)
	for p.Ready() != nil && time.Now().Before(ready) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := p.Ready(); err != nil {
		t.Fatalf("proxy not ready: %v", err)
	}

	t.Run("ClusterIP from outside the pod network reaches every endpoint", func(t *testing.T) {
		backends(t, top.client, net.JoinHostPort(clusterIP, "80"), "pod1", "pod2")
	})
	t.Run("NodePort on the node address reaches every endpoint", func(t *testing.T) {
		backends(t, top.client, net.JoinHostPort(nodeIP, fmt.Sprint(nodePort)), "pod1", "pod2")
	})
	t.Run("ClusterIP from the node itself reaches every endpoint", func(t *testing.T) {
		backends(t, top.node, net.JoinHostPort(clusterIP, "80"), "pod1", "pod2")
	})
	t.Run("NodePort on the node's localhost reaches every endpoint", func(t *testing.T) {
		backends(t, top.node, net.JoinHostPort("127.0.0.1", fmt.Sprint(nodePort)), "pod1", "pod2")
	})
	t.Run("a pod reaches its own Service, itself included", func(t *testing.T) {
		backends(t, top.pod1, net.JoinHostPort(clusterIP, "80"), "pod1", "pod2")
	})
	t.Run("cluster DNS answers pods on the cluster DNS address", func(t *testing.T) {
		var answer *mdns.Msg
		err := top.pod2.Do(func() (err error) {
			q := new(mdns.Msg)
			q.SetQuestion("web.default.svc.cluster.local.", mdns.TypeA)
			answer, _, err = (&mdns.Client{Timeout: 2 * time.Second}).Exchange(q, cfg.DNSAddr)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(answer.Answer) != 1 || answer.Answer[0].(*mdns.A).A.String() != clusterIP {
			t.Errorf("answer = %v, want %s", answer.Answer, clusterIP)
		}
	})
	t.Run("routes lead to the other node's pod subnet", func(t *testing.T) {
		waitFor(t, func() bool {
			return strings.Contains(top.node.MustExec(t, "ip", "route"), "10.244.2.0/24 via "+clientIP+" dev eth0 proto 74")
		}, "route to node2's pod subnet")
		if strings.Contains(top.node.MustExec(t, "ip", "route"), "10.244.1.0/24 via") {
			t.Error("the node routes its own pod subnet")
		}
	})
	t.Run("an endpoint removed stops getting traffic within seconds", func(t *testing.T) {
		eps = proto.Clone(eps).(*api.Endpoints)
		eps.Subsets = endpointsOf(pod2IP).Subsets
		if _, err := cluster.Client.Endpoints().Update(ctx, eps); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		waitFor(t, func() bool {
			for range 10 {
				if body, err := get(top.client, net.JoinHostPort(clusterIP, "80")); err != nil || body != "pod2" {
					return false
				}
			}
			return true
		}, "only pod2 answering")
		// With the periodic sync an hour away, the endpoints change itself
		// rewrote the rules; how fast is the benchmarks' business.
		t.Logf("rules followed the endpoints change in %v", time.Since(start))
	})
	t.Run("a Service without endpoints is rejected, not black-holed", func(t *testing.T) {
		if _, err := cluster.Client.Endpoints().Delete(ctx, "default", "web", client.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			_, err := get(top.client, net.JoinHostPort(clusterIP, "80"))
			return err != nil && strings.Contains(err.Error(), "refused")
		}, "connection refused")
	})

	stop()
	if err := Cleanup(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if got := saveNAT(t, top.node); got != natBefore {
		t.Errorf("nat table after --cleanup:\n%s\nwant as before:\n%s", got, natBefore)
	}
	if r := top.node.MustExec(t, "ip", "route"); strings.Contains(r, "proto 74") {
		t.Errorf("routes left after --cleanup:\n%s", r)
	}
	if a := top.node.MustExec(t, "ip", "addr", "show", "lo"); strings.Contains(a, cfg.ClusterDNS.String()) {
		t.Errorf("cluster DNS address left on lo after --cleanup:\n%s", a)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
