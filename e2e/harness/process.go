package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skiff-dev/skiff/internal/localcluster"
)

// Process returns the current process of a component ("apiserver",
// "node-1/kubelet"): the one Up started, or the harness's restart of it.
func (c *Cluster) Process(name string) (localcluster.Process, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.procs[name]
	return p, ok
}

// ProcessNames lists every known component process name.
func (c *Cluster) ProcessNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for n := range c.procs {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Dead lists the components whose current process no longer runs.
func (c *Cluster) Dead() []string {
	var dead []string
	for _, n := range c.ProcessNames() {
		if p, _ := c.Process(n); !p.Alive() {
			dead = append(dead, n)
		}
	}
	return dead
}

// Kill sends SIGKILL to a component and waits until it is gone, as a crash
// would leave it: no graceful shutdown, no lease released.
func (c *Cluster) Kill(ctx context.Context, name string) error {
	p, ok := c.Process(name)
	if !ok {
		return fmt.Errorf("kill %s: no such process (known: %s)", name, strings.Join(c.ProcessNames(), ", "))
	}
	if !p.Alive() {
		return fmt.Errorf("kill %s: pid %d is not running", name, p.Pid)
	}
	if err := syscall.Kill(p.Pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %s (pid %d): %w", name, p.Pid, err)
	}
	// Stop waits for the process to go (it is already SIGKILLed).
	if err := p.Stop(ctx, 10*time.Second); err != nil {
		return fmt.Errorf("kill %s: %w", name, err)
	}
	c.log.Info("killed", "process", name, "pid", p.Pid)
	return nil
}

// Terminate stops a component gracefully (SIGTERM, then SIGKILL after
// grace), as an operator stopping a service does.
func (c *Cluster) Terminate(ctx context.Context, name string, grace time.Duration) error {
	p, ok := c.Process(name)
	if !ok {
		return fmt.Errorf("stop %s: no such process", name)
	}
	if err := p.Stop(ctx, grace); err != nil {
		return fmt.Errorf("stop %s: %w", name, err)
	}
	return nil
}

// Restart starts a killed component again with the command line it last
// ran with (inside its node's namespace for node processes: the recorded
// command line enters it), appending to the same log. localcluster has no
// restart of its own; this re-runs its record rather than re-deriving the
// flags.
func (c *Cluster) Restart(ctx context.Context, name string) error {
	p, ok := c.Process(name)
	if !ok {
		return fmt.Errorf("restart %s: no such process", name)
	}
	if p.Alive() {
		return fmt.Errorf("restart %s: pid %d still runs: kill it first", name, p.Pid)
	}
	return c.launch(name, p, p.Args)
}

// Args is the command line a component last ran with.
func (c *Cluster) Args(name string) []string {
	p, _ := c.Process(name)
	return slices.Clone(p.Args)
}

// RestartWith kills a component (when it runs) and starts it again with
// exactly args, for a test that needs other flags and then restores the
// originals.
func (c *Cluster) RestartWith(ctx context.Context, name string, args []string) error {
	p, ok := c.Process(name)
	if !ok {
		return fmt.Errorf("restart %s: no such process", name)
	}
	if p.Alive() {
		if err := c.Kill(ctx, name); err != nil {
			return err
		}
	}
	return c.launch(name, p, args)
}

func (c *Cluster) launch(name string, old localcluster.Process, args []string) error {
	np, err := startDaemon(name, old.Netns, old.Log, args)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.procs[name] = np
	c.restarted = append(c.restarted, np)
	c.mu.Unlock()
	c.log.Info("restarted", "process", name, "pid", np.Pid)
	return nil
}

// startDaemon runs argv in its own session with output appended to log,
// and records its start time so a recycled pid is never taken for it.
func startDaemon(name, netns, logPath string, argv []string) (localcluster.Process, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return localcluster.Process{}, fmt.Errorf("restart %s: %w", name, err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return localcluster.Process{}, fmt.Errorf("restart %s: %w", name, err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "\n===== e2e: restarting %s at %s =====\n", name, time.Now().UTC().Format(time.RFC3339))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return localcluster.Process{}, fmt.Errorf("restart %s: %w", name, err)
	}
	go func() { _ = cmd.Wait() }() // reap it should it die while the suite runs
	st, err := startTime(cmd.Process.Pid)
	if err != nil {
		return localcluster.Process{}, fmt.Errorf("restart %s: %w", name, err)
	}
	return localcluster.Process{Name: name, Pid: cmd.Process.Pid, Args: argv, Log: logPath, StartTime: st, Netns: netns}, nil
}

// startTime is field 22 of /proc/<pid>/stat, which Process.Alive compares.
func startTime(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// StartReplica starts another instance of component `of` (the
// controller-manager or the scheduler) named name, with the same command
// line plus extraArgs (a later flag wins, so e.g. another --http-addr),
// logging to its own file. Kill, Restart and Down treat it like the
// others.
func (c *Cluster) StartReplica(ctx context.Context, of, name string, extraArgs ...string) error {
	p, ok := c.Process(of)
	if !ok {
		return fmt.Errorf("replica of %s: no such process", of)
	}
	if _, taken := c.Process(name); taken {
		return fmt.Errorf("replica %s: name taken", name)
	}
	old := localcluster.Process{Netns: p.Netns, Log: filepath.Join(c.LogDir(), strings.ReplaceAll(name, "/", "-")+".log")}
	return c.launch(name, old, append(slices.Clone(p.Args), extraArgs...))
}

// StopReplica stops a replica StartReplica started (SIGTERM, as an
// operator scaling back does) and forgets it.
func (c *Cluster) StopReplica(ctx context.Context, name string) error {
	p, ok := c.Process(name)
	if !ok {
		return fmt.Errorf("stop replica %s: no such process", name)
	}
	if err := p.Stop(ctx, 10*time.Second); err != nil {
		return fmt.Errorf("stop replica %s: %w", name, err)
	}
	c.mu.Lock()
	delete(c.procs, name)
	c.mu.Unlock()
	return nil
}

// ExitReport shows, for each named component, its last log lines: why a
// component that should run has exited.
func (c *Cluster) ExitReport(names []string) string {
	var b strings.Builder
	for _, n := range names {
		p, _ := c.Process(n)
		fmt.Fprintf(&b, "\n--- %s (pid %d) exited; last lines of %s:\n%s\n", n, p.Pid, p.Log, tailLines(p.Log, 40))
	}
	return b.String()
}
