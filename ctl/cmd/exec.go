package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// defaultContainerAnnotation names the container exec and logs pick when
// none is given, as in kubectl.
const defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

func newExecCmd(streams IOStreams, f *Factory) *cobra.Command {
	var container string
	var stdin, tty bool
	c := &cobra.Command{
		Use:   "exec (POD | TYPE/NAME) [-c CONTAINER] [flags] -- COMMAND [args...]",
		Short: "Execute a command in a container",
		Long: `Execute a command in a container of a pod.

The command's exit code becomes ctl's exit code. With -i, ctl's standard input
is passed to the command; with -t too, the terminal is put in raw mode and
window size changes are passed on, for interactive shells.`,
		Example: `  # Get output from running the 'date' command in pod mypod, using the first container by default
  ctl exec mypod -- date

  # Get output from running 'date' in container ruby-container of pod mypod
  ctl exec mypod -c ruby-container -- date

  # Open an interactive shell in pod mypod
  ctl exec -it mypod -- sh

  # Run a command in the first pod of a deployment
  ctl exec deploy/web -- cat /etc/resolv.conf`,
		ValidArgsFunction: completePods(f),
		RunE: func(c *cobra.Command, args []string) error {
			dash := c.ArgsLenAtDash()
			if len(args) == 0 || dash == 0 {
				return usageErrorf(c, "exec requires a pod name and a command")
			}
			if dash < 0 {
				return usageErrorf(c, "exec needs the command after --, e.g. ctl exec %s -- date", args[0])
			}
			if dash != 1 {
				return usageErrorf(c, "exactly one pod name goes before --, got %d", dash)
			}
			if len(args) == 1 {
				return usageErrorf(c, "you must specify at least one command for the container")
			}
			return runExec(c.Context(), streams, f, args[0], container, args[1:], stdin, tty)
		},
	}
	c.Flags().StringVarP(&container, "container", "c", "", "Container name. If omitted, use the kubectl.kubernetes.io/default-container annotation or the first container in the pod")
	c.Flags().BoolVarP(&stdin, "stdin", "i", false, "Pass stdin to the container")
	c.Flags().BoolVarP(&tty, "tty", "t", false, "Stdin is a TTY")
	return c
}

// resolvePod finds the pod a command targets: "NAME", "pod/NAME", or the
// first pod of "deploy/NAME", "rs/NAME" or "svc/NAME".
func resolvePod(ctx context.Context, streams IOStreams, cl *client.Client, ns, target string) (*api.Pod, error) {
	obj, info, err := getTarget(ctx, cl, ns, target)
	if err != nil {
		return nil, err
	}
	return podForObject(ctx, streams, cl, ns, obj, info)
}

// getTarget reads the object "NAME" (a pod) or "TYPE/NAME" names.
func getTarget(ctx context.Context, cl *client.Client, ns, target string) (kinds.Object, *kinds.Info, error) {
	kind, name, hasKind := strings.Cut(target, "/")
	if !hasKind {
		kind, name = "pods", target
	}
	info, err := lookupKind(kind)
	if err != nil {
		return nil, nil, err
	}
	obj, err := client.ForKind(cl, info).Get(ctx, ns, name)
	if err != nil {
		return nil, nil, withObject(err, info, name)
	}
	return obj, info, nil
}

