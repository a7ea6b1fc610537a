package iptables

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/proxy/internal/netnstest"
	"github.com/skiff-dev/skiff/proxy/services"
)

// benchServices makes n services of one port with 3 endpoints each.
func benchServices(n int) []services.ServicePort {
	out := make([]services.ServicePort, n)
	for i := range out {
		sp := services.ServicePort{
			Name:      services.ServicePortName{Namespace: "bench", Name: fmt.Sprintf("svc-%d", i), Port: "http"},
			ClusterIP: netip.AddrFrom4([4]byte{10, 96 + byte(i>>16), byte(i >> 8), byte(i)}),
			Port:      80, Protocol: "TCP",
		}
		for e := range 3 {
			j := i*3 + e
			sp.Endpoints = append(sp.Endpoints, services.Endpoint{
				IP: netip.AddrFrom4([4]byte{10, 244 + byte(j>>16), byte(j >> 8), byte(j)}), Port: 8080,
			})
		}
		out[i] = sp
	}
	return out
}

// backends are the iptables flavours installed here, "" being the
// system's default.
func backends(b *testing.B) []string {
	out := []string{""}
	for _, be := range []string{"legacy", "nft"} {
		if _, err := exec.LookPath("iptables-" + be + "-restore"); err == nil {
			out = append(out, be)
		}
	}
	return out
}

func benchProxier(b *testing.B, ns *netnstest.NS, backend string) *Proxier {
	b.Helper()
	var p *Proxier
	if err := ns.Do(func() (err error) {
		p, err = New(Config{Backend: backend, Options: Options{ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16")}})
		return err
	}); err != nil {
		b.Fatal(err)
	}
	return p
}

func backendName(be string) string {
	if be == "" {
		return "system"
	}
	return be
}

// BenchmarkFullSync times one full sync (generation and iptables-restore)
// of 1,000 and 10,000 services with 3 endpoints each into a fresh scratch
// network namespace, per iptables backend. Target: 10,000 services under
// 2 s.
func BenchmarkFullSync(b *testing.B) {
	netnstest.Require(b, "iptables", "iptables-restore")
	for _, be := range backends(b) {
		for _, n := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("backend=%s/services=%d", backendName(be), n), func(b *testing.B) {
				ports := benchServices(n)
				ctx := context.Background()
				var total time.Duration
				for range b.N {
					b.StopTimer()
					ns := netnstest.New(b, "bench")
					p := benchProxier(b, ns, be)
					b.StartTimer()
					start := time.Now()
					if err := ns.Do(func() error { return p.Sync(ctx, ports) }); err != nil {
						b.Fatal(err)
					}
					total += time.Since(start)
				}
				b.ReportMetric(total.Seconds()/float64(b.N), "s/sync")
			})
		}
	}
}

// BenchmarkPartialSync times the sync a running proxy does when one
// service's endpoints change among 1,000 or 10,000 services.
func BenchmarkPartialSync(b *testing.B) {
	netnstest.Require(b, "iptables", "iptables-restore")
	for _, be := range backends(b) {
		for _, n := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("backend=%s/services=%d", backendName(be), n), func(b *testing.B) {
				ns := netnstest.New(b, "bench")
				p := benchProxier(b, ns, be)
				ports := benchServices(n)
				ctx := context.Background()
				if err := ns.Do(func() error { return p.Sync(ctx, ports) }); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				err := ns.Do(func() error {
					for i := range b.N {
						sp := &ports[i%n]
						sp.Endpoints = sp.Endpoints[1:]
						if len(sp.Endpoints) == 0 {
							sp.Endpoints = benchServices(1)[0].Endpoints
						}
						if err := p.Sync(ctx, ports); err != nil {
							return err
						}
					}
					return nil
				})
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/sync")
			})
		}
	}
}
