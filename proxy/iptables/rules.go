package iptables

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"hash/fnv"
	"io"
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

// is says whether rule, a line of iptables -S, is this jump: Skiff's
// comment and target in the jump's chain.
func (j jump) is(rule string) bool {
	return strings.HasPrefix(rule, "-A "+j.chain+" ") && strings.HasSuffix(rule, " -j "+j.target) &&
		strings.Contains(rule, `--comment "`+j.comment()+`"`)
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
	// ListLargeTransactions makes a nat transaction that writes many chains
	// start with a listing of the whole table ("-S"). Set it for
	// iptables-nft 1.8.x: for every command of a transaction it inserts the
	// command's chain and jump target into a request list of chain names
	// kept as a sorted linked list, so a transaction of k chains costs
	// O(k²) string compares before anything reaches the kernel (1,000
	// services, 4,000 chains: 0.5 s; 4,000 services: 15 s; 10,000
	// services: many minutes). A command naming no chain, as a listing of
	// the whole table does, makes it fetch every chain instead and skip
	// the list. The listing costs time in proportion to the chains already
	// in the table, so it is used only when it is the cheaper of the two
	// (see wantListing).
	ListLargeTransactions bool
}

// Result is what a sync's payload leaves in the tables.
type Result struct {
	// Rules counts the rules each table holds once the payload is applied,
	// including unchanged chains it did not rewrite.
	Rules map[string]int
	// State is what the tables hold once the payload is applied: the
	// previous state for the next sync.
	State State
	// Bytes is the payload's size; zero means there was nothing to do.
	Bytes int
}

// Payload is one sync rendered in memory.
type Payload struct {
	Result
	data []byte
}

// Len is the payload's size in bytes; zero means there is nothing to do.
func (p *Payload) Len() int { return len(p.data) }

// Bytes is the payload.
func (p *Payload) Bytes() []byte { return p.data }

// sink is where a payload goes: iptables-restore's input, or memory. It
// counts what it was given and keeps the first write error, so rendering
// goes on and reports it once at the end.
type sink struct {
	out io.Writer
	n   int
	err error
}

func (s *sink) write(b []byte) {
	if len(b) == 0 || s.err != nil {
		return
	}
	n, err := s.out.Write(b)
	s.n += n
	s.err = err
}

func (s *sink) writeString(str string) { s.write([]byte(str)) }

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
		_, _ = io.WriteString(h, p)
	}
	var sum [sha256.Size]byte
	var enc [16]byte
	// 10 bytes are exactly 16 base32 characters, the first 16 of the
	// whole sum's encoding.
	base32.StdEncoding.Encode(enc[:], h.Sum(sum[:0])[:10])
	return prefix + string(enc[:])
}

// ServiceChain names the chain of one service port.
func ServiceChain(sp *services.ServicePort) string {
	return hashName(svcChainPrefix, sp.Name.String(), sp.Protocol)
}

// EndpointChain names the chain of one endpoint of one service port.
func EndpointChain(sp *services.ServicePort, ep services.Endpoint) string {
	return hashName(sepChainPrefix, sp.Name.String(), sp.Protocol, ep.String())
}

// writer builds one table's part of the payload: chain declarations and
// rules in separate buffers, as iptables-restore wants all declarations
// before the rules that jump to them.
type writer struct {
	chains bytes.Buffer
	rules  bytes.Buffer
	// nchains and count are the chains declared and the rules written.
	nchains, count int
	// inline declares chains among the rules, right before the first
	// rule that needs them.
	inline bool
}

func (w *writer) chain(name string) {
	w.nchains++
	b := &w.chains
	if w.inline {
		b = &w.rules
	}
	b.WriteString(":")
	b.WriteString(name)
	b.WriteString(" - [0:0]\n")
}

// rule appends "-A chain args...", quoting arguments with spaces.
func (w *writer) rule(chain string, args ...string) {
	w.count++
	w.rules.WriteString("-A ")
	w.rules.WriteString(chain)
	for _, a := range args {
		w.rules.WriteByte(' ')
		if needsQuotes(a) {
			w.rules.WriteString(strconv.Quote(a))
		} else {
			w.rules.WriteString(a)
		}
	}
	w.rules.WriteByte('\n')
}

