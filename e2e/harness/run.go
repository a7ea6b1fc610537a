package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/skiff-dev/skiff/internal/imagebuild"
)

// Result is what a command printed and how it exited.
type Result struct {
	Cmd            string
	Stdout, Stderr string
	ExitCode       int
}

// String shows the command and everything it printed, for failure
// messages.
func (r Result) String() string {
	return fmt.Sprintf("$ %s\n(exit %d)\nstdout:\n%s\nstderr:\n%s", r.Cmd, r.ExitCode, r.Stdout, r.Stderr)
}

// Err is nil when the command exited 0, else an error that shows it all.
func (r Result) Err() error {
	if r.ExitCode == 0 {
		return nil
	}
	return errors.New(r.String())
}

// CommandTimeout bounds every single command the harness runs, so a hung
// ctl or wget fails a poll instead of the whole suite.
const CommandTimeout = 45 * time.Second

// run runs argv with a timeout. The error is set only when the command
// could not run or timed out; a non-zero exit is in ExitCode.
func run(ctx context.Context, argv ...string) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	r := Result{Cmd: strings.Join(argv, " "), Stdout: out.String(), Stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.ExitCode = -1
		return r, fmt.Errorf("%s: timed out after %v: %w\n%s", r.Cmd, CommandTimeout, ctx.Err(), r)
	case errors.As(err, &exit):
		r.ExitCode = exit.ExitCode()
		return r, nil
	case err != nil:
		r.ExitCode = -1
		return r, fmt.Errorf("%s: %w", r.Cmd, err)
	}
	return r, nil
}

// Ctl runs the built ctl with the cluster's admin config, as a user types
// it.
func (c *Cluster) Ctl(ctx context.Context, args ...string) (Result, error) {
	return run(ctx, append([]string{c.CtlBin, "--client-config", c.AdminConfig}, args...)...)
}

// CtlOK runs ctl and returns its standard output, or an error showing the
// whole run when it did not exit 0.
func (c *Cluster) CtlOK(ctx context.Context, args ...string) (string, error) {
	r, err := c.Ctl(ctx, args...)
	if err != nil {
		return "", err
	}
	return r.Stdout, r.Err()
}

// InNode runs argv in node i's network namespace (as `ip netns exec`), as
// a program on that machine would.
func (c *Cluster) InNode(ctx context.Context, i int, argv ...string) (Result, error) {
	return run(ctx, append([]string{"ip", "netns", "exec", c.Config.Netns(i)}, argv...)...)
}

// FetchFromNode fetches an http URL from node i and returns the body. It
// uses the host's static busybox wget under timeout (busybox's own -T is
// unreliable).
func (c *Cluster) FetchFromNode(ctx context.Context, i int, url string) (string, error) {
	r, err := c.InNode(ctx, i, "timeout", "5", imagebuild.BusyboxBinary, "wget", "-qO-", url)
	if err != nil {
		return "", err
	}
	return r.Stdout, r.Err()
}

// Ctr runs containerd's ctr against node i's containerd in the kubelet's
// containerd namespace.
func (c *Cluster) Ctr(ctx context.Context, i int, args ...string) (Result, error) {
	return run(ctx, append([]string{"ctr", "--connect-timeout", "5s", "-a", c.ContainerdSocket(i), "-n", KubeletContainerdNamespace}, args...)...)
}

// KubeletContainerdNamespace is the containerd namespace the kubelet runs
// pods in (kubelet/runtime.DefaultNamespace).
const KubeletContainerdNamespace = "skiff"
