// Package netnstest gives the proxy's tests scratch network namespaces:
// named ones (so `ip netns exec` works too), code run on an OS thread inside
// them, and the clean-up of everything they made.
//
// It must never touch the test process's own namespace beyond creating and
// deleting the named namespaces: all links, addresses and rules are made
// inside them and vanish with them.
package netnstest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// Require fails the test unless it runs as root with the named binaries; it
// skips instead when not in CI (CI installs everything).
func Require(t testing.TB, binaries ...string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, b := range append([]string{"ip"}, binaries...) {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "network namespace test needs " + strings.Join(missing, ", ")
	if os.Getenv("CI") == "" {
		t.Skip(msg)
	}
	t.Fatal(msg)
}

// NS is a named network namespace made for one test.
type NS struct {
	Name   string
	Handle netns.NsHandle
}

var seq atomic.Int64

// New makes a fresh named network namespace with lo up and deletes it when
// the test ends.
func New(t testing.TB, prefix string) *NS {
	t.Helper()
	name := fmt.Sprintf("sk%s%d-%d", prefix, os.Getpid()%100000, seq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	h, err := netns.GetFromName(name)
	if err != nil {
		_ = exec.Command("ip", "netns", "del", name).Run()
		t.Fatalf("open netns %s: %v", name, err)
	}
	ns := &NS{Name: name, Handle: h}
	t.Cleanup(func() {
		h.Close()
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ns.MustExec(t, "ip", "link", "set", "lo", "up")
	return ns
}

// Exec runs a command inside the namespace and returns its combined output.
func (n *NS) Exec(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s in %s: %w: %s", strings.Join(args, " "), n.Name, err, out)
	}
	return string(out), nil
}

// MustExec is Exec that fails the test on error.
func (n *NS) MustExec(t testing.TB, args ...string) string {
	t.Helper()
	out, err := n.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Do runs fn on an OS thread inside the namespace and waits for it. Sockets
// fn opens belong to the namespace, and so do processes it starts. The
// thread is thrown away afterwards, so the namespace never leaks into other
// goroutines.
func (n *NS) Do(fn func() error) error { return <-n.Go(fn) }

// Go starts fn on an OS thread inside the namespace and returns at once;
// the returned channel yields fn's error. Use it for loops that run until
// their context ends.
func (n *NS) Go(fn func() error) <-chan error {
	errc := make(chan error, 1)
	go func() {
		// No UnlockOSThread: the runtime ends a thread still locked when
		// its goroutine exits, which is what a thread in a foreign
		// namespace must do.
		runtime.LockOSThread()
		if err := netns.Set(n.Handle); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", n.Name, err)
			return
		}
		errc <- fn()
	}()
	return errc
}
