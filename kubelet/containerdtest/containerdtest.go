// Package containerdtest starts a private containerd daemon for tests, in
// a temporary directory, with the CRI plugin disabled. It never touches the
// system containerd.
package containerdtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
)

const config = `version = 2
disabled_plugins = ["io.containerd.grpc.v1.cri"]
`

// RequireRoot fails (or, outside CI, skips) a test that needs root and the
// named binaries.
func RequireRoot(t testing.TB, binaries ...string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, b := range binaries {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") == "" {
		t.Skipf("needs %v", missing)
	}
	t.Fatalf("needs %v (CI must install them)", missing)
}

// Daemon is a running private containerd.
type Daemon struct {
	Dir     string // root of its state
	Address string // its socket
}

// Start runs containerd in a temp dir until the test ends. It needs root,
// containerd and runc.
func Start(t testing.TB) *Daemon {
	t.Helper()
	RequireRoot(t, "containerd", "runc")
	// A short path: the socket path must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "ctrd")
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{Dir: dir, Address: filepath.Join(dir, "c.sock")}
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("containerd", "--config", cfg, "--root", filepath.Join(dir, "root"),
		"--state", filepath.Join(dir, "state"), "--address", d.Address, "--log-level", "warn")
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// No Pdeathsig: it fires when the forking OS thread exits, and Go
	// discards threads (network namespace set-up does), which would kill
	// containerd mid-test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		// Kill the shims and their containers first: they outlive containerd.
		killShims(t, d)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		unmountAll(filepath.Join(dir, "root"))
		unmountAll(filepath.Join(dir, "state"))
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("remove containerd dir: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		if c, err := containerd.New(d.Address); err == nil {
			ok, _ := c.IsServing(ctx)
			c.Close()
			if ok {
				return d
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("containerd did not start: %s", readLog(dir))
		case <-done:
			t.Fatalf("containerd exited: %s", readLog(dir))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Client connects to the daemon; the client is closed when the test ends.
func (d *Daemon) Client(t testing.TB, namespace string) *containerd.Client {
	t.Helper()
	c, err := containerd.New(d.Address, containerd.WithDefaultNamespace(namespace))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func killShims(t testing.TB, d *Daemon) {
	c, err := containerd.New(d.Address)
	if err != nil {
		return
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nss, err := c.NamespaceService().List(ctx)
	if err != nil {
		return
	}
	for _, ns := range nss {
		nctx := namespacedContext(ctx, ns)
		ctrs, err := c.Containers(nctx)
		if err != nil {
			continue
		}
		for _, ctr := range ctrs {
			if task, err := ctr.Task(nctx, nil); err == nil {
				_ = task.Kill(nctx, syscall.SIGKILL)
				if ch, err := task.Wait(nctx); err == nil {
					select {
					case <-ch:
					case <-time.After(5 * time.Second):
					}
				}
				if _, err := task.Delete(nctx); err != nil {
					t.Logf("delete task %s: %v", ctr.ID(), err)
				}
			}
		}
	}
}

func readLog(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
	return fmt.Sprintf("log:\n%s", b)
}

// unmountAll lazily unmounts every mount under dir (snapshots, shm), so
// RemoveAll does not fail on busy mounts.
func unmountAll(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	for _, mp := range mountPointsUnder(string(data), dir) {
		_ = syscall.Unmount(mp, syscall.MNT_DETACH)
	}
}
