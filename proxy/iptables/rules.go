package iptables

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"hash/fnv"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/skiff-dev/skiff/proxy/services"
)

// Chain names. Everything Skiff writes lives in chains with the SKIFF-
// prefix, so --cleanup can find and remove all of it.
const (
	chainPrefix      = "SKIFF-"
	svcChainPrefix   = "SKIFF-SVC-"
	sepChainPrefix   = "SKIFF-SEP-"
	chainServices    = "SKIFF-SERVICES"
	chainNodePorts   = "SKIFF-NODEPORTS"
	chainPostrouting = "SKIFF-POSTROUTING"
	chainMarkMasq    = "SKIFF-MARK-MASQ"
	chainForward     = "SKIFF-FORWARD"
	chainFirewall    = "SKIFF-FIREWALL"

	tableNAT    = "nat"
	tableFilter = "filter"

	// largeClusterEndpoints is kube-proxy's threshold above which the
	// per-endpoint rules go without comments: they are most of the rules,
	// and iptables-restore's time grows with every byte it parses.
	largeClusterEndpoints = 1000

	// masqMark is the packet mark bit asking SKIFF-POSTROUTING to
	// masquerade, the same bit kube-proxy uses for the same meaning.
	masqMark = "0x4000"
)

// jump is a rule in a built-in chain that sends traffic into a Skiff chain.
type jump struct {
	table, chain, target string
	extra                []string
}

func (j jump) rulespec() []string {
	return append(slices.Clone(j.extra), "-m", "comment", "--comment", j.comment(), "-j", j.target)
}

func (j jump) comment() string {
	switch j.target {
	case chainPostrouting:
		return "skiff postrouting rules"
	case chainForward:
		return "skiff forwarding rules"
	case chainFirewall:
		return "skiff firewall rules"
	}
	return "skiff service portals"
}

var newConn = []string{"-m", "conntrack", "--ctstate", "NEW"}

// jumps are the rules Skiff keeps in the built-in chains, in the order they
// are ensured.
func jumps() []jump {
	return []jump{
		{table: tableNAT, chain: "PREROUTING", target: chainServices},
		{table: tableNAT, chain: "OUTPUT", target: chainServices},
		{table: tableNAT, chain: "POSTROUTING", target: chainPostrouting},
		{table: tableFilter, chain: "INPUT", target: chainServices, extra: newConn},
		{table: tableFilter, chain: "FORWARD", target: chainServices, extra: newConn},
		{table: tableFilter, chain: "OUTPUT", target: chainServices, extra: newConn},
		{table: tableFilter, chain: "FORWARD", target: chainForward},
		{table: tableFilter, chain: "INPUT", target: chainFirewall},
		{table: tableFilter, chain: "OUTPUT", target: chainFirewall},
	}
}

// baseChains are the fixed chains of each table, which the jumps need.
var baseChains = map[string][]string{
	tableNAT:    {chainServices, chainNodePorts, chainPostrouting, chainMarkMasq},
	tableFilter: {chainServices, chainForward, chainFirewall},
}

// Options shape the generated rules.
type Options struct {
	// ClusterCIDR is the pod network; traffic to a ClusterIP from outside it
	// is masqueraded so replies come back through this node.
	ClusterCIDR netip.Prefix
	// MasqueradeAll masquerades all traffic to ClusterIPs.
	MasqueradeAll bool
	// RandomFully adds --random-fully to MASQUERADE when iptables has it.
	RandomFully bool
	// MaxChainsPerTransaction, when positive, splits the new per-service
	// chains into nat transactions of at most this many chains (whole
	// services, never split), all before the transaction that rewrites
	// SKIFF-SERVICES and deletes stale chains. iptables-nft's cost grows
	// roughly with the cube of the chains in one transaction, so 10,000
	// services in one transaction take minutes and in transactions of 1,000
	// chains seconds. Every intermediate state is consistent: new chains
	// are unreferenced until the last transaction, and a rewritten service
	// chain arrives together with its endpoint chains. Zero keeps one
	// transaction (iptables-legacy replaces the whole table per commit).
	MaxChainsPerTransaction int
}

// Payload is one sync, ready for iptables-restore --noflush.
type Payload struct {
	Data []byte
	// Rules counts the rules each table holds once the payload is applied,
	// including unchanged chains it did not rewrite.
	Rules map[string]int
	// State is what the tables hold once the payload is applied: the
	// previous state for the next sync.
	State State
}

