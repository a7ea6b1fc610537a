// Package dns is Skiff's cluster DNS, served by the proxy on every node:
// SVC.NS.svc.<cluster domain> answers with the Service's ClusterIP (a
// headless Service's ready endpoint addresses), _port._proto.SVC.NS.svc...
// with SRV records for named ports, ClusterIPs have PTR records, unknown
// names inside the cluster domain are NXDOMAIN, and every other question is
// forwarded to the upstream resolvers.
//
// It must never cache upstream answers or invent records: it reads the
// services tracker at the moment of each question.
package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/skiff-dev/skiff/proxy/services"
)

// Defaults.
const (
	DefaultTTL            = 5
	DefaultForwardTimeout = 2 * time.Second
)

// Services is what the server reads: the services tracker.
type Services interface {
	Service(namespace, name string) (services.Service, bool)
	ServiceByClusterIP(ip netip.Addr) (namespace, name string, ok bool)
}

// Config configures a Server.
type Config struct {
	// Addr is host:port to serve on, UDP and TCP.
	Addr string
	// ClusterDomain is the cluster's DNS suffix, "cluster.local".
	ClusterDomain string
	// Upstreams are host:port resolvers for names outside the cluster
	// domain, tried in order.
	Upstreams []string
	// ForwardTimeout bounds each upstream exchange.
	ForwardTimeout time.Duration
	// TTL of cluster records, in seconds.
	TTL      uint32
	Services Services
	Logger   *slog.Logger
}

// Server answers cluster DNS.
type Server struct {
	cfg    Config
	domain string // "cluster.local.", lower case
	log    *slog.Logger
	udp    net.PacketConn
	tcp    net.Listener
}

// Listen opens the UDP and TCP sockets on cfg.Addr (so a caller learns
// of a busy port at once, and of the real port for ":0").
func Listen(cfg Config) (*Server, error) {
	if cfg.Services == nil {
		return nil, errors.New("dns: no services source")
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = "cluster.local"
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.ForwardTimeout == 0 {
		cfg.ForwardTimeout = DefaultForwardTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	udp, err := net.ListenPacket("udp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dns: listen udp %s: %w", cfg.Addr, err)
	}
	// The TCP socket takes the port UDP got, so ":0" serves both on one.
	tcp, err := net.Listen("tcp", udp.LocalAddr().String())
	if err != nil {
		udp.Close()
		return nil, fmt.Errorf("dns: listen tcp %s: %w", cfg.Addr, err)
	}
	s := &Server{cfg: cfg, domain: dns.CanonicalName(cfg.ClusterDomain), log: cfg.Logger, udp: udp, tcp: tcp}
	// Never forward to ourselves: a resolv.conf naming the cluster DNS
	// would loop every unknown name.
	var ups []string
	for _, u := range cfg.Upstreams {
		if u != udp.LocalAddr().String() {
			ups = append(ups, u)
		}
	}
	s.cfg.Upstreams = ups
	return s, nil
}

// Addr is the address served, with the real port.
func (s *Server) Addr() string { return s.udp.LocalAddr().String() }

// Run serves until ctx ends, then closes the sockets.
func (s *Server) Run(ctx context.Context) error {
	servers := []*dns.Server{
		{PacketConn: s.udp, Handler: s},
		{Listener: s.tcp, Handler: s},
	}
	errc := make(chan error, len(servers))
	var wg, started sync.WaitGroup
	for _, srv := range servers {
		wg.Add(1)
		started.Add(1)
		srv.NotifyStartedFunc = started.Done
		go func() {
			defer wg.Done()
			errc <- srv.ActivateAndServe()
		}()
	}
	// Shutdown of a server that has not started yet is refused, and it
	// would then serve forever: wait until both run.
	startedc := make(chan struct{})
	go func() { started.Wait(); close(startedc) }()
	var err error
	select {
	case <-startedc:
		s.log.Info("serving cluster DNS", "addr", s.Addr(), "domain", s.domain, "upstreams", s.cfg.Upstreams)
		select {
		case <-ctx.Done():
		case err = <-errc:
		}
	case err = <-errc:
	}
	if err != nil {
		err = fmt.Errorf("dns: serve: %w", err)
	}
	for _, srv := range servers {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_ = srv.ShutdownContext(sctx)
		cancel()
	}
	// Closing the sockets ends a server that failed to start or to stop.
	s.udp.Close()
	s.tcp.Close()
	wg.Wait()
	return err
}

// ServeDNS answers one query.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) == 0 {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := dns.CanonicalName(q.Name)
	var m *dns.Msg
	switch {
	case q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY:
		m = s.forward(w, r)
	case dns.IsSubDomain(s.domain, name):
		m = s.answerCluster(r, q, name)
	case q.Qtype == dns.TypePTR && s.reverse(name) != "":
		m = s.reply(r, []dns.RR{&dns.PTR{Hdr: s.hdr(q.Name, dns.TypePTR), Ptr: s.reverse(name)}})
	default:
		m = s.forward(w, r)
	}
	if _, ok := w.RemoteAddr().(*net.UDPAddr); ok {
		m.Truncate(udpSize(r))
	}
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("write DNS answer", "err", err)
	}
}

