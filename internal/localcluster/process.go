package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// startProcess runs bin with args as a daemon of its own session (so it
// outlives the `up` command and a terminal's Ctrl-C), in node namespace
// netns when not empty, with output appended to logPath. The caller's
// process reaps it if it exits while the caller still runs.
func startProcess(name, netns, logPath string, bin string, args ...string) (Process, error) {
	argv := append([]string{bin}, args...)
	if netns != "" {
		// nsenter enters only the network namespace: the node's processes
		// share the host's mounts, so a pod namespace or rootfs mounted by
		// one (containerd, CNI) is seen by the others, as on a real node.
		argv = append([]string{"nsenter", "--net=" + netnsPath(netns), "--"}, argv...)
	}
	return spawn(name, netns, logPath, argv)
}

// spawn runs argv (already wrapped in nsenter for a node process).
func spawn(name, netns, logPath string, argv []string) (Process, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return Process{}, fmt.Errorf("start %s: %w", name, err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return Process{}, fmt.Errorf("start %s: %w", name, err)
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return Process{}, fmt.Errorf("start %s: %w", name, err)
	}
	// Reap the child should it die while we run; otherwise it is a zombie
	// that looks alive to kill(0). The goroutine ends when the child does.
	go func() { _ = cmd.Wait() }()
	st, err := procStartTime(cmd.Process.Pid)
	if err != nil {
		return Process{}, fmt.Errorf("start %s: %w", name, err)
	}
	return Process{Name: name, Pid: cmd.Process.Pid, Args: argv, Log: logPath, StartTime: st, Netns: netns}, nil
}

func netnsPath(name string) string { return filepath.Join("/run/netns", name) }

// procStat returns the state letter and start time of pid from
// /proc/<pid>/stat.
func procStat(pid int) (byte, uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name is in parentheses and may hold spaces: fields
	// count from after the last ')'.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	// fields[0] is field 3 (state); field 22 (starttime) is fields[19].
	if len(fields) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return fields[0][0], start, nil
}

// threadsLeft says whether a process whose main thread has exited still
// has other threads: until the last one has exited, its open files
// (listening sockets included) are not closed, so a successor binding the
// same address would fail. It reads the count in /proc/PID/status, which
// drops only as each thread is released; a listing of /proc/PID/task can
// stop short while threads exit under it.
func threadsLeft(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(data)) {
		if n, ok := strings.CutPrefix(line, "Threads:"); ok {
			count, err := strconv.Atoi(strings.TrimSpace(n))
			return err == nil && count > 1
		}
	}
	return false
}

func procStartTime(pid int) (uint64, error) {
	_, st, err := procStat(pid)
	return st, err
}

// Alive says whether p still runs: same pid, same start time, and not a
// zombie whose threads have all exited. A SIGKILLed Go process's main
// thread turns zombie before its other threads are gone and its sockets
// closed: taken for gone then, a restart raced its own predecessor for its
// listening address (seen in the e2e soak).
func (p Process) Alive() bool {
	state, start, err := procStat(p.Pid)
	if err != nil || start != p.StartTime {
		return false
	}
	return (state != 'Z' && state != 'X') || threadsLeft(p.Pid)
}

// Stop sends SIGTERM, waits up to grace, then SIGKILL, and waits for the
// process to go.
func (p Process) Stop(ctx context.Context, grace time.Duration) error {
	if !p.Alive() {
		return nil
	}
	_ = syscall.Kill(p.Pid, syscall.SIGTERM)
	if waitGone(ctx, grace, p.Alive) {
		return nil
	}
	_ = syscall.Kill(p.Pid, syscall.SIGKILL)
	if waitGone(ctx, 10*time.Second, p.Alive) {
		return nil
	}
	return fmt.Errorf("process %s (pid %d) survived SIGKILL", p.Name, p.Pid)
}

func waitGone(ctx context.Context, d time.Duration, alive func() bool) bool {
	deadline := time.Now().Add(d)
	for alive() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// procInfo is what the sweep needs of one process.
type procInfo struct {
	pid, ppid int
	cmdline   string
	netns     string // "net:[inode]"
	state     byte
}

func listProcs() ([]procInfo, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []procInfo
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue // gone meanwhile
		}
		p := procInfo{pid: pid}
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "PPid:"); ok {
				p.ppid, _ = strconv.Atoi(strings.TrimSpace(v))
			}
			if v, ok := strings.CutPrefix(line, "State:"); ok && len(strings.TrimSpace(v)) > 0 {
				p.state = strings.TrimSpace(v)[0]
			}
		}
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		p.cmdline = strings.ReplaceAll(string(cmd), "\x00", " ")
		p.netns, _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		out = append(out, p)
	}
	return out, nil
}

// strays finds every live process that belongs to the cluster although no
// record may say so: its command line names the state dir (every daemon,
// containerd shim and node process does), it runs in one of the cluster's
// node namespaces, or it descends from such a process (containers). The
// caller and its ancestors are never included.
func strays(stateDir string, netnsIDs map[string]bool) ([]procInfo, error) {
	procs, err := listProcs()
	if err != nil {
		return nil, err
	}
	self := map[int]bool{}
	byPid := map[int]procInfo{}
	for _, p := range procs {
		byPid[p.pid] = p
	}
	for pid := os.Getpid(); pid > 1; {
		self[pid] = true
		p, ok := byPid[pid]
		if !ok {
			break
		}
		pid = p.ppid
	}
	ours := map[int]bool{}
	for _, p := range procs {
		if self[p.pid] || p.state == 'Z' {
			continue
		}
		if strings.Contains(p.cmdline, stateDir+"/") || strings.HasSuffix(p.cmdline, stateDir+" ") || netnsIDs[p.netns] {
			ours[p.pid] = true
		}
	}
	// Descendants, to a fixed point: containers are children of shims.
	for changed := true; changed; {
		changed = false
		for _, p := range procs {
			if !ours[p.pid] && ours[p.ppid] && !self[p.pid] && p.state != 'Z' {
				ours[p.pid] = true
				changed = true
			}
		}
	}
	var out []procInfo
	for _, p := range procs {
		if ours[p.pid] {
			out = append(out, p)
		}
	}
	return out, nil
}

// killStrays SIGKILLs every stray and waits until none is left.
func killStrays(ctx context.Context, stateDir string, netnsIDs map[string]bool) error {
	for attempt := 0; attempt < 50; attempt++ {
		ps, err := strays(stateDir, netnsIDs)
		if err != nil {
			return err
		}
		if len(ps) == 0 {
			return nil
		}
		for _, p := range ps {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	ps, _ := strays(stateDir, netnsIDs)
	var names []string
	for _, p := range ps {
		names = append(names, fmt.Sprintf("%d (%s)", p.pid, p.cmdline))
	}
	return errors.New("processes survived SIGKILL: " + strings.Join(names, ", "))
}
