package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/coreos/go-iptables/iptables"
)

// run runs a command and returns its error with the command's output.
func run(ctx context.Context, log *slog.Logger, name string, args ...string) error {
	log.Debug("run", "cmd", name+" "+strings.Join(args, " "))
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// inNetns runs a command in a node namespace (network only, as the nodes'
// daemons run).
func inNetns(ctx context.Context, log *slog.Logger, netns, name string, args ...string) error {
	return run(ctx, log, "nsenter", append([]string{"--net=" + netnsPath(netns), "--", name}, args...)...)
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// deleteLink removes a host link; one already gone (a veth goes with its
// peer's namespace, asynchronously) is fine.
func deleteLink(ctx context.Context, log *slog.Logger, name string) error {
	if !linkExists(name) {
		return nil
	}
	err := run(ctx, log, "ip", "link", "delete", name)
	if err != nil && !linkExists(name) {
		return nil
	}
	return err
}

func netnsExists(name string) bool {
	_, err := os.Stat(netnsPath(name))
	return err == nil
}

// setUpBridge makes the host bridge with the host's address, and the host
// iptables chains that let node traffic through the bridge and out.
func (u *upper) setUpBridge(ctx context.Context) error {
	c, log := u.cfg, u.cfg.Logger
	br := c.Bridge()
	if !linkExists(br) {
		if err := run(ctx, log, "ip", "link", "add", br, "type", "bridge"); err != nil {
			return err
		}
	}
	u.state.Links = appendNew(u.state.Links, br)
	if err := u.save(); err != nil {
		return err
	}
	addr := fmt.Sprintf("%s/%d", c.HostIP(), c.PrefixLen())
	if err := run(ctx, log, "ip", "addr", "replace", addr, "dev", br); err != nil {
		return err
	}
	if err := run(ctx, log, "ip", "link", "set", br, "up"); err != nil {
		return err
	}
	prev, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		return fmt.Errorf("read ip_forward: %w", err)
	}
	if u.state.IPForward == "" {
		u.state.IPForward = strings.TrimSpace(string(prev))
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable ip_forward: %w", err)
	}
	return u.setUpHostChains()
}

// hostRules are the host's iptables rules: accept forwarding to and from
// the bridge (a host firewall may drop by default), and masquerade node
// traffic leaving by another interface.
func (c Config) hostRules() []hostRule {
	br := c.Bridge()
	return []hostRule{
		{table: "filter", parent: "FORWARD", chain: c.ChainPrefix() + "FORWARD", rules: [][]string{
			{"-i", br, "-j", "ACCEPT"},
			{"-o", br, "-j", "ACCEPT"},
		}},
		{table: "nat", parent: "POSTROUTING", chain: c.ChainPrefix() + "POSTROUTING", rules: [][]string{
			{"-s", c.Subnet, "!", "-o", br, "-j", "MASQUERADE"},
		}},
	}
}

type hostRule struct {
	table, parent, chain string
	rules                [][]string
}

func (u *upper) setUpHostChains() error {
	ipt, err := iptables.New()
	if err != nil {
		return fmt.Errorf("iptables: %w", err)
	}
	for _, r := range u.cfg.hostRules() {
		u.state.Chains = appendNew(u.state.Chains, r.table+"/"+r.chain)
		if err := u.save(); err != nil {
			return err
		}
		if err := ipt.ClearChain(r.table, r.chain); err != nil { // creates or empties
			return fmt.Errorf("iptables chain %s/%s: %w", r.table, r.chain, err)
		}
		for _, rule := range r.rules {
			if err := ipt.Append(r.table, r.chain, rule...); err != nil {
				return fmt.Errorf("iptables %s/%s %v: %w", r.table, r.chain, rule, err)
			}
		}
		if err := ipt.InsertUnique(r.table, r.parent, 1, "-j", r.chain); err != nil {
			return fmt.Errorf("iptables jump %s/%s -> %s: %w", r.table, r.parent, r.chain, err)
		}
	}
	return nil
}

// setUpNode makes node i's namespace: a veth whose host end joins the
// bridge and whose node end is eth0 with the node's IP, lo up, a default
// route via the host, IP forwarding on.
func (u *upper) setUpNode(ctx context.Context, i int) error {
	c, log := u.cfg, u.cfg.Logger
	ns, veth := c.Netns(i), c.HostVeth(i)
	if !netnsExists(ns) {
		if err := run(ctx, log, "ip", "netns", "add", ns); err != nil {
			return err
		}
	}
	u.state.Namespaces = appendNew(u.state.Namespaces, ns)
	u.state.Links = appendNew(u.state.Links, veth)
	if err := u.save(); err != nil {
		return err
	}
	if !linkExists(veth) {
		if err := run(ctx, log, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns); err != nil {
			return err
		}
	}
	steps := [][]string{
		{"ip", "link", "set", veth, "master", c.Bridge(), "up"},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		{"ip", "-n", ns, "addr", "replace", fmt.Sprintf("%s/%d", c.NodeIP(i), c.PrefixLen()), "dev", "eth0"},
		{"ip", "-n", ns, "link", "set", "eth0", "up"},
		{"ip", "-n", ns, "route", "replace", "default", "via", c.HostIP().String()},
	}
	for _, s := range steps {
		if err := run(ctx, log, s[0], s[1:]...); err != nil {
			return err
		}
	}
	if err := inNetns(ctx, log, ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
		return err
	}
	// Pods of one node reach a Service backed by a pod on the same bridge
	// only if bridged traffic passes iptables; the knob exists per
	// namespace once br_netfilter is loaded.
	if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err == nil {
		if err := inNetns(ctx, log, ns, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"); err != nil {
			log.Warn("bridge-nf-call-iptables in node namespace", "netns", ns, "err", err)
		}
	}
	return nil
}

// netnsIDs maps the "net:[inode]" identity of each existing namespace of
// the cluster to true, to find the processes inside them.
func netnsIDs(names []string) map[string]bool {
	ids := map[string]bool{}
	for _, n := range names {
		var st syscall.Stat_t
		if err := syscall.Stat(netnsPath(n), &st); err == nil {
			ids[fmt.Sprintf("net:[%d]", st.Ino)] = true
		}
	}
	return ids
}

// clusterNamespaces lists the recorded namespaces plus every namespace in
// /run/netns whose name carries the cluster's prefix.
func clusterNamespaces(c Config, recorded []string) []string {
	out := append([]string(nil), recorded...)
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), c.NetnsPrefix()) {
			out = appendNew(out, e.Name())
		}
	}
	return out
}

