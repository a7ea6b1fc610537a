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
// iptables chains that were not there before Up, mounts under the state
// dir, and the state dir itself. localcluster checks the same in its own
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
	now, err := hostChains(ctx)
	if err != nil {
		return nil, err
	}
	for ch := range now {
		if !c.hostChains[ch] {
			left = append(left, "iptables chain "+ch)
		}
	}
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

// hostChains lists the host's iptables chains as "table/chain".
func hostChains(ctx context.Context) (map[string]bool, error) {
	out, err := exec.CommandContext(ctx, "iptables-save").Output()
	if err != nil {
		return nil, fmt.Errorf("iptables-save: %w", err)
	}
	chains := map[string]bool{}
	table := ""
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":"):
			chains[table+"/"+strings.Fields(line[1:])[0]] = true
		}
	}
	return chains, nil
}