func udpSize(r *dns.Msg) int {
	if o := r.IsEdns0(); o != nil {
		return int(o.UDPSize())
	}
	return dns.MinMsgSize
}

func (s *Server) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: s.cfg.TTL}
}

func (s *Server) reply(r *dns.Msg, answer []dns.RR) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.RecursionAvailable = true
	m.Answer = answer
	return m
}

func (s *Server) nxdomain(r *dns.Msg) *dns.Msg {
	m := s.reply(r, nil)
	m.Rcode = dns.RcodeNameError
	m.Ns = []dns.RR{s.soa()}
	return m
}

// nodata is NOERROR without answers: the name exists, the type does not.
func (s *Server) nodata(r *dns.Msg) *dns.Msg {
	m := s.reply(r, nil)
	m.Ns = []dns.RR{s.soa()}
	return m
}

func (s *Server) soa() dns.RR {
	return &dns.SOA{
		Hdr: s.hdr(s.domain, dns.TypeSOA), Ns: "ns.dns." + s.domain, Mbox: "hostmaster." + s.domain,
		Serial: 1, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: s.cfg.TTL,
	}
}

// answerCluster answers a name inside the cluster domain.
func (s *Server) answerCluster(r *dns.Msg, q dns.Question, name string) *dns.Msg {
	labels := dns.SplitDomainName(strings.TrimSuffix(strings.TrimSuffix(name, s.domain), "."))
	n := len(labels)
	// The zone's own structure: cluster.local, svc.cluster.local,
	// NS.svc.cluster.local exist but hold nothing.
	if n == 0 || (labels[n-1] == "svc" && n <= 2) {
		if n == 0 && q.Qtype == dns.TypeSOA {
			return s.reply(r, []dns.RR{s.soa()})
		}
		return s.nodata(r)
	}
	if labels[n-1] != "svc" {
		return s.nxdomain(r)
	}
	ns, svcName := labels[n-2], labels[n-3]
	svc, ok := s.cfg.Services.Service(ns, svcName)
	if !ok {
		return s.nxdomain(r)
	}
	switch n {
	case 3: // SVC.NS.svc
		return s.serviceRecords(r, q, svc)
	case 4: // HOSTNAME.SVC.NS.svc: one endpoint of a headless service
		for _, ep := range svc.Endpoints {
			if svc.Headless && endpointName(ep) == labels[0] {
				if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
					return s.reply(r, []dns.RR{&dns.A{Hdr: s.hdr(q.Name, dns.TypeA), A: ep.IP.AsSlice()}})
				}
				return s.nodata(r)
			}
		}
	case 5: // _PORT._PROTO.SVC.NS.svc
		if q.Qtype != dns.TypeSRV && q.Qtype != dns.TypeANY {
			if s.hasPort(svc, labels[0], labels[1]) {
				return s.nodata(r)
			}
			return s.nxdomain(r)
		}
		if m := s.srv(r, q, svc, labels[0], labels[1]); m != nil {
			return m
		}
	}
	return s.nxdomain(r)
}

// endpointName is an endpoint's DNS label: its hostname, else its address
// with dashes (10-244-1-2), as Kubernetes names them.
func endpointName(ep services.Endpoint) string {
	if ep.Hostname != "" {
		return strings.ToLower(ep.Hostname)
	}
	return strings.ReplaceAll(ep.IP.String(), ".", "-")
}

