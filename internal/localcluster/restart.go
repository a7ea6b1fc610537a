package localcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// Restart stops the cluster's process name ("apiserver", "node-2/kubelet")
// when it runs and starts it again with argv (nil: the command line it last
// ran with, as recorded in Process.Args), in the same node namespace and
// log, and records it so Down stops it. The end-to-end suite uses it to
// crash components and bring them back, or to run one with other flags.
func Restart(ctx context.Context, cfg Config, name string, argv []string, grace time.Duration) (Process, error) {
	cfg = cfg.WithDefaults()
	var out Process
	err := withStateLock(cfg, func(st *State) error {
		i := slices.IndexFunc(st.Processes, func(p Process) bool { return p.Name == name })
		if i < 0 {
			return fmt.Errorf("restart %s: no such process in %s", name, cfg.StateDir)
		}
		old := st.Processes[i]
		if err := old.Stop(ctx, grace); err != nil {
			return fmt.Errorf("restart %s: %w", name, err)
		}
		if argv == nil {
			argv = old.Args
		}
		if f, err := os.OpenFile(old.Log, os.O_WRONLY|os.O_APPEND, 0); err == nil {
			fmt.Fprintf(f, "\n===== localcluster: restarting %s at %s =====\n", name, time.Now().UTC().Format(time.RFC3339))
			f.Close()
		}
		p, err := spawn(name, old.Netns, old.Log, argv)
		if err != nil {
			return err
		}
		st.Processes[i] = p
		out = p
		cfg.Logger.Info("restarted", "process", name, "pid", p.Pid)
		return nil
	})
	return out, err
}

// Kill sends SIGKILL to the cluster's process name, as a crash would, and
// waits until it is gone. The record stays, so Restart brings it back.
func Kill(ctx context.Context, cfg Config, name string) error {
	cfg = cfg.WithDefaults()
	st, err := loadState(cfg.stateFile())
	if err != nil {
		return err
	}
	if st == nil {
		return fmt.Errorf("kill %s: no local cluster in %s", name, cfg.StateDir)
	}
	i := slices.IndexFunc(st.Processes, func(p Process) bool { return p.Name == name })
	if i < 0 {
		return fmt.Errorf("kill %s: no such process in %s", name, cfg.StateDir)
	}
	p := st.Processes[i]
	if !p.Alive() {
		return nil
	}
	if err := unix.Kill(p.Pid, unix.SIGKILL); err != nil {
		return fmt.Errorf("kill %s: %w", name, err)
	}
	if !waitGone(ctx, 10*time.Second, p.Alive) {
		return fmt.Errorf("kill %s: pid %d survived SIGKILL", name, p.Pid)
	}
	return nil
}

// withStateLock runs fn on the recorded state under an exclusive lock of
// the state dir and saves what fn changed, so concurrent restarts never
// lose each other's records.
func withStateLock(cfg Config, fn func(*State) error) error {
	lock, err := os.OpenFile(filepath.Join(cfg.StateDir, "state.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("lock state: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock state: %w", err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN) //nolint:errcheck // closing releases it anyway
	st, err := loadState(cfg.stateFile())
	if err != nil {
		return err
	}
	if st == nil {
		return fmt.Errorf("no local cluster in %s", cfg.StateDir)
	}
	if err := fn(st); err != nil {
		return err
	}
	return st.save(cfg.stateFile())
}