// needsQuotes says whether iptables-restore would split or misread a.
func needsQuotes(a string) bool {
	for i := 0; i < len(a); i++ {
		if c := a[i]; c == ' ' || c == '\t' || c == '"' {
			return true
		}
	}
	return false
}

// mark is a writer's length, to fingerprint or drop what follows it.
type mark struct{ chains, rules, nchains, count int }

func (w *writer) mark() mark {
	return mark{chains: w.chains.Len(), rules: w.rules.Len(), nchains: w.nchains, count: w.count}
}

// sumSince fingerprints what the writer got since m.
func (w *writer) sumSince(m mark) uint64 {
	h := fnv.New64a()
	h.Write(w.chains.Bytes()[m.chains:])
	h.Write(w.rules.Bytes()[m.rules:])
	return h.Sum64()
}

// truncate drops what the writer got since m.
func (w *writer) truncate(m mark) {
	w.chains.Truncate(m.chains)
	w.rules.Truncate(m.rules)
	w.nchains, w.count = m.nchains, m.count
}

func (w *writer) len() int { return w.chains.Len() + w.rules.Len() }

// listingRatio and minListedChains decide when a transaction starts with
// a listing of the whole table (Options.ListLargeTransactions). Measured
// with iptables-nft 1.8.9 on this project's 2-core VM: the sorted request
// list costs about 3.4e-8 s per (chains written)², the listing about
// 3.4e-5 s per chain already in the table (1.3 s for 40,000), so the
// listing is the cheaper one once chains² exceeds about 1,000 × existing
// chains. Below minListedChains neither costs anything worth a line.
const (
	listingRatio    = 1000
	minListedChains = 256
)

// wantListing says whether a transaction declaring chains chains, into a
// table holding existing chains, should start with a listing.
func wantListing(chains, existing int) bool {
	return chains >= minListedChains && chains*chains > listingRatio*existing
}

// tableHead starts a transaction of table; list starts it with a listing
// of the whole table, which changes nothing but how iptables-nft fetches
// its cache.
func tableHead(table string, list bool) string {
	if list {
		return "*" + table + "\n-S\n"
	}
	return "*" + table + "\n"
}

// hasWork says whether a transaction would change anything.
func hasWork(stale []string, ws ...*writer) bool {
	for _, w := range ws {
		if w.len() > 0 {
			return true
		}
	}
	return len(stale) > 0
}

// writeTableBody ends a transaction: each writer's chains and then its
// rules, in order, then the stale chains, flushed by declaring them and
// deleted.
func writeTableBody(out *sink, stale []string, ws ...*writer) {
	for _, w := range ws {
		out.write(w.chains.Bytes())
		out.write(w.rules.Bytes())
	}
	var tail bytes.Buffer
	for _, c := range stale {
		tail.WriteString(":" + c + " - [0:0]\n") // declaring flushes it, so it can be deleted
	}
	for _, c := range stale {
		tail.WriteString("-X " + c + "\n")
	}
	tail.WriteString("COMMIT\n")
	out.write(tail.Bytes())
}

// streamChunk is how much of the service chains a full sync collects
// before handing it to iptables-restore.
const streamChunk = 64 << 10

// Generate renders a sync into memory (see Render).
func Generate(ports []services.ServicePort, prev State, opts Options) *Payload {
	var buf bytes.Buffer
	res, _ := Render(&buf, ports, prev, opts) // a bytes.Buffer never fails
	return &Payload{Result: res, data: buf.Bytes()}
}