// State is what a sync left in the tables. The next sync rewrites only the
// per-service chains whose rules changed: iptables-nft's cost grows much
// faster than linearly with the chains in one transaction, so a sync that
// touches a handful of services must not rewrite ten thousand chains.
type State struct {
	// Chains are the chains each table holds.
	Chains map[string]map[string]bool
	// Written maps each service chain to a fingerprint of the service and
	// endpoint chains last written for it.
	Written map[string]Written
	// Fixed maps each table to a fingerprint of its fixed chains
	// (SKIFF-SERVICES and friends) as last written. Nil forces a full
	// rewrite of everything. An unchanged SKIFF-SERVICES is not rewritten:
	// with 10,000 services that alone costs iptables-nft seconds, and most
	// changes (endpoints coming and going) leave it as it is.
	Fixed map[string]uint64
}

// Written is the fingerprint and size of one service port's chains.
type Written struct {
	Sum   uint64
	Rules int
}

// ChainSet turns chain names (as iptables lists them) into a set.
func ChainSet(names []string) map[string]bool {
	out := make(map[string]bool, len(names))
	for _, n := range names {
		out[n] = true
	}
	return out
}

// hashName is kube-proxy's portProtoHash: sha256 of the parts, base32, the
// first 16 characters, so chain names are stable across restarts and fit
// iptables' 28-character limit.
func hashName(prefix string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
	}
	enc := base32.StdEncoding.EncodeToString(h.Sum(nil))
	return prefix + enc[:16]
}

// ServiceChain names the chain of one service port.
func ServiceChain(sp *services.ServicePort) string {
	return hashName(svcChainPrefix, sp.Name.String(), sp.Protocol)
}

// EndpointChain names the chain of one endpoint of one service port.
func EndpointChain(sp *services.ServicePort, ep services.Endpoint) string {
	return hashName(sepChainPrefix, sp.Name.String(), sp.Protocol, ep.String())
}

// writer builds one table's part of the payload: chain declarations first,
// then rules, then deletions, as iptables-restore wants them.
type writer struct {
	chains   bytes.Buffer
	rules    bytes.Buffer
	declared map[string]bool
	count    int
}

func newWriter() *writer { return &writer{declared: map[string]bool{}} }

func (w *writer) reset() {
	w.chains.Reset()
	w.rules.Reset()
	clear(w.declared)
	w.count = 0
}

func (w *writer) chain(name string) {
	if w.declared[name] {
		return
	}
	w.declared[name] = true
	w.chains.WriteString(":")
	w.chains.WriteString(name)
	w.chains.WriteString(" - [0:0]\n")
}

// rule appends "-A chain args...", quoting arguments with spaces.
func (w *writer) rule(chain string, args ...string) {
	w.count++
	w.rules.WriteString("-A ")
	w.rules.WriteString(chain)
	for _, a := range args {
		w.rules.WriteByte(' ')
		if strings.ContainsAny(a, " \t\"") {
			w.rules.WriteString(strconv.Quote(a))
		} else {
			w.rules.WriteString(a)
		}
	}
	w.rules.WriteByte('\n')
}

// merge appends another writer's chains and rules.
func (w *writer) merge(o *writer) {
	w.chains.Write(o.chains.Bytes())
	w.rules.Write(o.rules.Bytes())
	for c := range o.declared {
		w.declared[c] = true
	}
	w.count += o.count
}

// sum fingerprints what the writer holds.
func (w *writer) sum() uint64 {
	h := fnv.New64a()
	h.Write(w.chains.Bytes())
	h.Write(w.rules.Bytes())
	return h.Sum64()
}

// writeTable writes one transaction of a table from several writers,
// deleting the stale chains last; it writes nothing when there is nothing
// to do.
func writeTable(out *bytes.Buffer, table string, stale []string, ws ...*writer) {
	empty := len(stale) == 0
	for _, w := range ws {
		empty = empty && w.chains.Len() == 0 && w.rules.Len() == 0
	}
	if empty {
		return
	}
	out.WriteString("*" + table + "\n")
	for _, w := range ws {
		out.Write(w.chains.Bytes())
	}
	for _, c := range stale {
		out.WriteString(":" + c + " - [0:0]\n") // declaring flushes it, so it can be deleted
	}
	for _, w := range ws {
		out.Write(w.rules.Bytes())
	}
	for _, c := range stale {
		out.WriteString("-X " + c + "\n")
	}
	out.WriteString("COMMIT\n")
}

