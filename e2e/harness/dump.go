package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/skiff-dev/skiff/internal/localcluster"
)

// DumpOnce dumps the cluster's state to w unless it did for key already,
// and says whether it did: a failed test dumps at its first clean-up,
// before the others delete what it made, and only once.
func (c *Cluster) DumpOnce(ctx context.Context, key string, w io.Writer) bool {
	c.mu.Lock()
	if c.dumped == nil {
		c.dumped = map[string]bool{}
	}
	done := c.dumped[key]
	c.dumped[key] = true
	c.mu.Unlock()
	if done {
		return false
	}
	c.Dump(ctx, w)
	return true
}

// Dump writes what a person needs to read a failure: the processes, every
// kind's listing, the events, each node's containers, and the tail of
// every component log.
func (c *Cluster) Dump(ctx context.Context, w io.Writer) {
	fmt.Fprintf(w, "\n======== cluster %s (state %s) ========\n", c.Config.Name, c.Config.StateDir)
	var procs []localcluster.ProcessStatus
	for _, n := range c.ProcessNames() {
		p, _ := c.Process(n)
		procs = append(procs, localcluster.ProcessStatus{Process: p, Running: p.Alive()})
	}
	_ = localcluster.PrintStatus(w, procs)
	if c.Etcd != nil {
		c.dumpEtcd(ctx, w)
	}
	for _, args := range [][]string{
		{"get", "nodes", "-o", "wide"},
		{"get", "deployments,replicasets,services,endpoints", "-A", "-o", "wide"},
		{"get", "pods", "-A", "-o", "wide"},
		{"get", "leases", "-A"},
		{"get", "events", "-A", "--sort-by", ".lastTimestamp"},
	} {
		r, err := c.Ctl(ctx, args...)
		fmt.Fprintf(w, "\n--- ctl %v\n%s%s", args, r.Stdout, r.Stderr)
		if err != nil {
			fmt.Fprintf(w, "(%v)\n", err)
		}
	}
	for i := 1; i <= c.Config.Nodes; i++ {
		r, _ := c.Ctr(ctx, i, "tasks", "ls")
		fmt.Fprintf(w, "\n--- %s containerd tasks\n%s%s", c.Config.NodeName(i), r.Stdout, r.Stderr)
	}
	logs, _ := filepath.Glob(filepath.Join(c.LogDir(), "*.log"))
	slices.Sort(logs)
	for _, l := range logs {
		if filepath.Base(l) == "audit.log" {
			continue // one JSON line per write: noise next to the daemons' logs
		}
		fmt.Fprintf(w, "\n--- tail of %s\n%s\n", l, tailLines(l, 60))
	}
	fmt.Fprintf(w, "======== end of cluster %s ========\n", c.Config.Name)
}

// tailLines returns the last n lines of a file (at most 32 KiB of them).
func tailLines(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	const maxBytes = 32 << 10
	if len(data) > maxBytes {
		data = data[len(data)-maxBytes:]
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// SaveLogs copies every component log to dir (emptied first), so they
// outlive Down, which removes the state dir.
func (c *Cluster) SaveLogs(dir string) (string, error) {
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("save logs: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("save logs: %w", err)
	}
	logs, err := filepath.Glob(filepath.Join(c.LogDir(), "*.log"))
	if err != nil {
		return "", fmt.Errorf("save logs: %w", err)
	}
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err != nil {
			return "", fmt.Errorf("save logs: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(l)), data, 0o644); err != nil {
			return "", fmt.Errorf("save logs: %w", err)
		}
	}
	return dir, nil
}

// dumpEtcd shows the external etcd cluster's members and its leader (the
// members' logs are in the log dir, tailed with the others).
func (c *Cluster) dumpEtcd(ctx context.Context, w io.Writer) {
	fmt.Fprintf(w, "\n--- external etcd\n")
	for _, m := range c.Etcd.Members {
		fmt.Fprintf(w, "%s\tpid %d\trunning %v\t%s\n", m.Name, m.Pid(), m.Alive(), m.ClientURL)
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if l, err := c.Etcd.Leader(lctx); err != nil {
		fmt.Fprintf(w, "leader: %v\n", err)
	} else {
		fmt.Fprintf(w, "leader: %s\n", l.Name)
	}
}