// Render writes the rules for every service port as one iptables-restore
// payload to out: one transaction per table, nat first. prev is what the
// tables hold now: service chains whose rules match prev.Written are left
// alone, the fixed chains (SKIFF-SERVICES and friends) are rewritten only
// when they changed, and Skiff's per-service chains that the new rules no
// longer use are deleted in the same transaction.
//
// A full rewrite (prev.Written nil) streams: the service chains, most of
// the payload, reach out as they are rendered, so iptables-restore parses
// while the proxy renders and the payload is never whole in memory. A
// partial sync collects its few changed chains first, as it must count
// them to choose the transaction's head, and writes nothing at all when
// nothing changed.
func Render(out io.Writer, ports []services.ServicePort, prev State, opts Options) (Result, error) {
	nat, filter := &writer{}, &writer{}
	for _, c := range baseChains[tableNAT] {
		nat.chain(c)
	}
	for _, c := range baseChains[tableFilter] {
		filter.chain(c)
	}

	marked := masqMark + "/" + masqMark
	nat.rule(chainPostrouting, "-m", "mark", "!", "--mark", marked, "-j", "RETURN")
	nat.rule(chainPostrouting, "-j", "MARK", "--xor-mark", masqMark)
	masq := []string{"-m", "comment", "--comment", "skiff service traffic requiring SNAT", "-j", "MASQUERADE"}
	if opts.RandomFully {
		masq = append(masq, "--random-fully")
	}
	nat.rule(chainPostrouting, masq...)
	nat.rule(chainMarkMasq, "-j", "MARK", "--or-mark", masqMark)
	filter.rule(chainForward, "-m", "comment", "--comment", "skiff forwarding rules", "-m", "mark", "--mark", marked, "-j", "ACCEPT")
	filter.rule(chainForward, "-m", "comment", "--comment", "skiff forwarding conntrack rule", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
	// route_localnet (for NodePorts on 127.0.0.1) would otherwise let
	// other hosts reach services bound to loopback (CVE-2020-8558).
	filter.rule(chainFirewall, "!", "-s", "127.0.0.0/8", "-d", "127.0.0.0/8", "-m", "comment", "--comment", "block incoming localnet connections",
		"-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP")

	endpoints, serviceChains := 0, 0
	for i := range ports {
		endpoints += len(ports[i].Endpoints)
		if len(ports[i].Endpoints) > 0 {
			serviceChains++
		}
	}
	dst := &sink{out: out}
	g := &generator{
		largeCluster: endpoints > largeClusterEndpoints,
		opts:         opts, nat: nat, filter: filter, svc: &writer{inline: true}, prev: prev.Written,
		natChains: prev.Chains[tableNAT],
		written:   make(map[string]Written, len(ports)),
		inUse:     make(map[string]bool, len(baseChains[tableNAT])+len(ports)+endpoints),
	}
	for _, c := range baseChains[tableNAT] {
		g.inUse[c] = true
	}
	full := prev.Written == nil
	if full {
		// Every chain is written: the head can be chosen now.
		chains := len(baseChains[tableNAT]) + serviceChains + endpoints
		list := opts.ListLargeTransactions && wantListing(chains, len(prev.Chains[tableNAT]))
		dst.writeString(tableHead(tableNAT, list))
	}
	for i := range ports {
		g.servicePort(&ports[i])
		if full && g.svc.rules.Len() >= streamChunk {
			dst.write(g.svc.rules.Bytes())
			g.svc.rules.Reset()
		}
	}
	// Last, so every ClusterIP rule is tried before a local address is taken
	// for a NodePort.
	nat.rule(chainServices, "-m", "comment", "--comment", "skiff service nodeports; NOTE: this must be the last rule in this chain",
		"-m", "addrtype", "--dst-type", "LOCAL", "-j", chainNodePorts)

	filterChains := ChainSet(baseChains[tableFilter])
	res := Result{
		Rules: map[string]int{tableNAT: nat.count + g.svc.count + g.keptRules, tableFilter: filter.count},
		State: State{
			Chains:  map[string]map[string]bool{tableNAT: g.inUse, tableFilter: filterChains},
			Written: g.written,
			Fixed:   map[string]uint64{tableNAT: nat.sumSince(mark{}), tableFilter: filter.sumSince(mark{})},
		},
	}
	// Fixed chains as they already are, in chains that still exist, are
	// left alone.
	for table, w := range map[string]*writer{tableNAT: nat, tableFilter: filter} {
		if sum, ok := prev.Fixed[table]; ok && sum == res.State.Fixed[table] && allIn(baseChains[table], prev.Chains[table]) {
			w.truncate(mark{})
		}
	}
	staleNAT := staleChains(prev.Chains[tableNAT], g.inUse)
	switch {
	case full: // the head is written, the service chains streamed
		writeTableBody(dst, staleNAT, g.svc, nat)
	case hasWork(staleNAT, g.svc, nat):
		list := opts.ListLargeTransactions && wantListing(nat.nchains+g.svc.nchains+len(staleNAT), len(prev.Chains[tableNAT]))
		dst.writeString(tableHead(tableNAT, list))
		writeTableBody(dst, staleNAT, g.svc, nat)
	}
	if staleFilter := staleChains(prev.Chains[tableFilter], filterChains); hasWork(staleFilter, filter) {
		dst.writeString(tableHead(tableFilter, false))
		writeTableBody(dst, staleFilter, filter)
	}
	res.Bytes = dst.n
	return res, dst.err
}

// allIn says every chain of want is in have.
func allIn(want []string, have map[string]bool) bool {
	for _, c := range want {
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
	// svc holds the service and endpoint chains this sync writes.
	svc           *writer
	prev, written map[string]Written
	natChains     map[string]bool
	// keptRules are the rules in chains left as they were.
	keptRules int
	// inUse are the nat chains the tables hold after this sync.
	inUse map[string]bool
	// names and seps are scratch space for one service's chain names
	// and its endpoints' chains, in order.
	names, seps []string
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

	svc := hashName(svcChainPrefix, name, sp.Protocol)
	clusterIP := []string{"-m", "comment", "--comment", name + " cluster IP", "-m", proto, "-p", proto, "-d", dst, "--dport", port}
	nat.rule(chainServices, append(clusterIP, "-j", svc)...)
	if sp.NodePort != 0 {
		np := []string{"-m", "comment", "--comment", name, "-m", proto, "-p", proto, "--dport", nodePort}
		nat.rule(chainNodePorts, append(np, "-j", chainMarkMasq)...)
		nat.rule(chainNodePorts, append(np, "-j", svc)...)
	}

	// The service chain and its endpoint chains are written, then
	// dropped again when they are what the tables hold.
	w := g.svc
	start := w.mark()
	names := append(g.names[:0], svc)
	w.chain(svc)
	seps := g.seps[:0]
	for _, ep := range sp.Endpoints {
		sep := hashName(sepChainPrefix, name, sp.Protocol, ep.String())
		seps = append(seps, sep)
		if !slices.Contains(names, sep) {
			names = append(names, sep)
			w.chain(sep)
		}
	}
	// The service chain is entered only through its cluster IP rule or
	// its NodePort rules, which mark every packet anyway, so the masquerade
	// rule need not match the cluster IP, protocol and port again as
	// kube-proxy's does: six nftables expressions and a tcp match less to
	// parse and commit per service (a full sync of 10,000 services on nft
	// took 0.92 of the time, median of nine paired runs).
	svcComment := []string{"-m", "comment", "--comment", name + " cluster IP"}
	switch {
	case opts.MasqueradeAll:
		w.rule(svc, append(svcComment, "-j", chainMarkMasq)...)
	case opts.ClusterCIDR.IsValid():
		w.rule(svc, append(svcComment, "!", "-s", opts.ClusterCIDR.String(), "-j", chainMarkMasq)...)
	}
	n := len(sp.Endpoints)
	for i, ep := range sp.Endpoints {
		target := ep.String()
		sep := seps[i]
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
		// -p alone: DNAT needs the protocol for the port, and an empty
		// "-m tcp" (kube-proxy writes one) is one more match to parse and
		// load for every endpoint.
		w.rule(sep, append(comment, "-p", proto, "-j", "DNAT", "--to-destination", target)...)
	}
	g.names, g.seps = names, seps

	sum := Written{Sum: w.sumSince(start), Rules: w.count - start.count}
	g.written[svc] = sum
	for _, c := range names {
		g.inUse[c] = true
	}
	if prev, ok := g.prev[svc]; ok && prev == sum && allIn(names, g.natChains) {
		w.truncate(start)
		g.keptRules += sum.Rules
	}
}

// probability is the chance the i-th of n remaining endpoints is chosen, so
// that every endpoint gets 1/n of new connections.
func probability(n int) string {
	return strconv.FormatFloat(1.0/float64(n), 'f', 10, 64)
}
