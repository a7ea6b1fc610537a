// Package iptables is the proxy's Service data path, kube-proxy's iptables
// mode: nat chains that DNAT ClusterIP and NodePort traffic to a random
// ready endpoint, masquerade where replies would otherwise bypass this node,
// and filter rules that reject connections to Services without endpoints.
//
// Built-in chains only get jump rules (through go-iptables); everything else
// is written as one iptables-restore --noflush transaction per sync,
// generated in memory. It must never touch a chain without the SKIFF-
// prefix beyond its own jump rules, so --cleanup restores the tables exactly.
package iptables

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goiptables "github.com/coreos/go-iptables/iptables"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiff-dev/skiff/proxy/services"
)

// restoreWait bounds how long iptables-restore waits for the xtables lock.
const restoreWait = "5"

// Metrics are the proxier's Prometheus metrics.
type Metrics struct {
	SyncDuration prometheus.Histogram
	Rules        *prometheus.GaugeVec
	SyncErrors   prometheus.Counter
}

// NewMetrics makes the metrics and registers them on reg (may be nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		SyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "skiff_proxy_sync_proxy_rules_duration_seconds",
			Help:    "How long one full sync of the iptables rules took.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		Rules: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "skiff_proxy_iptables_rules",
			Help: "Rules written by the last sync, by table.",
		}, []string{"table"}),
		SyncErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_proxy_sync_proxy_rules_errors_total",
			Help: "Syncs that failed.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.SyncDuration, m.Rules, m.SyncErrors)
	}
	return m
}

// Config configures a Proxier.
type Config struct {
	Options
	// Backend picks the iptables flavour: "" for the system's iptables,
	// "legacy" or "nft". It must match what else writes rules on the node.
	Backend string
	Logger  *slog.Logger
	Metrics *Metrics
}

// fullSyncPeriod is how often a sync rewrites every chain even when
// nothing changed, repairing chains something else altered (kube-proxy's
// hourly full sync); between, syncs write only what changed.
const fullSyncPeriod = time.Hour

// Proxier writes the rules for a set of service ports. Sync and Cleanup
// must not run concurrently; the sync runner serialises them.
type Proxier struct {
	cfg         Config
	ipt         *goiptables.IPTables
	path        string // iptables
	restorePath string
	log         *slog.Logger

	mu sync.Mutex
	// state is what the tables held after the last successful sync; a nil
	// Chains means "read them again and rewrite everything" (first sync,
	// or after a failure).
	state State
	// lastFull is when the last full rewrite succeeded.
	lastFull time.Time
}

// New finds iptables and iptables-restore. It changes nothing yet.
func New(cfg Config) (*Proxier, error) {
	command := "iptables"
	switch cfg.Backend {
	case "":
	case "legacy", "nft":
		command += "-" + cfg.Backend
	default:
		return nil, fmt.Errorf("iptables backend %q: want legacy or nft", cfg.Backend)
	}
	ipt, err := goiptables.New(goiptables.Path(command))
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", command, err)
	}
	path, err := exec.LookPath(command)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", command, err)
	}
	restore, err := exec.LookPath(command + "-restore")
	if err != nil {
		return nil, fmt.Errorf("find %s-restore: %w", command, err)
	}
	out, err := exec.Command(command, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --version: %w", command, err)
	}
	cfg.ListLargeTransactions = strings.Contains(string(out), "nf_tables")
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	cfg.RandomFully = cfg.RandomFully && ipt.HasRandomFully()
	return &Proxier{cfg: cfg, ipt: ipt, path: path, restorePath: restore, log: cfg.Logger}, nil
}

// Sync makes the tables match ports: it ensures the base chains and jump
// rules, then writes all of Skiff's chains in one transaction.
func (p *Proxier) Sync(ctx context.Context, ports []services.ServicePort) (err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := time.Now()
	defer func() {
		p.cfg.Metrics.SyncDuration.Observe(time.Since(start).Seconds())
		if err != nil {
			p.cfg.Metrics.SyncErrors.Inc()
			p.state = State{}
		}
	}()

	if time.Since(p.lastFull) > fullSyncPeriod {
		// Rewrite every chain. The chains the last sync left are known:
		// reading the tables again would cost another 1.3 CPU-s on nft
		// with 10,000 services, and CheckBase sees to the base chains.
		p.state = State{Chains: p.state.Chains}
	}
	full := p.state.Written == nil
	if p.state.Chains == nil {
		existing, err := p.listChains()
		if err != nil {
			return err
		}
		p.state = State{Chains: map[string]map[string]bool{}}
		for table, chains := range existing {
			p.state.Chains[table] = ChainSet(chains)
		}
		if err := p.ensureBase(p.state.Chains); err != nil {
			return err
		}
	}
	res, err := p.write(ctx, ports, full)
	if err != nil {
		return err
	}
	p.state = res.State
	if full {
		p.lastFull = time.Now()
	}
	for table, n := range res.Rules {
		p.cfg.Metrics.Rules.WithLabelValues(table).Set(float64(n))
	}
	p.log.Debug("synced iptables rules", "servicePorts", len(ports), "natRules", res.Rules[tableNAT],
		"filterRules", res.Rules[tableFilter], "bytes", res.Bytes, "full", full, "duration", time.Since(start))
	return nil
}

