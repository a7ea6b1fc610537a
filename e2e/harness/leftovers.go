package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
)

// Leftovers lists what the cluster left on the host after Down: processes
// naming the state dir, node namespaces, links named after the cluster,
// iptables chains and rules of the cluster, mounts under the state dir,
// and the state dir itself. localcluster checks the same in its own
// tests but exports no such check.
func (c *Cluster) Leftovers(ctx context.Context) ([]string, error) {
	cfg := c.Config
	var left []string
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	for _, e := range procs {
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(cmdline) == 0 {
			continue
		}
		cl := strings.ReplaceAll(string(cmdline), "\x00", " ")
		if strings.Contains(cl, cfg.StateDir+"/") {
			left = append(left, fmt.Sprintf("process %s: %s", e.Name(), cl))
		}
	}
	netns, _ := os.ReadDir("/run/netns")
	for _, e := range netns {
		if strings.HasPrefix(e.Name(), cfg.NetnsPrefix()) {
			left = append(left, "network namespace "+e.Name())
		}
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	for _, ifc := range ifs {
		if ifc.Name == cfg.Bridge() || strings.HasPrefix(ifc.Name, cfg.Name+"v") {
			left = append(left, "link "+ifc.Name)
		}
	}
	rules, err := hostRulesNow(ctx)
	if err != nil {
		return nil, err
	}
	left = append(left, c.ourRules(rules)...)
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(mounts))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 4 && (f[4] == cfg.StateDir || strings.HasPrefix(f[4], cfg.StateDir+"/")) {
			left = append(left, "mount "+f[4])
		}
	}
	if _, err := os.Stat(cfg.StateDir); !errors.Is(err, os.ErrNotExist) {
		left = append(left, "state dir "+cfg.StateDir)
	}
	return left, nil
}

// hostRules is the host's `iptables-save`: chain declarations
// (":CHAIN ...") and rules ("-A CHAIN ...") per table.
type hostRules struct {
	chains map[string]bool     // "table/chain"
	rules  map[string][]string // "table/chain" → its rules
}

func hostRulesNow(ctx context.Context) (hostRules, error) {
	out, err := exec.CommandContext(ctx, "iptables-save").Output()
	if err != nil {
		return hostRules{}, fmt.Errorf("iptables-save: %w", err)
	}
	h := hostRules{chains: map[string]bool{}, rules: map[string][]string{}}
	table := ""
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":"):
			h.chains[table+"/"+strings.Fields(line[1:])[0]] = true
		case strings.HasPrefix(line, "-A "):
			f := strings.Fields(line)
			h.rules[table+"/"+f[1]] = append(h.rules[table+"/"+f[1]], line)
		}
	}
	return h, nil
}

// ourRules lists the host chains and rules the cluster left: chains that
// were not there before Up and carry the cluster's prefix or Skiff's, and
// any rule naming the cluster's bridge or subnet. Other chains that came
// and went meanwhile belong to other programs on a shared machine.
func (c *Cluster) ourRules(now hostRules) []string {
	cfg := c.Config
	var left []string
	for ch := range now.chains {
		name := ch[strings.IndexByte(ch, '/')+1:]
		if !c.hostChains[ch] && (strings.HasPrefix(name, cfg.ChainPrefix()) || strings.HasPrefix(name, "SKIFF-")) {
			left = append(left, "iptables chain "+ch)
		}
	}
	for ch, rules := range now.rules {
		for _, r := range rules {
			if strings.Contains(r, " "+cfg.Bridge()+" ") || strings.Contains(r, " "+cfg.Subnet+" ") {
				left = append(left, fmt.Sprintf("iptables rule in %s: %s", ch, r))
			}
		}
	}
	return left
}

// hostChains lists the host's iptables chains as "table/chain".
func hostChains(ctx context.Context) (map[string]bool, error) {
	h, err := hostRulesNow(ctx)
	if err != nil {
		return nil, err
	}
	return h.chains, nil
}
