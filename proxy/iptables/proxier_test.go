package iptables

import (
	"context"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/proxy/internal/netnstest"
	"github.com/skiff-dev/skiff/proxy/services"
)

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// save returns iptables-save of one table without comments and counters.
func save(t *testing.T, ns *netnstest.NS, table string) string {
	t.Helper()
	return saveWith(t, ns, "iptables-save", table)
}

// saveWith is save with one backend's iptables-save.
func saveWith(t *testing.T, ns *netnstest.NS, command, table string) string {
	t.Helper()
	out := ns.MustExec(t, command, "-t", table)
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		lines = append(lines, counters.ReplaceAllString(l, "[0:0]"))
	}
	return strings.Join(lines, "\n")
}

func newProxier(t testing.TB, ns *netnstest.NS) *Proxier {
	t.Helper()
	return newProxierOn(t, ns, "")
}

// newProxierOn makes a proxier for one iptables backend ("" for the
// system's).
func newProxierOn(t testing.TB, ns *netnstest.NS, backend string) *Proxier {
	t.Helper()
	var p *Proxier
	if err := ns.Do(func() (err error) {
		p, err = New(Config{Backend: backend, Options: Options{ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16")}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSyncWritesRulesAndCleanupRestoresTables(t *testing.T) {
	netnstest.Require(t, "iptables", "iptables-save", "iptables-restore")
	ns := netnstest.New(t, "ipt")
	// Rules of another tool, which the proxy must leave exactly as they are.
	for _, cmd := range [][]string{
		{"iptables", "-t", "nat", "-N", "OTHER"},
		{"iptables", "-t", "nat", "-A", "OTHER", "-p", "tcp", "-j", "DNAT", "--to-destination", "192.0.2.1:80"},
		{"iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "9999", "-j", "OTHER"},
		{"iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "192.0.2.0/24", "-j", "MASQUERADE"},
		{"iptables", "-t", "filter", "-A", "FORWARD", "-s", "192.0.2.0/24", "-j", "DROP"},
	} {
		ns.MustExec(t, cmd...)
	}
	natBefore, filterBefore := save(t, ns, "nat"), save(t, ns, "filter")

	web := servicePort("default", "web", "http", "10.96.0.20", 80, "TCP", 30080, "10.244.1.2:8080", "10.244.1.3:8080")
	gone := servicePort("default", "gone", "", "10.96.0.21", 80, "TCP", 0, "10.244.1.4:80")
	empty := servicePort("default", "empty", "", "10.96.0.22", 80, "TCP", 0)
	p := newProxier(t, ns)
	ctx := context.Background()

	sync := func(ports ...services.ServicePort) {
		t.Helper()
		if err := ns.Do(func() error { return p.Sync(ctx, ports) }); err != nil {
			t.Fatal(err)
		}
	}
	sync(web, gone, empty)
	nat := save(t, ns, "nat")
	for _, want := range []string{
		"-A PREROUTING -m comment --comment \"skiff service portals\" -j SKIFF-SERVICES",
		"-A OUTPUT -m comment --comment \"skiff service portals\" -j SKIFF-SERVICES",
		"-A POSTROUTING -m comment --comment \"skiff postrouting rules\" -j SKIFF-POSTROUTING",
		"-A " + ServiceChain(&gone),
		"-A " + EndpointChain(&web, web.Endpoints[1]) + " -p tcp -m comment --comment \"default/web:http\" -j DNAT --to-destination 10.244.1.3:8080",
		"-A SKIFF-NODEPORTS -p tcp -m comment --comment \"default/web:http\" -m tcp --dport 30080 -j " + ServiceChain(&web),
		"-A OTHER -p tcp -j DNAT --to-destination 192.0.2.1:80",
	} {
		if !strings.Contains(nat, want) {
			t.Errorf("nat table lacks %q:\n%s", want, nat)
		}
	}
	if filter := save(t, ns, "filter"); !strings.Contains(filter, `-A SKIFF-SERVICES -d 10.96.0.22/32 -p tcp -m comment --comment "default/empty has no endpoints" -m tcp --dport 80 -j REJECT`) {
		t.Errorf("filter table lacks the reject rule for a service without endpoints:\n%s", filter)
	}

	// A second sync drops the deleted service's chains in the same pass.
	sync(web)
	nat = save(t, ns, "nat")
	for _, stale := range []string{ServiceChain(&gone), EndpointChain(&gone, gone.Endpoints[0])} {
		if strings.Contains(nat, stale) {
			t.Errorf("stale chain %s survived the sync:\n%s", stale, nat)
		}
	}
	if strings.Contains(save(t, ns, "filter"), "default/empty") {
		t.Error("reject rule of a deleted service survived the sync")
	}

	// A fresh proxier (a restarted proxy) finds and removes what is stale.
	p = newProxier(t, ns)
	sync(gone)
	if nat = save(t, ns, "nat"); strings.Contains(nat, ServiceChain(&web)) || !strings.Contains(nat, ServiceChain(&gone)) {
		t.Errorf("after restart, want only default/gone's chains:\n%s", nat)
	}

	if err := ns.Do(func() error { return p.Cleanup(ctx) }); err != nil {
		t.Fatal(err)
	}
	if got := save(t, ns, "nat"); got != natBefore {
		t.Errorf("nat table after cleanup:\n%s\nwant as before:\n%s", got, natBefore)
	}
	if got := save(t, ns, "filter"); got != filterBefore {
		t.Errorf("filter table after cleanup:\n%s\nwant as before:\n%s", got, filterBefore)
	}
	// Cleanup of a clean node is a no-op, not an error.
	if err := ns.Do(func() error { return p.Cleanup(ctx) }); err != nil {
		t.Errorf("second cleanup: %v", err)
	}
}

func TestSyncRestoresDeletedJumps(t *testing.T) {
	netnstest.Require(t, "iptables", "iptables-save", "iptables-restore")
	ns := netnstest.New(t, "ipt")
	p := newProxier(t, ns)
	web := servicePort("default", "web", "", "10.96.0.20", 80, "TCP", 0, "10.244.1.2:8080")
	if err := ns.Do(func() error { return p.Sync(context.Background(), []services.ServicePort{web}) }); err != nil {
		t.Fatal(err)
	}
	ns.MustExec(t, "iptables", "-t", "nat", "-F", "PREROUTING")
	if err := ns.Do(p.CheckBase); err != nil {
		t.Fatal(err)
	}
	if nat := save(t, ns, "nat"); strings.Count(nat, "-j SKIFF-SERVICES") != 2 {
		t.Errorf("want the PREROUTING and OUTPUT jumps back:\n%s", nat)
	}
	t.Cleanup(func() { _ = ns.Do(func() error { return p.Cleanup(context.Background()) }) })
}

// TestLargeSyncsAndCleanupOnEveryBackend syncs enough services for
// iptables-nft's transactions to start with a listing of the table (the
// first sync, and the full sync of a restarted proxy into the populated
// table), then a partial sync, then cleans up, on each installed backend.
func TestLargeSyncsAndCleanupOnEveryBackend(t *testing.T) {
	netnstest.Require(t, "iptables", "iptables-save", "iptables-restore")
	for _, backend := range backends(t) {
		t.Run(backend, func(t *testing.T) {
			ns := netnstest.New(t, "ipt")
			saveCmd := "iptables-" + backend + "-save"
			natBefore, filterBefore := saveWith(t, ns, saveCmd, "nat"), saveWith(t, ns, saveCmd, "filter")
			ports := benchServices(300)
			ctx := context.Background()
			p := newProxierOn(t, ns, backend)
			sync := func(wantSVC, wantSEP int) {
				t.Helper()
				if err := ns.Do(func() error { return p.Sync(ctx, ports) }); err != nil {
					t.Fatal(err)
				}
				nat := saveWith(t, ns, saveCmd, "nat")
				if svc, sep := strings.Count(nat, "\n:"+svcChainPrefix), strings.Count(nat, "\n:"+sepChainPrefix); svc != wantSVC || sep != wantSEP {
					t.Fatalf("nat holds %d service and %d endpoint chains, want %d and %d", svc, sep, wantSVC, wantSEP)
				}
			}
			sync(300, 900)

			gone := EndpointChain(&ports[5], ports[5].Endpoints[0])
			ports[5].Endpoints = ports[5].Endpoints[1:]
			sync(300, 899)
			if nat := saveWith(t, ns, saveCmd, "nat"); strings.Contains(nat, gone) {
				t.Errorf("removed endpoint's chain %s survived the partial sync", gone)
			}

			// A restarted proxy rewrites everything, and finds the chains of
			// a service removed while it was down only by listing the
			// tables (stopping iptables -S at the first rule).
			p = newProxierOn(t, ns, backend)
			ports = ports[:299]
			sync(299, 896)
			if err := ns.Do(p.CheckBase); err != nil {
				t.Fatal(err)
			}
			if nat := saveWith(t, ns, saveCmd, "nat"); strings.Count(nat, "-j "+chainServices+"\n") != 2 || strings.Count(nat, "-j "+chainPostrouting+"\n") != 1 {
				t.Errorf("want one jump from each of PREROUTING and OUTPUT and one into %s, no duplicates:\n%s", chainPostrouting, nat)
			}

			if err := ns.Do(func() error { return p.Cleanup(ctx) }); err != nil {
				t.Fatal(err)
			}
			if got := saveWith(t, ns, saveCmd, "nat"); got != natBefore {
				t.Errorf("nat table after cleanup:\n%s\nwant as before:\n%s", got, natBefore)
			}
			if got := saveWith(t, ns, saveCmd, "filter"); got != filterBefore {
				t.Errorf("filter table after cleanup:\n%s\nwant as before:\n%s", got, filterBefore)
			}
		})
	}
}

// A sync that iptables-restore refuses changes nothing, says which line
// it refused, and makes the next sync a full one; both the streamed full
// rewrite and a partial sync held in memory.
func TestRefusedSyncChangesNothingAndQuotesTheLine(t *testing.T) {
	netnstest.Require(t, "iptables", "iptables-save", "iptables-restore")
	web := servicePort("default", "web", "http", "10.96.0.20", 80, "TCP", 0, "10.244.1.2:8080")
	bad := servicePort("default", "bad", "", "10.96.0.21", 80, "NOSUCHPROTO", 0, "10.244.1.4:80")
	tests := []struct {
		name  string
		first []services.ServicePort // synced before the refused one; nil for none
	}{
		{name: "streamed full rewrite"},
		{name: "partial sync", first: []services.ServicePort{web}},
	}
	for _, be := range backends(t) {
		for _, tt := range tests {
			t.Run(be+"/"+tt.name, func(t *testing.T) {
				ns := netnstest.New(t, "iptbad")
				p := newProxierOn(t, ns, be)
				ctx := context.Background()
				if tt.first != nil {
					if err := ns.Do(func() error { return p.Sync(ctx, tt.first) }); err != nil {
						t.Fatal(err)
					}
				}
				// The base chains and jumps are ensured before the
				// transaction; the service rules are what it writes.
				serviceRules := func() string {
					var out []string
					for _, l := range strings.Split(saveWith(t, ns, "iptables-"+be+"-save", "nat"), "\n") {
						if strings.Contains(l, svcChainPrefix) || strings.Contains(l, sepChainPrefix) || strings.HasPrefix(l, "-A "+chainServices) {
							out = append(out, l)
						}
					}
					return strings.Join(out, "\n")
				}
				before := serviceRules()
				err := ns.Do(func() error { return p.Sync(ctx, append(tt.first, bad)) })
				if err == nil {
					t.Fatal("iptables-restore accepted protocol nosuchproto")
				}
				if !strings.Contains(err.Error(), "(line ") || !strings.Contains(err.Error(), "nosuchproto") {
					t.Errorf("error does not quote the refused line: %v", err)
				}
				if after := serviceRules(); after != before {
					t.Errorf("a refused sync changed the nat table:\n--- before\n%s\n--- after\n%s", before, after)
				}
				if p.state.Chains != nil {
					t.Error("after a refused sync the next one is not a full rewrite")
				}
			})
		}
	}
}

// The hourly full sync rewrites every chain, repairing one that something
// else flushed, without reading the tables first.
func TestHourlyFullSyncRepairsChains(t *testing.T) {
	netnstest.Require(t, "iptables", "iptables-save", "iptables-restore")
	ns := netnstest.New(t, "ipthour")
	web := servicePort("default", "web", "http", "10.96.0.20", 80, "TCP", 0, "10.244.1.2:8080", "10.244.1.3:8080")
	p := newProxier(t, ns)
	ctx := context.Background()
	sync := func() {
		t.Helper()
		if err := ns.Do(func() error { return p.Sync(ctx, []services.ServicePort{web}) }); err != nil {
			t.Fatal(err)
		}
	}
	sync()
	want := save(t, ns, "nat")
	sep := EndpointChain(&web, web.Endpoints[0])
	ns.MustExec(t, "iptables", "-t", "nat", "-F", sep)

	sync() // nothing changed as far as the proxier knows: nothing written
	if got := save(t, ns, "nat"); got == want {
		t.Fatalf("flushing %s changed nothing; the test cannot tell a repair", sep)
	}
	p.lastFull = time.Now().Add(-2 * fullSyncPeriod)
	// Reading the tables would take iptables: without it the rewrite must
	// come from what the proxier knows.
	p.path = "/nonexistent/iptables"
	sync()
	if got := save(t, ns, "nat"); got != want {
		t.Errorf("the hourly sync did not repair %s:\n--- got\n%s\n--- want\n%s", sep, got, want)
	}
}
