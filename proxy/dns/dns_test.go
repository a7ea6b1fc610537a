package dns

import (
	"context"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/skiff-dev/skiff/proto/api"
	"github.com/skiff-dev/skiff/proxy/services"
)

// upstream starts a resolver on loopback (UDP and TCP) that knows
// example.com.
func upstream(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if dns.CanonicalName(r.Question[0].Name) == "example.com." {
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)}}
		} else {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return pc.LocalAddr().String()
}

func tracker() *services.Tracker {
	tr := services.NewTracker(nil)
	tr.SetService(&api.Service{
		Metadata: &api.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: &api.ServiceSpec{ClusterIp: "10.96.0.20", Ports: []*api.ServicePort{
			{Name: "http", Port: 80, Protocol: "TCP"}, {Name: "dns", Port: 53, Protocol: "UDP"},
		}},
	})
	tr.SetService(&api.Service{
		Metadata: &api.ObjectMeta{Namespace: "default", Name: "db"},
		Spec:     &api.ServiceSpec{ClusterIp: services.ClusterIPNone, Ports: []*api.ServicePort{{Name: "pg", Port: 5432, Protocol: "TCP"}}},
	})
	tr.SetEndpoints(&api.Endpoints{
		Metadata: &api.ObjectMeta{Namespace: "default", Name: "db"},
		Subsets: []*api.EndpointSubset{{
			Addresses:         []*api.EndpointAddress{{Ip: "10.244.1.7"}, {Ip: "10.244.2.7", Hostname: "db-0"}},
			NotReadyAddresses: []*api.EndpointAddress{{Ip: "10.244.3.7"}},
			Ports:             []*api.EndpointPort{{Name: "pg", Port: 5432}},
		}},
	})
	return tr
}

// startServer runs a server forwarding to upstreams with forwardTimeout.
func startServer(t *testing.T, forwardTimeout time.Duration, upstreams ...string) *Server {
	t.Helper()
	s, err := Listen(Config{Addr: "127.0.0.1:0", Services: tracker(), Upstreams: upstreams, ForwardTimeout: forwardTimeout})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

func records(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, "A "+rr.A.String())
		case *dns.SRV:
			out = append(out, "SRV "+rr.Target+" "+strconv.Itoa(int(rr.Port)))
		case *dns.PTR:
			out = append(out, "PTR "+rr.Ptr)
		default:
			out = append(out, rr.String())
		}
	}
	slices.Sort(out)
	return out
}

func TestServerAnswersClusterNamesAndForwardsTheRest(t *testing.T) {
	// A generous forward timeout: a loaded machine must not turn a
	// forwarded answer into SERVFAIL.
	s := startServer(t, 10*time.Second, upstream(t))
	tests := []struct {
		name  string
		qname string
		qtype uint16
		rcode int
		want  []string
	}{
		{"service A is the ClusterIP", "web.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.96.0.20"}},
		{"names are case-insensitive", "WEB.Default.SVC.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.96.0.20"}},
		{"headless A are the ready endpoints", "db.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.244.1.7", "A 10.244.2.7"}},
		{"headless endpoint by hostname", "db-0.db.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.244.2.7"}},
		{"headless endpoint by dashed address", "10-244-1-7.db.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.244.1.7"}},
		{"SRV of a named port", "_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess, []string{"SRV web.default.svc.cluster.local. 80"}},
		{"SRV protocol must match", "_http._udp.web.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeNameError, nil},
		{"SRV of the service lists named ports", "web.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess,
			[]string{"SRV web.default.svc.cluster.local. 53", "SRV web.default.svc.cluster.local. 80"}},
		{"headless SRV names each endpoint", "_pg._tcp.db.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess,
			[]string{"SRV 10-244-1-7.db.default.svc.cluster.local. 5432", "SRV db-0.db.default.svc.cluster.local. 5432"}},
		{"unknown service is NXDOMAIN", "nope.default.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"wrong namespace is NXDOMAIN", "web.other.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"search-path miss is NXDOMAIN", "example.com.default.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"non-service name in the domain is NXDOMAIN", "foo.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"AAAA of a service is empty", "web.default.svc.cluster.local.", dns.TypeAAAA, dns.RcodeSuccess, nil},
		{"namespace name exists but is empty", "default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, nil},
		{"PTR of a ClusterIP", "20.0.96.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, []string{"PTR web.default.svc.cluster.local."}},
		{"other names go upstream", "example.com.", dns.TypeA, dns.RcodeSuccess, []string{"A 192.0.2.1"}},
		{"upstream NXDOMAIN passes through", "missing.example.", dns.TypeA, dns.RcodeNameError, nil},
	}
	for _, tt := range tests {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(tt.name+"/"+network, func(t *testing.T) {
				c := &dns.Client{Net: network, Timeout: 2 * time.Second}
				q := new(dns.Msg)
				q.SetQuestion(tt.qname, tt.qtype)
				m, _, err := c.Exchange(q, s.Addr())
				if err != nil {
					t.Fatal(err)
				}
				if m.Rcode != tt.rcode {
					t.Errorf("rcode = %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tt.rcode])
				}
				if got := records(m); !slices.Equal(got, tt.want) {
					t.Errorf("answer = %v, want %v", got, tt.want)
				}
			})
		}
	}
}

func TestServerFailsWhenUpstreamsAreDown(t *testing.T) {
	// A port with nothing behind it: the exchange times out.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	s := startServer(t, 300*time.Millisecond, dead)
	q := new(dns.Msg)
	q.SetQuestion("example.com.", dns.TypeA)
	// The server gives up on its upstream and says so: the client gets
	// an answer, SERVFAIL, rather than waiting for one that never comes.
	m, _, err := (&dns.Client{Timeout: time.Minute}).Exchange(q, s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if m.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode = %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	// Cluster names still work without upstreams.
	q.SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
	if m, _, err := (&dns.Client{}).Exchange(q, s.Addr()); err != nil || len(m.Answer) != 1 {
		t.Errorf("cluster name without upstream: %v %v", m, err)
	}
}

func TestUpstreamsFromResolvConf(t *testing.T) {
	path := t.TempDir() + "/resolv.conf"
	if err := os.WriteFile(path, []byte("search example.org\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions ndots:2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := UpstreamsFromResolvConf(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"192.0.2.53:53", "[2001:db8::53]:53"}; !slices.Equal(got, want) {
		t.Errorf("upstreams = %v, want %v", got, want)
	}
}

func TestListenFailsOnBusyAddress(t *testing.T) {
	s := startServer(t, time.Second)
	if _, err := Listen(Config{Addr: s.Addr(), Services: tracker()}); err == nil || !strings.Contains(err.Error(), s.Addr()) {
		t.Errorf("Listen on a busy address: err = %v, want one naming the address", err)
	}
}

func TestRunStopsEveryGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	s, err := Listen(Config{Addr: "127.0.0.1:0", Services: tracker()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	q := new(dns.Msg)
	q.SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
	for _, network := range []string{"udp", "tcp"} {
		if _, _, err := (&dns.Client{Net: network}).Exchange(q, s.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Run returned, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
