package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/skiff-dev/skiff/internal/mounts"
)

// stopGrace is how long a daemon gets between SIGTERM and SIGKILL.
const stopGrace = 10 * time.Second

// Down removes every trace of the cluster of cfg.StateDir: its processes
// (kubelets and proxies first, then containers through containerd, then
// containerd, then the control plane, then any stray found by state dir
// or namespace), its mounts, namespaces, links, host iptables chains, the
// admin client config it installed, and the state dir. It works from the
// recorded state and, where that is missing after a crash, from the names
// cfg derives; it is safe to run on a cluster that is not there.
func Down(ctx context.Context, cfg Config) error {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.Logger
	st, err := loadState(cfg.stateFile())
	if err != nil {
		log.Warn("state unreadable, cleaning up by name", "err", err)
	}
	if st == nil {
		st = &State{}
	}
	if st.Config.Name != "" && st.Config.Name != cfg.Name {
		return fmt.Errorf("state dir %s belongs to cluster %q, not %q", cfg.StateDir, st.Config.Name, cfg.Name)
	}
	nodes := max(cfg.Nodes, st.Config.Nodes)
	var errs []error
	keep := func(err error) {
		if err != nil {
			log.Warn("down", "err", err)
			errs = append(errs, err)
		}
	}

	// Node agents first, so no kubelet restarts what is being removed.
	stopRecorded(ctx, st.Processes, func(name string) bool {
		return strings.HasSuffix(name, "/kubelet") || strings.HasSuffix(name, "/proxy")
	}, keep)
	var containerdNamespaces []string
	for i := 1; i <= nodes; i++ {
		nss, err := removeContainers(ctx, log, cfg.containerdSocket(i))
		keep(err)
		for _, ns := range nss {
			if !slices.Contains(containerdNamespaces, ns) {
				containerdNamespaces = append(containerdNamespaces, ns)
			}
		}
	}
	removePodCgroups(log, containerdNamespaces)
	stopRecorded(ctx, st.Processes, func(name string) bool { return strings.HasSuffix(name, "/containerd") }, keep)
	stopRecorded(ctx, st.Processes, func(string) bool { return true }, keep)

	namespaces := clusterNamespaces(cfg, st.Namespaces)
	keep(killStrays(ctx, cfg.StateDir, netnsIDs(namespaces)))
	keep(mounts.UnmountAll(cfg.StateDir))

	for _, ns := range namespaces {
		if netnsExists(ns) {
			keep(run(ctx, log, "ip", "netns", "delete", ns))
		}
	}
	for _, l := range clusterLinks(cfg, st.Links) {
		keep(deleteLink(ctx, log, l))
	}
	keep(removeHostChains(cfg, st.Chains))
	if st.IPForward != "" && st.IPForward != "1" {
		keep(os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte(st.IPForward), 0o644))
	}
	keep(removeAdminConfig(cfg, st.AdminConfig))
	if len(errs) == 0 {
		if err := os.RemoveAll(cfg.StateDir); err != nil {
			keep(fmt.Errorf("remove state dir: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("down left something behind (state kept in %s; run down again): %w", cfg.StateDir, err)
	}
	log.Info("local cluster removed", "stateDir", cfg.StateDir)
	return nil
}

// stopRecorded stops, in reverse start order, the live recorded processes
// whose name pick accepts.
func stopRecorded(ctx context.Context, procs []Process, pick func(string) bool, keep func(error)) {
	for i := len(procs) - 1; i >= 0; i-- {
		if p := procs[i]; pick(p.Name) {
			keep(p.Stop(ctx, stopGrace))
		}
	}
}

// removeAdminConfig removes the installed admin config (recorded, or
// where cfg puts it) only when it is still the one Up wrote: the user may
// have replaced it since.
func removeAdminConfig(cfg Config, installed string) error {
	if installed == "" {
		p, err := cfg.adminConfigPath()
		if err != nil || p == "" {
			return nil
		}
		installed = p
	}
	ours, err := os.ReadFile(cfg.AdminConfigCopy())
	if err != nil {
		return nil // no copy to compare with: leave the file alone
	}
	have, err := os.ReadFile(installed)
	if err != nil || string(have) != string(ours) {
		return nil
	}
	if err := os.Remove(installed); err != nil {
		return fmt.Errorf("remove admin config: %w", err)
	}
	return nil
}
