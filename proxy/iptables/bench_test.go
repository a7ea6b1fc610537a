package iptables

import (
	"context"
	"fmt"
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

// cpuTime is the CPU this process and its waited-for children (iptables-
// restore) have used: on a shared machine it measures the sync where wall
// time measures the neighbours.
func cpuTime(b *testing.B) time.Duration {
	var self, children syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &self); err != nil {
		b.Fatal(err)
	}
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children); err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for _, ru := range []syscall.Rusage{self, children} {
		total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return total
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
				var total, cpu time.Duration
				for range b.N {
					b.StopTimer()
					ns := netnstest.New(b, "bench")
					p := newProxierOn(b, ns, be)
					b.StartTimer()
					start, cpuStart := time.Now(), cpuTime(b)
					if err := ns.Do(func() error { return p.Sync(ctx, ports) }); err != nil {
						b.Fatal(err)
					}
					total += time.Since(start)
					cpu += cpuTime(b) - cpuStart
				}
				b.ReportMetric(total.Seconds()/float64(b.N), "s/sync")
				b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/sync")
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
				cpuStart := cpuTime(b)
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
				b.ReportMetric((cpuTime(b)-cpuStart).Seconds()/float64(b.N), "cpu-s/sync")
			})
		}
	}
}