// CheckBase re-ensures the base chains and jump rules, in case something
// else flushed them; the periodic resync calls it before a sync. It trusts
// the chains the last sync left; when it fails, the next sync reads the
// tables again and rewrites everything.
func (p *Proxier) CheckBase() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state.Chains == nil {
		return nil // the next sync is a full one and ensures them
	}
	if err := p.ensureBase(p.state.Chains); err != nil {
		p.state = State{}
		return err
	}
	return nil
}

// ensureBase creates the base chains missing from existing (and records
// them there) and the jumps into them. It reads each built-in chain once
// rather than checking each jump: every iptables-legacy command loads the
// whole table, 0.4 CPU-s with 10,000 services, and a check per chain and
// per jump made the periodic check cost 6 CPU-s; iptables-nft reads only
// the chain listed.
func (p *Proxier) ensureBase(existing map[string]map[string]bool) error {
	for _, table := range []string{tableFilter, tableNAT} {
		if existing[table] == nil {
			existing[table] = map[string]bool{}
		}
		for _, c := range baseChains[table] {
			if existing[table][c] {
				continue
			}
			if err := p.ipt.NewChain(table, c); err != nil {
				return fmt.Errorf("create chain %s/%s: %w", table, c, err)
			}
			existing[table][c] = true
		}
	}
	listed := map[[2]string][]string{}
	for _, j := range jumps() {
		key := [2]string{j.table, j.chain}
		rules, ok := listed[key]
		if !ok {
			var err error
			if rules, err = p.ipt.List(j.table, j.chain); err != nil {
				return fmt.Errorf("list %s/%s: %w", j.table, j.chain, err)
			}
			listed[key] = rules
		}
		if slices.ContainsFunc(rules, j.is) {
			continue
		}
		// Jumps go first in the built-in chain, as kube-proxy's do, so a
		// DROP or ACCEPT another tool appended cannot hide the Services.
		if err := p.ipt.Insert(j.table, j.chain, 1, j.rulespec()...); err != nil {
			return fmt.Errorf("insert jump %s/%s -> %s: %w", j.table, j.chain, j.target, err)
		}
	}
	return nil
}

// listChains reads the chains of both tables. It reads iptables -S
// itself rather than through go-iptables, which keeps every line of the
// output (150,000 with 10,000 services, 0.5 CPU-s) to use the first few.
func (p *Proxier) listChains() (map[string][]string, error) {
	out := map[string][]string{}
	for _, table := range []string{tableFilter, tableNAT} {
		chains, err := p.chains(table)
		if err != nil {
			return nil, fmt.Errorf("list chains of %s: %w", table, err)
		}
		out[table] = chains
	}
	return out, nil
}

// chains lists one table's chains: the -P and -N lines that start
// iptables -S. The rules follow them; once the first rule is read, iptables
// is stopped rather than left to print every rule (on nft, a third of the
// listing's time with 10,000 services).
func (p *Proxier) chains(table string) ([]string, error) {
	cmd := iptablesCommand(context.Background(), p.path, "-w", restoreWait, "-t", table, "-S")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var chains []string
	stopped := false
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("-P ")) && !bytes.HasPrefix(line, []byte("-N ")) {
			stopped = cmd.Process.Kill() == nil
			break
		}
		if f := bytes.Fields(line); len(f) >= 2 {
			chains = append(chains, string(f[1]))
		}
	}
	scanErr := sc.Err()
	_, _ = io.Copy(io.Discard, stdout) // let iptables finish, or die
	if err := cmd.Wait(); err != nil && !stopped {
		return nil, fmt.Errorf("%s -t %s -S: %w: %s", p.path, table, err, strings.TrimSpace(stderr.String()))
	}
	if scanErr != nil {
		return nil, fmt.Errorf("read %s -t %s -S: %w", p.path, table, scanErr)
	}
	return chains, nil
}

// write renders the rules for ports over p.state and applies them. A full
// rewrite streams into iptables-restore as it renders (the two share the
// machine's cores); a partial sync renders first and runs nothing when
// nothing changed.
func (p *Proxier) write(ctx context.Context, ports []services.ServicePort, full bool) (Result, error) {
	if !full {
		payload := Generate(ports, p.state, p.cfg.Options)
		if payload.Len() > 0 {
			if err := p.restore(ctx, payload.Bytes()); err != nil {
				return Result{}, err
			}
		}
		return payload.Result, nil
	}
	var res Result
	err := p.run(ctx, func(w io.Writer) error {
		var err error
		res, err = Render(w, ports, p.state, p.cfg.Options)
		return err
	})
	if err != nil {
		// Render again, in memory, to quote the line iptables-restore
		// refused.
		if refusedLine.MatchString(err.Error()) {
			return Result{}, fmt.Errorf("%w%s", err, failedLine(err.Error(), Generate(ports, p.state, p.cfg.Options).Bytes()))
		}
		return Result{}, err
	}
	return res, nil
}

