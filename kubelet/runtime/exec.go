package runtime

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/google/uuid"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TerminalSize is a TTY's width and height in characters.
type TerminalSize struct{ Width, Height uint32 }

// ExecOptions describe a command to run in a running container.
type ExecOptions struct {
	Command []string
	// Stdin, when set, feeds the process; its EOF closes the process's
	// stdin.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	TTY            bool
	// Resize carries window size changes of the TTY; nil when none.
	Resize <-chan TerminalSize
	// Size is the initial TTY size.
	Size *TerminalSize
}

// Exec runs a command in the container's namespaces and returns its exit
// code once it ends. Cancelling ctx kills the process.
func (r *Runtime) Exec(ctx context.Context, containerID string, o ExecOptions) (int, error) {
	ctr, err := r.client.LoadContainer(ctx, containerID)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", containerID, err)
	}
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return -1, fmt.Errorf("exec in %s: %w", containerID, ErrNotRunning)
	}
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", containerID, err)
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", containerID, err)
	}
	pspec := *spec.Process
	pspec.Args = o.Command
	pspec.Terminal = o.TTY
	if o.TTY && o.Size != nil {
		pspec.ConsoleSize = &specs.Box{Width: uint(o.Size.Width), Height: uint(o.Size.Height)}
	}

	stdout, stderr := o.Stdout, o.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	var stdin io.Reader
	stdinDone := make(chan struct{})
	if o.Stdin != nil {
		stdin = &eofNotifier{r: o.Stdin, done: stdinDone}
	}
	ioOpts := []cio.Opt{cio.WithStreams(stdin, stdout, stderr)}
	if r.stateDir != "" {
		ioOpts = append(ioOpts, cio.WithFIFODir(r.stateDir))
	}
	if o.TTY {
		ioOpts = append(ioOpts, cio.WithTerminal)
	}
	execID := "exec-" + uuid.NewString()[:18]
	proc, err := task.Exec(ctx, execID, &pspec, cio.NewCreator(ioOpts...))
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", containerID, err)
	}
	// The process must go whatever happens, so its delete does not depend
	// on ctx.
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := proc.Delete(dctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			r.log.Warn("delete exec process", "container", containerID, "exec", execID, "err", err)
		}
	}()
	statusC, err := proc.Wait(ctx)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: wait: %w", containerID, err)
	}
	if err := proc.Start(ctx); err != nil {
		return -1, fmt.Errorf("exec in %s: start: %w", containerID, err)
	}
	if o.TTY && o.Size != nil {
		if err := proc.Resize(ctx, o.Size.Width, o.Size.Height); err != nil {
			r.log.Debug("resize exec tty", "err", err)
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	loopCtx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	if o.Stdin != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-stdinDone:
				if err := proc.CloseIO(loopCtx, containerd.WithStdinCloser); err != nil && loopCtx.Err() == nil {
					r.log.Debug("close exec stdin", "err", err)
				}
			case <-loopCtx.Done():
			}
		}()
	}
	if o.Resize != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case sz, ok := <-o.Resize:
					if !ok {
						return
					}
					if err := proc.Resize(loopCtx, sz.Width, sz.Height); err != nil && loopCtx.Err() == nil {
						r.log.Debug("resize exec tty", "err", err)
					}
				case <-loopCtx.Done():
					return
				}
			}
		}()
	}
	select {
	case st := <-statusC:
		// Wait for the output to drain before reporting the exit.
		proc.IO().Wait()
		code, _, err := st.Result()
		if err != nil {
			return -1, fmt.Errorf("exec in %s: %w", containerID, err)
		}
		return int(code), nil
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}

// eofNotifier closes done when the reader hits its end, so the process's
// stdin can be closed then.
type eofNotifier struct {
	r    io.Reader
	done chan struct{}
	once sync.Once
}

func (e *eofNotifier) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.once.Do(func() { close(e.done) })
	}
	return n, err
}