// Generate writes the rules for every service port into one
// iptables-restore payload. prev is what the tables hold now: service
// chains whose rules match prev.Written are left alone, and Skiff's
// per-service chains that the new rules no longer use are deleted in the
// same transaction. The fixed chains (SKIFF-SERVICES and friends) are
// always rewritten whole.
func Generate(ports []services.ServicePort, prev State, opts Options) *Payload {
	nat, filter := newWriter(), newWriter()
	for _, c := range baseChains[tableNAT] {
		nat.chain(c)
	}
	for _, c := range baseChains[tableFilter] {
		filter.chain(c)
	}

	mark := masqMark + "/" + masqMark
	nat.rule(chainPostrouting, "-m", "mark", "!", "--mark", mark, "-j", "RETURN")
	nat.rule(chainPostrouting, "-j", "MARK", "--xor-mark", masqMark)
	masq := []string{"-m", "comment", "--comment", "skiff service traffic requiring SNAT", "-j", "MASQUERADE"}
	if opts.RandomFully {
		masq = append(masq, "--random-fully")
	}
	nat.rule(chainPostrouting, masq...)
	nat.rule(chainMarkMasq, "-j", "MARK", "--or-mark", masqMark)
	filter.rule(chainForward, "-m", "comment", "--comment", "skiff forwarding rules", "-m", "mark", "--mark", mark, "-j", "ACCEPT")
	filter.rule(chainForward, "-m", "comment", "--comment", "skiff forwarding conntrack rule", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
	// route_localnet (for NodePorts on 127.0.0.1) would otherwise let
	// other hosts reach services bound to loopback (CVE-2020-8558).
	filter.rule(chainFirewall, "!", "-s", "127.0.0.0/8", "-d", "127.0.0.0/8", "-m", "comment", "--comment", "block incoming localnet connections",
		"-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP")

	endpoints := 0
	for i := range ports {
		endpoints += len(ports[i].Endpoints)
	}
	g := &generator{
		largeCluster: endpoints > largeClusterEndpoints,
		opts:         opts, nat: nat, filter: filter, last: newWriter(), scratch: newWriter(), prev: prev.Written,
		natChains: prev.Chains[tableNAT],
		written:   make(map[string]Written, len(ports)),
		inUse:     maps.Clone(nat.declared),
	}
	for i := range ports {
		g.servicePort(&ports[i])
	}
	// Last, so every ClusterIP rule is tried before a local address is taken
	// for a NodePort.
	nat.rule(chainServices, "-m", "comment", "--comment", "skiff service nodeports; NOTE: this must be the last rule in this chain",
		"-m", "addrtype", "--dst-type", "LOCAL", "-j", chainNodePorts)

	natChains := g.inUse
	for c := range nat.declared {
		natChains[c] = true
	}
	p := &Payload{
		Rules: map[string]int{tableNAT: nat.count + g.last.count + g.chunkRules + g.keptRules, tableFilter: filter.count},
		State: State{
			Chains:  map[string]map[string]bool{tableNAT: natChains, tableFilter: maps.Clone(filter.declared)},
			Written: g.written,
			Fixed:   map[string]uint64{tableNAT: nat.sum(), tableFilter: filter.sum()},
		},
	}
	// Fixed chains as they already are, in chains that still exist, are
	// left alone.
	for table, w := range map[string]*writer{tableNAT: nat, tableFilter: filter} {
		if sum, ok := prev.Fixed[table]; ok && sum == p.State.Fixed[table] && allIn(w.declared, prev.Chains[table]) {
			w.chains.Reset()
			w.rules.Reset()
		}
	}
	var out bytes.Buffer
	out.Grow(nat.chains.Len() + nat.rules.Len() + g.last.chains.Len() + g.last.rules.Len() + filter.chains.Len() + filter.rules.Len() + 1024)
	for _, c := range g.chunks {
		writeTable(&out, tableNAT, nil, c)
	}
	writeTable(&out, tableFilter, staleChains(prev.Chains[tableFilter], filter.declared), filter)
	writeTable(&out, tableNAT, staleChains(prev.Chains[tableNAT], natChains), nat, g.last)
	p.Data = out.Bytes()
	return p
}

// allIn says every chain of want is in have.
func allIn(want, have map[string]bool) bool {
	for c := range want {
		if !have[c] {
			return false
		}
	}
	return true
}

// staleChains are the existing per-service chains that are not in use.
func staleChains(existing map[string]bool, inUse map[string]bool) []string {
	var out []string
	for c := range existing {
		if (strings.HasPrefix(c, svcChainPrefix) || strings.HasPrefix(c, sepChainPrefix)) && !inUse[c] {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

type generator struct {
	// largeCluster drops the comments of per-endpoint rules.
	largeCluster bool
	opts         Options
	nat, filter  *writer
	// last holds the service chains written in the last transaction.
	last          *writer
	scratch       *writer
	prev, written map[string]Written
	natChains     map[string]bool
	// keptRules are the rules in chains left as they were.
	keptRules int
	// inUse are the nat chains the tables hold after this sync.
	inUse map[string]bool
	// chunks are the transactions of new service chains before the last.
	chunks     []*writer
	chunkRules int
}

// add writes one service's chains: into the last transaction, or into the
// current chunk when transactions are bounded.
func (g *generator) add(w *writer) {
	for c := range w.declared {
		g.inUse[c] = true
	}
	max := g.opts.MaxChainsPerTransaction
	if max <= 0 {
		g.last.merge(w)
		return
	}
	if len(g.chunks) == 0 || len(g.chunks[len(g.chunks)-1].declared)+len(w.declared) > max {
		g.chunks = append(g.chunks, newWriter())
	}
	g.chunks[len(g.chunks)-1].merge(w)
	g.chunkRules += w.count
}

func (g *generator) servicePort(sp *services.ServicePort) {
	nat, filter, opts := g.nat, g.filter, g.opts
	name := sp.Name.String()
	proto := strings.ToLower(sp.Protocol)
	dst := sp.ClusterIP.String() + "/32"
	port := strconv.Itoa(int(sp.Port))
	nodePort := strconv.Itoa(int(sp.NodePort))

	if len(sp.Endpoints) == 0 {
		filter.rule(chainServices, "-m", "comment", "--comment", name+" has no endpoints",
			"-m", proto, "-p", proto, "-d", dst, "--dport", port, "-j", "REJECT")
		if sp.NodePort != 0 {
			filter.rule(chainServices, "-m", "comment", "--comment", name+" has no endpoints",
				"-m", "addrtype", "--dst-type", "LOCAL", "-m", proto, "-p", proto, "--dport", nodePort, "-j", "REJECT")
		}
		return
	}

	svc := ServiceChain(sp)
	clusterIP := []string{"-m", "comment", "--comment", name + " cluster IP", "-m", proto, "-p", proto, "-d", dst, "--dport", port}
	nat.rule(chainServices, append(clusterIP, "-j", svc)...)
	if sp.NodePort != 0 {
		np := []string{"-m", "comment", "--comment", name, "-m", proto, "-p", proto, "--dport", nodePort}
		nat.rule(chainNodePorts, append(np, "-j", chainMarkMasq)...)
		nat.rule(chainNodePorts, append(np, "-j", svc)...)
	}

	// The service chain and its endpoint chains go through a scratch
	// writer, so they can be left out when they are what the tables hold.
	w := g.scratch
	w.reset()
	w.chain(svc)
	switch {
	case opts.MasqueradeAll:
		w.rule(svc, append(clusterIP, "-j", chainMarkMasq)...)
	case opts.ClusterCIDR.IsValid():
		w.rule(svc, append(clusterIP, "!", "-s", opts.ClusterCIDR.String(), "-j", chainMarkMasq)...)
	}
	n := len(sp.Endpoints)
	for i, ep := range sp.Endpoints {
		sep := EndpointChain(sp, ep)
		w.chain(sep)
		target := ep.String()
		var args, comment []string
		if !g.largeCluster {
			args = []string{"-m", "comment", "--comment", name + " -> " + target}
			comment = []string{"-m", "comment", "--comment", name}
		}
		if i < n-1 {
			args = append(args, "-m", "statistic", "--mode", "random", "--probability", probability(n-i))
		}
		w.rule(svc, append(args, "-j", sep)...)
		w.rule(sep, append(comment, "-s", ep.IP.String()+"/32", "-j", chainMarkMasq)...)
		w.rule(sep, append(comment, "-m", proto, "-p", proto, "-j", "DNAT", "--to-destination", target)...)
	}

	sum := Written{Sum: w.sum(), Rules: w.count}
	g.written[svc] = sum
	if prev, ok := g.prev[svc]; ok && prev == sum && allIn(w.declared, g.natChains) {
		for c := range w.declared {
			g.inUse[c] = true
		}
		g.keptRules += w.count
		return
	}
	g.add(w)
}

// probability is the chance the i-th of n remaining endpoints is chosen, so
// that every endpoint gets 1/n of new connections.
func probability(n int) string {
	return strconv.FormatFloat(1.0/float64(n), 'f', 10, 64)
}