// podForObject is obj itself when it is a pod, else the pod its selector
// picks first by sortPods.
func podForObject(ctx context.Context, streams IOStreams, cl *client.Client, ns string, obj kinds.Object, info *kinds.Info) (*api.Pod, error) {
	name := obj.GetMetadata().GetName()
	var selector string
	switch o := obj.(type) {
	case *api.Pod:
		return o, nil
	case *api.Deployment:
		selector = labelSelectorString(o.GetSpec().GetSelector())
	case *api.ReplicaSet:
		selector = labelSelectorString(o.GetSpec().GetSelector())
	case *api.Service:
		selector = labelSelectorString(&api.LabelSelector{MatchLabels: o.GetSpec().GetSelector()})
	default:
		return nil, fmt.Errorf("cannot attach to %s: only pods, deployments, replica sets and services", info.Resource)
	}
	if selector == "" {
		return nil, fmt.Errorf("%s %q has no selector to find its pods by", strings.ToLower(info.Kind), name)
	}
	pods, _, err := cl.Pods().List(ctx, ns, client.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	var live []*api.Pod
	for _, p := range pods {
		if p.GetMetadata().GetDeletionTimestamp() == nil {
			live = append(live, p)
		}
	}
	if len(live) == 0 {
		return nil, fmt.Errorf("no pods found for %s %q", strings.ToLower(info.Kind), name)
	}
	sortPods(live)
	if len(live) > 1 {
		fmt.Fprintf(streams.ErrOut, "Found %d pods, using pod/%s\n", len(live), live[0].GetMetadata().GetName())
	}
	return live[0], nil
}

// sortPods puts running, ready, older pods first: the one kubectl picks.
func sortPods(pods []*api.Pod) {
	rank := func(p *api.Pod) int {
		r := 0
		if p.GetStatus().GetPhase() != "Running" {
			r += 2
		}
		if !conditionIsTrue(p.GetStatus().GetConditions(), "Ready") {
			r++
		}
		return r
	}
	sort.SliceStable(pods, func(i, j int) bool {
		if ri, rj := rank(pods[i]), rank(pods[j]); ri != rj {
			return ri < rj
		}
		return pods[i].GetMetadata().GetCreationTimestamp().AsTime().Before(pods[j].GetMetadata().GetCreationTimestamp().AsTime())
	})
}

func conditionIsTrue(conds []*api.Condition, typ string) bool {
	for _, c := range conds {
		if c.GetType() == typ {
			return c.GetStatus() == "True"
		}
	}
	return false
}

// pickContainer checks a named container, or picks the default one and
// says so when the pod has several.
func pickContainer(streams IOStreams, pod *api.Pod, container string) (string, error) {
	var names []string
	for _, c := range pod.GetSpec().GetContainers() {
		names = append(names, c.GetName())
	}
	if container != "" {
		for _, c := range append(append([]*api.Container{}, pod.GetSpec().GetContainers()...), pod.GetSpec().GetInitContainers()...) {
			if c.GetName() == container {
				return container, nil
			}
		}
		return "", fmt.Errorf("container %s is not valid for pod %s", container, pod.GetMetadata().GetName())
	}
	if def := pod.GetMetadata().GetAnnotations()[defaultContainerAnnotation]; def != "" {
		return def, nil
	}
	if len(names) == 0 {
		return "", fmt.Errorf("pod %s has no containers", pod.GetMetadata().GetName())
	}
	if len(names) > 1 {
		fmt.Fprintf(streams.ErrOut, "Defaulted container %q out of: %s\n", names[0], strings.Join(names, ", "))
	}
	return names[0], nil
}

// terminalFd returns the file descriptor of r when it is a terminal.
func terminalFd(r any) (int, bool) {
	f, ok := r.(interface{ Fd() uintptr })
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

func runExec(ctx context.Context, streams IOStreams, f *Factory, target, container string, command []string, withStdin, tty bool) error {
	cl, ns, err := f.clientInNamespace(ctx)
	if err != nil {
		return err
	}
	start, err := execTarget(ctx, streams, cl, ns, target, container)
	if err != nil {
		return err
	}
	inFd, inIsTerm := terminalFd(streams.In)
	restore := func() {}
	if tty && !(withStdin && inIsTerm) {
		if withStdin {
			fmt.Fprintln(streams.ErrOut, "Unable to use a TTY - input is not a terminal or the right kind of file")
		}
		tty = false
	}
	start.Command, start.Stdin, start.Tty = command, withStdin, tty
	rc := remoteCommand{start: start, in: streams.In, out: streams.Out, errOut: streams.ErrOut, resizeFd: -1}
	if tty {
		if w, h, err := term.GetSize(inFd); err == nil {
			start.Size = &api.TerminalSize{Width: uint32(w), Height: uint32(h)}
		}
		old, err := term.MakeRaw(inFd)
		if err != nil {
			return fmt.Errorf("set the terminal to raw mode: %w", err)
		}
		restore = sync.OnceFunc(func() { _ = term.Restore(inFd, old) })
		defer restore()
		rc.resizeFd = inFd
	}

	code, err := rc.run(ctx, cl)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil // interrupted: the command's end is not ours to report
		}
		return err
	}
	if code != 0 {
		restore() // the message needs a cooked terminal
		fmt.Fprintf(streams.ErrOut, "command terminated with exit code %d\n", code)
		return &ExitError{Code: code}
	}
	return nil
}

