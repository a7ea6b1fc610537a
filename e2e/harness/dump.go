package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/skiff-dev/skiff/internal/localcluster"
)

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