// restore applies a payload held in memory.
func (p *Proxier) restore(ctx context.Context, payload []byte) error {
	err := p.run(ctx, func(w io.Writer) error {
		_, err := w.Write(payload)
		return err
	})
	if err != nil {
		return fmt.Errorf("%w%s", err, failedLine(err.Error(), payload))
	}
	return nil
}

// run runs iptables-restore --noflush with what write writes as its input.
func (p *Proxier) run(ctx context.Context, write func(io.Writer) error) error {
	cmd := iptablesCommand(ctx, p.restorePath, "-w", restoreWait, "--noflush")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("iptables-restore: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start iptables-restore: %w", err)
	}
	in := bufio.NewWriterSize(stdin, streamChunk)
	writeErr := write(in)
	if writeErr == nil {
		writeErr = in.Flush()
	}
	closeErr := stdin.Close()
	if err := cmd.Wait(); err != nil {
		// Its complaint says more than the broken pipe it left us.
		return fmt.Errorf("iptables-restore: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	if writeErr != nil {
		return fmt.Errorf("write to iptables-restore: %w", writeErr)
	}
	if closeErr != nil {
		return fmt.Errorf("write to iptables-restore: %w", closeErr)
	}
	return nil
}

// hugePageMalloc asks glibc (2.35 and later; older ones ignore it) to back
// the heap with transparent huge pages (THP in madvise mode, the usual
// default). iptables-restore and iptables -S allocate in small pieces as
// they go, one fresh page at a time: a full sync of 10,000 services
// took 48,000 page faults in iptables-nft-restore and 21,000 in
// iptables-legacy-restore, and 1,000 and 2,000 with huge pages; on this
// project's VM, where a page fault is expensive, huge pages cut their CPU
// time by a quarter (nft) and a sixth (legacy) (proxy/README.md).
const hugePageMalloc = "glibc.malloc.hugetlb=1"

// iptablesCommand runs one of the iptables tools with hugePageMalloc added
// to the tunables the proxy itself was given.
func iptablesCommand(ctx context.Context, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	tunables := hugePageMalloc
	if own := os.Getenv("GLIBC_TUNABLES"); own != "" {
		tunables = own + ":" + hugePageMalloc
	}
	cmd.Env = append(os.Environ(), "GLIBC_TUNABLES="+tunables)
	return cmd
}

// refusedLine finds the line number in iptables-restore's complaint:
// "line 42 failed" (legacy) or "Error occurred at line: 42" (nft).
var refusedLine = regexp.MustCompile(`line:? (\d+)`)

// failedLine quotes the payload line iptables-restore complained about,
// so the error says what was wrong.
func failedLine(stderr string, data []byte) string {
	m := refusedLine.FindStringSubmatch(stderr)
	if m == nil {
		return ""
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n < 1 {
		return ""
	}
	lines := bytes.Split(data, []byte("\n"))
	if n > len(lines) {
		return ""
	}
	return fmt.Sprintf(" (line %d: %s)", n, lines[n-1])
}

// Cleanup removes every jump rule and every SKIFF- chain from the nat and
// filter tables, leaving them as they were before the proxy ran.
func (p *Proxier) Cleanup(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state = State{}
	existing, err := p.listChains()
	if err != nil {
		return err
	}
	for _, j := range jumps() {
		// iptables cannot even look for a jump to a missing chain.
		if !slices.Contains(existing[j.table], j.target) {
			continue
		}
		if err := p.ipt.DeleteIfExists(j.table, j.chain, j.rulespec()...); err != nil {
			return fmt.Errorf("delete jump %s/%s -> %s: %w", j.table, j.chain, j.target, err)
		}
	}
	var payload bytes.Buffer
	dst := &sink{out: &payload}
	removed := 0
	for _, table := range []string{tableFilter, tableNAT} {
		var ours []string
		for _, c := range existing[table] {
			if strings.HasPrefix(c, chainPrefix) {
				ours = append(ours, c)
			}
		}
		if len(ours) == 0 {
			continue
		}
		list := p.cfg.ListLargeTransactions && wantListing(len(ours), len(existing[table]))
		dst.writeString(tableHead(table, list))
		writeTableBody(dst, ours)
		removed += len(ours)
	}
	if removed > 0 {
		if err := p.restore(ctx, payload.Bytes()); err != nil {
			return fmt.Errorf("delete chains: %w", err)
		}
	}
	p.log.Info("removed iptables rules", "chains", removed)
	return nil
}

// EnableForwarding turns on what the data path needs in the kernel of the
// current network namespace: IPv4 forwarding, and route_localnet so that
// NodePorts answer on 127.0.0.1 too.
func EnableForwarding() error {
	for _, path := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv4/conf/all/route_localnet"} {
		if err := writeSysctl(path, "1"); err != nil {
			return err
		}
	}
	return nil
}

func writeSysctl(path, value string) error {
	cur, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(cur)) == value {
		return nil
	}
	if err := os.WriteFile(path, []byte(value+"\n"), 0o644); err != nil {
		return fmt.Errorf("set %s=%s: %w", strings.ReplaceAll(strings.TrimPrefix(path, "/proc/sys/"), string(filepath.Separator), "."), value, err)
	}
	return nil
}
