package iptables

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
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

	tableNAT    = "nat"
	tableFilter = "filter"

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
	}
}

// baseChains are the fixed chains of each table, which the jumps need.
var baseChains = map[string][]string{
	tableNAT:    {chainServices, chainNodePorts, chainPostrouting, chainMarkMasq},
	tableFilter: {chainServices, chainForward},
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
}

// Payload is one full sync, ready for iptables-restore --noflush.
type Payload struct {
	Data []byte
	// Chains are the chains the payload leaves in each table.
	Chains map[string]map[string]bool
	// Rules counts the rules written in each table.
	Rules map[string]int
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

func (w *writer) flush(out *bytes.Buffer, table string, stale []string) {
	out.WriteString("*" + table + "\n")
	out.Write(w.chains.Bytes())
	for _, c := range stale {
		out.WriteString(":" + c + " - [0:0]\n") // declaring flushes it, so it can be deleted
	}
	out.Write(w.rules.Bytes())
	for _, c := range stale {
		out.WriteString("-X " + c + "\n")
	}
	out.WriteString("COMMIT\n")
}

// Generate writes the rules for every service port into one
// iptables-restore payload. existing lists the chains each table has now;
// Skiff's per-service chains among them that the new rules no longer use are
// deleted in the same transaction.
func Generate(ports []services.ServicePort, existing map[string][]string, opts Options) *Payload {
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

	for i := range ports {
		writeServicePort(nat, filter, &ports[i], opts)
	}
	// Last, so every ClusterIP rule is tried before a local address is taken
	// for a NodePort.
	nat.rule(chainServices, "-m", "comment", "--comment", "skiff service nodeports; NOTE: this must be the last rule in this chain",
		"-m", "addrtype", "--dst-type", "LOCAL", "-j", chainNodePorts)

	p := &Payload{
		Chains: map[string]map[string]bool{tableNAT: nat.declared, tableFilter: filter.declared},
		Rules:  map[string]int{tableNAT: nat.count, tableFilter: filter.count},
	}
	var out bytes.Buffer
	out.Grow(nat.chains.Len() + nat.rules.Len() + filter.chains.Len() + filter.rules.Len() + 1024)
	filter.flush(&out, tableFilter, staleChains(existing[tableFilter], filter.declared))
	nat.flush(&out, tableNAT, staleChains(existing[tableNAT], nat.declared))
	p.Data = out.Bytes()
	return p
}

// staleChains are the existing per-service chains that are not declared.
func staleChains(existing []string, declared map[string]bool) []string {
	var out []string
	for _, c := range existing {
		if (strings.HasPrefix(c, svcChainPrefix) || strings.HasPrefix(c, sepChainPrefix)) && !declared[c] {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

func writeServicePort(nat, filter *writer, sp *services.ServicePort, opts Options) {
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
	nat.chain(svc)
	clusterIP := []string{"-m", "comment", "--comment", name + " cluster IP", "-m", proto, "-p", proto, "-d", dst, "--dport", port}
	nat.rule(chainServices, append(clusterIP, "-j", svc)...)
	switch {
	case opts.MasqueradeAll:
		nat.rule(svc, append(clusterIP, "-j", chainMarkMasq)...)
	case opts.ClusterCIDR.IsValid():
		nat.rule(svc, append(clusterIP, "!", "-s", opts.ClusterCIDR.String(), "-j", chainMarkMasq)...)
	}
	if sp.NodePort != 0 {
		np := []string{"-m", "comment", "--comment", name, "-m", proto, "-p", proto, "--dport", nodePort}
		nat.rule(chainNodePorts, append(np, "-j", chainMarkMasq)...)
		nat.rule(chainNodePorts, append(np, "-j", svc)...)
	}

	n := len(sp.Endpoints)
	for i, ep := range sp.Endpoints {
		sep := EndpointChain(sp, ep)
		nat.chain(sep)
		target := ep.String()
		args := []string{"-m", "comment", "--comment", name + " -> " + target}
		if i < n-1 {
			args = append(args, "-m", "statistic", "--mode", "random", "--probability", probability(n-i))
		}
		nat.rule(svc, append(args, "-j", sep)...)

		comment := []string{"-m", "comment", "--comment", name}
		nat.rule(sep, append(comment, "-s", ep.IP.String()+"/32", "-j", chainMarkMasq)...)
		nat.rule(sep, append(comment, "-m", proto, "-p", proto, "-j", "DNAT", "--to-destination", target)...)
	}
}

// probability is the chance the i-th of n remaining endpoints is chosen, so
// that every endpoint gets 1/n of new connections.
func probability(n int) string {
	return strconv.FormatFloat(1.0/float64(n), 'f', 10, 64)
}
