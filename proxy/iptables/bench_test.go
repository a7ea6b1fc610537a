package iptables

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
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

// backends are the iptables flavours installed here: the system's
// default first, then the other one when its tools exist.
func backends(t testing.TB) []string {
	out, err := exec.Command("iptables", "--version").Output()
	if err != nil {
		t.Fatalf("iptables --version: %v", err)
	}
	system, other := "legacy", "nft"
	if strings.Contains(string(out), "nf_tables") {
		system, other = "nft", "legacy"
	}
	if _, err := exec.LookPath("iptables-" + other + "-restore"); err != nil {
		return []string{system}
	}
	return []string{system, other}
}

// cpu is the CPU this process (rendering the rules, and Go's share of
// running commands) and its waited-for children (iptables-restore and the
// iptables commands that ensure the jumps) have used: on a shared machine
// it measures the sync where wall time measures the neighbours.
type cpu struct{ proxy, iptables time.Duration }

func cpuNow(b *testing.B) cpu {
	var self, children syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &self); err != nil {
		b.Fatal(err)
	}
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children); err != nil {
		b.Fatal(err)
	}
	used := func(ru syscall.Rusage) time.Duration { return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()) }
	return cpu{proxy: used(self), iptables: used(children)}
}

func (c cpu) sub(o cpu) cpu { return cpu{proxy: c.proxy - o.proxy, iptables: c.iptables - o.iptables} }

// report adds used, spread over n syncs, to the benchmark's metrics.
func (c cpu) report(b *testing.B, n int) {
	b.ReportMetric((c.proxy+c.iptables).Seconds()/float64(n), "cpu-s/sync")
	b.ReportMetric(c.proxy.Seconds()/float64(n), "proxy-cpu-s/sync")
	b.ReportMetric(c.iptables.Seconds()/float64(n), "iptables-cpu-s/sync")
}

// BenchmarkRender times rendering a full sync of 10,000 services with 3
// endpoints each, streamed as a full sync does, without iptables: the
// proxy's own share of a sync.
func BenchmarkRender(b *testing.B) {
	ports := benchServices(10000)
	opts := Options{ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16")}
	b.ReportAllocs()
	for range b.N {
		if _, err := Render(io.Discard, ports, State{}, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFullSync times one full sync (generation and iptables-restore)
// of 1,000 and 10,000 services with 3 endpoints each into a fresh scratch
// network namespace, per iptables backend. Target: 10,000 services under
// 2 s.
func BenchmarkFullSync(b *testing.B) {
	netnstest.Require(b, "iptables", "iptables-restore")
	for _, be := range backends(b) {
		for _, n := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("backend=%s/services=%d", be, n), func(b *testing.B) {
				ports := benchServices(n)
				ctx := context.Background()
				var total time.Duration
				var used cpu
				for range b.N {
					b.StopTimer()
					ns := netnstest.New(b, "bench")
					p := newProxierOn(b, ns, be)
					b.StartTimer()
					start, cpuStart := time.Now(), cpuNow(b)
					if err := ns.Do(func() error { return p.Sync(ctx, ports) }); err != nil {
						b.Fatal(err)
					}
					total += time.Since(start)
					d := cpuNow(b).sub(cpuStart)
					used = cpu{proxy: used.proxy + d.proxy, iptables: used.iptables + d.iptables}
				}
				b.ReportMetric(total.Seconds()/float64(b.N), "s/sync")
				used.report(b, b.N)
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
			b.Run(fmt.Sprintf("backend=%s/services=%d", be, n), func(b *testing.B) {
				ns := netnstest.New(b, "bench")
				p := newProxierOn(b, ns, be)
				ports := benchServices(n)
				ctx := context.Background()
				if err := ns.Do(func() error { return p.Sync(ctx, ports) }); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				cpuStart := cpuNow(b)
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
				cpuNow(b).sub(cpuStart).report(b, b.N)
			})
		}
	}
}

// BenchmarkRestartSync times the full sync of a restarted proxy: a new
// proxier rewriting every chain of 10,000 services that the tables already
// hold (as also happens once an hour).
func BenchmarkRestartSync(b *testing.B) {
	netnstest.Require(b, "iptables", "iptables-restore")
	for _, be := range backends(b) {
		b.Run(fmt.Sprintf("backend=%s/services=10000", be), func(b *testing.B) {
			ns := netnstest.New(b, "bench")
			ports := benchServices(10000)
			ctx := context.Background()
			sync := func(p *Proxier) {
				if err := ns.Do(func() error { return p.Sync(ctx, ports) }); err != nil {
					b.Fatal(err)
				}
			}
			sync(newProxierOn(b, ns, be))
			b.ResetTimer() // the populating sync is not the one measured
			var used cpu
			for range b.N {
				b.StopTimer()
				p := newProxierOn(b, ns, be)
				b.StartTimer()
				cpuStart := cpuNow(b)
				sync(p)
				d := cpuNow(b).sub(cpuStart)
				used = cpu{proxy: used.proxy + d.proxy, iptables: used.iptables + d.iptables}
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/sync")
			used.report(b, b.N)
		})
	}
}