func (s *Server) serviceRecords(r *dns.Msg, q dns.Question, svc services.Service) *dns.Msg {
	switch q.Qtype {
	case dns.TypeA, dns.TypeANY:
	case dns.TypeSRV:
		var answer, extra []dns.RR
		for _, p := range svc.Ports {
			if p.GetName() == "" {
				continue
			}
			m := s.srv(r, dns.Question{Name: "_" + p.GetName() + "._" + strings.ToLower(protocol(p.GetProtocol())) + "." + q.Name, Qtype: dns.TypeSRV}, svc, "_"+p.GetName(), "_"+strings.ToLower(protocol(p.GetProtocol())))
			if m != nil {
				answer = append(answer, m.Answer...)
				extra = append(extra, m.Extra...)
			}
		}
		m := s.reply(r, answer)
		m.Extra = extra
		return m
	default:
		return s.nodata(r)
	}
	if !svc.Headless {
		if !svc.ClusterIP.IsValid() || !svc.ClusterIP.Is4() {
			return s.nodata(r)
		}
		return s.reply(r, []dns.RR{&dns.A{Hdr: s.hdr(q.Name, dns.TypeA), A: svc.ClusterIP.AsSlice()}})
	}
	var answer []dns.RR
	for _, ep := range svc.Endpoints {
		if ep.IP.Is4() {
			answer = append(answer, &dns.A{Hdr: s.hdr(q.Name, dns.TypeA), A: ep.IP.AsSlice()})
		}
	}
	return s.reply(r, answer)
}

func protocol(p string) string {
	if p == "" {
		return "TCP"
	}
	return p
}

func (s *Server) hasPort(svc services.Service, port, proto string) bool {
	for _, p := range svc.Ports {
		if "_"+strings.ToLower(p.GetName()) == port && "_"+strings.ToLower(protocol(p.GetProtocol())) == proto {
			return true
		}
	}
	return false
}

// srv answers _port._proto.SVC.NS.svc: the service name and port, or for
// a headless service each endpoint's name, with its A record as extra.
func (s *Server) srv(r *dns.Msg, q dns.Question, svc services.Service, port, proto string) *dns.Msg {
	for _, p := range svc.Ports {
		if p.GetName() == "" || "_"+strings.ToLower(p.GetName()) != port || "_"+strings.ToLower(protocol(p.GetProtocol())) != proto {
			continue
		}
		svcName := svc.Name + "." + svc.Namespace + ".svc." + s.domain
		if !svc.Headless {
			return s.reply(r, []dns.RR{&dns.SRV{Hdr: s.hdr(q.Name, dns.TypeSRV), Priority: 0, Weight: 100, Port: uint16(p.GetPort()), Target: svcName}})
		}
		var answer, extra []dns.RR
		weight := uint16(100)
		if len(svc.Endpoints) > 0 {
			weight = uint16(100 / len(svc.Endpoints))
		}
		for _, ep := range svc.Endpoints {
			target := endpointName(ep) + "." + svcName
			answer = append(answer, &dns.SRV{Hdr: s.hdr(q.Name, dns.TypeSRV), Weight: weight, Port: uint16(p.GetPort()), Target: target})
			if ep.IP.Is4() {
				extra = append(extra, &dns.A{Hdr: s.hdr(target, dns.TypeA), A: ep.IP.AsSlice()})
			}
		}
		m := s.reply(r, answer)
		m.Extra = extra
		return m
	}
	return nil
}

// reverse is the service name of a ClusterIP's PTR name, "" when the
// address is no ClusterIP.
func (s *Server) reverse(name string) string {
	const suffix = ".in-addr.arpa."
	if !strings.HasSuffix(name, suffix) {
		return ""
	}
	parts := strings.Split(strings.TrimSuffix(name, suffix), ".")
	if len(parts) != 4 {
		return ""
	}
	var b [4]byte
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 10, 8)
		if err != nil {
			return ""
		}
		b[3-i] = byte(v)
	}
	ns, svc, ok := s.cfg.Services.ServiceByClusterIP(netip.AddrFrom4(b))
	if !ok {
		return ""
	}
	return svc + "." + ns + ".svc." + s.domain
}

// forward asks the upstreams, over the transport the question came on.
func (s *Server) forward(w dns.ResponseWriter, r *dns.Msg) *dns.Msg {
	network := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		network = "tcp"
	}
	c := &dns.Client{Net: network, Timeout: s.cfg.ForwardTimeout}
	for _, up := range s.cfg.Upstreams {
		resp, _, err := c.Exchange(r, up)
		if err != nil {
			s.log.Debug("forward DNS question", "upstream", up, "name", r.Question[0].Name, "err", err)
			continue
		}
		resp.Id = r.Id
		return resp
	}
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeServerFailure)
	m.RecursionAvailable = true
	return m
}

// UpstreamsFromResolvConf lists the nameservers of a resolv.conf as
// host:port.
func UpstreamsFromResolvConf(path string) ([]string, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var out []string
	for _, s := range cc.Servers {
		out = append(out, net.JoinHostPort(s, cc.Port))
	}
	return out, nil
}