// clusterLinks lists the recorded links plus the bridge and every host
// link named like a node veth.
func clusterLinks(c Config, recorded []string) []string {
	out := appendNew(append([]string(nil), recorded...), c.Bridge())
	ifs, _ := net.Interfaces()
	for _, ifc := range ifs {
		rest, ok := strings.CutPrefix(ifc.Name, c.Name+"v")
		if ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
			out = appendNew(out, ifc.Name)
		}
	}
	return out
}

// removeHostChains deletes every host chain of the cluster (recorded or
// carrying its prefix) and the jumps to it.
func removeHostChains(c Config, recorded []string) error {
	ipt, err := iptables.New()
	if err != nil {
		return fmt.Errorf("iptables: %w", err)
	}
	var errs []error
	for _, table := range []string{"filter", "nat", "mangle", "raw"} {
		chains, err := ipt.ListChains(table)
		if err != nil {
			errs = append(errs, fmt.Errorf("list %s chains: %w", table, err))
			continue
		}
		ours := map[string]bool{}
		for _, ch := range chains {
			if strings.HasPrefix(ch, c.ChainPrefix()) {
				ours[ch] = true
			}
		}
		for _, r := range recorded {
			if t, ch, ok := strings.Cut(r, "/"); ok && t == table && contains(chains, ch) {
				ours[ch] = true
			}
		}
		if len(ours) == 0 {
			continue
		}
		// Jumps first: a referenced chain cannot be deleted.
		for _, parent := range chains {
			if ours[parent] {
				continue
			}
			rules, err := ipt.List(table, parent)
			if err != nil {
				errs = append(errs, fmt.Errorf("list %s/%s: %w", table, parent, err))
				continue
			}
			for _, rule := range rules {
				spec := strings.Fields(rule)
				if len(spec) < 2 || spec[0] != "-A" {
					continue
				}
				if target := jumpTarget(spec); ours[target] {
					if err := ipt.Delete(table, parent, spec[2:]...); err != nil {
						errs = append(errs, fmt.Errorf("delete %s/%s %q: %w", table, parent, rule, err))
					}
				}
			}
		}
		for ch := range ours {
			if err := ipt.ClearAndDeleteChain(table, ch); err != nil {
				errs = append(errs, fmt.Errorf("delete chain %s/%s: %w", table, ch, err))
			}
		}
	}
	return errors.Join(errs...)
}

func jumpTarget(spec []string) string {
	for i := 0; i+1 < len(spec); i++ {
		if spec[i] == "-j" || spec[i] == "-g" {
			return spec[i+1]
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func appendNew(list []string, s string) []string {
	if contains(list, s) {
		return list
	}
	return append(list, s)
}