// execTarget resolves the pod ("NAME" or "TYPE/NAME") and container a
// command runs in; completed pods are refused, as kubectl refuses them.
func execTarget(ctx context.Context, streams IOStreams, cl *client.Client, ns, target, container string) (*api.ExecStart, error) {
	pod, err := resolvePod(ctx, streams, cl, ns, target)
	if err != nil {
		return nil, err
	}
	container, err = pickContainer(streams, pod, container)
	if err != nil {
		return nil, err
	}
	if p := pod.GetStatus().GetPhase(); p == "Succeeded" || p == "Failed" {
		return nil, fmt.Errorf("cannot exec into a container in a completed pod; current phase is %s", p)
	}
	return &api.ExecStart{Namespace: pod.GetMetadata().GetNamespace(), Pod: pod.GetMetadata().GetName(), Container: container}, nil
}

// remoteCommand is one command run in a container over the API's Exec
// stream: exec runs the user's, cp runs tar.
type remoteCommand struct {
	start       *api.ExecStart
	in          io.Reader // read until EOF when start.Stdin, then the remote stdin is closed
	out, errOut io.Writer
	resizeFd    int // with start.Tty, the terminal whose size changes are sent; -1 for none
}

// run runs the command until it exits and returns its exit code; an error
// means the stream failed or out/errOut refused a write.
func (rc remoteCommand) run(ctx context.Context, cl *client.Client) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := cl.API.Exec(ctx)
	if err != nil {
		return 0, err
	}
	var sendMu sync.Mutex
	send := func(in *api.ExecInput) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(in)
	}
	if err := send(&api.ExecInput{Start: rc.start}); err != nil {
		return 0, fmt.Errorf("exec: %w", err)
	}
	if rc.start.GetStdin() {
		// The reader goroutine may stay blocked in Read on a terminal until
		// the process exits; it never touches the stream after ctx ends.
		go pumpStdin(ctx, rc.in, send)
	} else {
		sendMu.Lock()
		_ = stream.CloseSend()
		sendMu.Unlock()
	}
	if rc.start.GetTty() && rc.resizeFd >= 0 {
		stopResize := forwardResize(ctx, rc.resizeFd, send)
		defer stopResize()
	}

	for {
		out, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, errors.New("exec: the stream ended before the command's exit code arrived")
			}
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, withObject(err, podInfo(), rc.start.GetPod())
		}
		if len(out.GetStdout()) > 0 {
			if _, err := rc.out.Write(out.GetStdout()); err != nil {
				return 0, err
			}
		}
		if len(out.GetStderr()) > 0 {
			if _, err := rc.errOut.Write(out.GetStderr()); err != nil {
				return 0, err
			}
		}
		if out.GetExited() {
			return int(out.GetExitCode()), nil
		}
	}
}

func podInfo() *kinds.Info {
	info, _ := kinds.ByResource("pods")
	return info
}

// pumpStdin copies in to the stream, then closes the remote stdin.
func pumpStdin(ctx context.Context, in io.Reader, send func(*api.ExecInput) error) {
	buf := make([]byte, 32*1024)
	for {
		n, err := in.Read(buf)
		if ctx.Err() != nil {
			return
		}
		if n > 0 {
			if send(&api.ExecInput{Stdin: append([]byte(nil), buf[:n]...)}) != nil {
				return
			}
		}
		if err != nil {
			_ = send(&api.ExecInput{StdinClose: true})
			return
		}
	}
}

// forwardResize sends the terminal's size whenever it changes (SIGWINCH).
func forwardResize(ctx context.Context, fd int, send func(*api.ExecInput) error) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-quit:
				return
			case <-ch:
				if w, h, err := term.GetSize(fd); err == nil {
					if send(&api.ExecInput{Resize: &api.TerminalSize{Width: uint32(w), Height: uint32(h)}}) != nil {
						return
					}
				}
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(quit)
		<-done
	}
}
