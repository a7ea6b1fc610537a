package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skiff-dev/skiff/proto/api"
)

// fakeKubelet answers exec, logs and port-forward like a kubelet would,
// without containers: "echo ARGS" prints, "cat" echoes stdin, "exit N"
// exits with N, "tar" and "test" run for real in root, which stands for
// the containers' filesystem; every forwarded port echoes upper-cased,
// except port 1, which refuses.
type fakeKubelet struct {
	api.UnimplementedKubeletServer
	root     string
	mu       sync.Mutex
	started  []*api.ExecStart
	logs     []*api.LogsRequest
	forwards []*api.PortForwardStart
}

func (k *fakeKubelet) Exec(stream grpc.BidiStreamingServer[api.ExecInput, api.ExecOutput]) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	k.mu.Lock()
	k.started = append(k.started, start)
	k.mu.Unlock()
	cmd := start.GetCommand()
	switch cmd[0] {
	case "tar", "test":
		return k.runInRoot(stream, start)
	case "echo":
		if err := stream.Send(&api.ExecOutput{Stdout: []byte(strings.Join(cmd[1:], " ") + "\n")}); err != nil {
			return err
		}
		if err := stream.Send(&api.ExecOutput{Stderr: []byte("to stderr\n")}); err != nil {
			return err
		}
	case "cat":
		for {
			in, err := stream.Recv()
			if err != nil {
				return err
			}
			if len(in.GetStdin()) > 0 {
				if err := stream.Send(&api.ExecOutput{Stdout: in.GetStdin()}); err != nil {
					return err
				}
			}
			if in.GetStdinClose() {
				break
			}
		}
	case "wait-resize":
		// Echo stdin until the terminal is resized, then report the size.
		for {
			in, err := stream.Recv()
			if err != nil {
				return err
			}
			if len(in.GetStdin()) > 0 {
				if err := stream.Send(&api.ExecOutput{Stdout: in.GetStdin()}); err != nil {
					return err
				}
			}
			if r := in.GetResize(); r != nil {
				if err := stream.Send(&api.ExecOutput{Stdout: []byte(fmt.Sprintf("resized %dx%d\n", r.GetWidth(), r.GetHeight()))}); err != nil {
					return err
				}
				break
			}
		}
	case "exit":
		code, _ := strconv.Atoi(cmd[1])
		return stream.Send(&api.ExecOutput{Exited: true, ExitCode: int32(code)})
	}
	return stream.Send(&api.ExecOutput{Exited: true})
}

// runInRoot runs the command with the paths it names in the container
// (tar's -C DIR, test's operand) mapped under k.root, through busybox as
// the images have it when the host has busybox, else the host's own.
func (k *fakeKubelet) runInRoot(stream grpc.BidiStreamingServer[api.ExecInput, api.ExecOutput], start *api.ExecStart) error {
	args := append([]string(nil), start.GetCommand()...)
	for i := 1; i < len(args); i++ {
		if args[i-1] == "-C" || (args[0] == "test" && i == len(args)-1) {
			args[i] = filepath.Join(k.root, args[i])
		}
	}
	if bb, err := exec.LookPath("busybox"); err == nil {
		args = append([]string{bb}, args...)
	}
	c := exec.CommandContext(stream.Context(), args[0], args[1:]...)
	c.Dir = k.root
	var sendMu sync.Mutex
	send := func(out *api.ExecOutput) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(out)
	}
	c.Stdout = execOutputWriter(func(p []byte) error { return send(&api.ExecOutput{Stdout: append([]byte(nil), p...)}) })
	c.Stderr = execOutputWriter(func(p []byte) error { return send(&api.ExecOutput{Stderr: append([]byte(nil), p...)}) })
	var stdin io.WriteCloser
	if start.GetStdin() {
		var err error
		if stdin, err = c.StdinPipe(); err != nil {
			return err
		}
	}
	if err := c.Start(); err != nil {
		return err
	}
	if stdin != nil {
		go func() {
			defer stdin.Close()
			for {
				in, err := stream.Recv()
				if err != nil {
					return
				}
				if _, err := stdin.Write(in.GetStdin()); err != nil || in.GetStdinClose() {
					return
				}
			}
		}()
	}
	code := 0
	if err := c.Wait(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			return err
		}
		code = exit.ExitCode()
	}
	return send(&api.ExecOutput{Exited: true, ExitCode: int32(code)})
}

// execOutputWriter sends what a command writes as exec output.
type execOutputWriter func([]byte) error

func (w execOutputWriter) Write(p []byte) (int, error) {
	if err := w(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (k *fakeKubelet) Logs(req *api.LogsRequest, stream grpc.ServerStreamingServer[api.LogChunk]) error {
	k.mu.Lock()
	k.logs = append(k.logs, req)
	k.mu.Unlock()
	lines := []string{"line 1\n", "line 2\n", "line 3\n"}
	if req.TailLines != nil {
		lines = lines[len(lines)-int(req.GetTailLines()):]
	}
	for _, l := range lines {
		if err := stream.Send(&api.LogChunk{Data: []byte(req.GetContainer() + ": " + l)}); err != nil {
			return err
		}
	}
	if req.GetFollow() {
		<-stream.Context().Done()
	}
	return nil
}

// PortForward echoes each chunk upper-cased, so a test can tell the bytes
// went through the kubelet, and ends the connection when the client has
// closed its side.
func (k *fakeKubelet) PortForward(stream grpc.BidiStreamingServer[api.PortForwardInput, api.PortForwardOutput]) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	k.mu.Lock()
	k.forwards = append(k.forwards, start)
	k.mu.Unlock()
	if start.GetPort() == 1 {
		return status.Error(codes.Unavailable, "connection refused")
	}
	for {
		in, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&api.PortForwardOutput{Data: bytes.ToUpper(in.GetData())}); err != nil {
			return err
		}
	}
}

// forwardStarts is what PortForward streams the kubelet has seen.
func (k *fakeKubelet) forwardStarts() []*api.PortForwardStart {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]*api.PortForwardStart(nil), k.forwards...)
}

// startFakeKubelet serves a fake kubelet on loopback and registers a node
// and a running pod bound to it.
func startFakeKubelet(t *testing.T, e *env) *fakeKubelet {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	k := &fakeKubelet{root: t.TempDir()}
	api.RegisterKubeletServer(srv, k)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	ctx := context.Background()
	port := lis.Addr().(*net.TCPAddr).Port
	node, err := e.client().Nodes().Create(ctx, &api.Node{Metadata: &api.ObjectMeta{Name: "node-1"}})
	if err != nil {
		t.Fatal(err)
	}
	node.Status = &api.NodeStatus{Addresses: []*api.NodeAddress{{Type: "InternalIP", Address: "127.0.0.1"}},
		DaemonEndpoints: &api.NodeDaemonEndpoints{KubeletPort: int32(port)}}
	if _, err := e.client().Nodes().UpdateStatus(ctx, node); err != nil {
		t.Fatal(err)
	}
	pod, err := e.client().Pods().Create(ctx, &api.Pod{Metadata: &api.ObjectMeta{Name: "web", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: &api.PodSpec{Containers: []*api.Container{{Name: "nginx", Image: "nginx"}, {Name: "sidecar", Image: "busybox"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client().Bind(ctx, "default", "web", pod.GetMetadata().GetUid(), "node-1"); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestExecPassesOutputStdinAndExitCode(t *testing.T) {
	e := newEnv(t)
	k := startFakeKubelet(t, e)

	r := e.run("", "exec", "web", "--", "echo", "hello", "world")
	if r.code != 0 || r.out != "hello world\n" || r.err != "Defaulted container \"nginx\" out of: nginx, sidecar\nto stderr\n" {
		t.Errorf("exec echo: %+v", r)
	}
	r = e.run("typed input\n", "exec", "-i", "web", "-c", "sidecar", "--", "cat")
	if r.code != 0 || r.out != "typed input\n" {
		t.Errorf("exec -i cat: %+v", r)
	}
	r = e.run("", "exec", "pod/web", "-c", "nginx", "--", "exit", "3")
	if r.code != 3 || r.err != "command terminated with exit code 3\n" {
		t.Errorf("exec exit 3: %+v", r)
	}
	r = e.run("", "exec", "-it", "web", "-c", "nginx", "--", "echo")
	if r.code != 0 || !strings.Contains(r.err, "Unable to use a TTY") {
		t.Errorf("exec -it without a terminal: %+v", r)
	}
	k.mu.Lock()
	last := k.started[len(k.started)-1]
	k.mu.Unlock()
	if last.GetTty() || !last.GetStdin() || last.GetContainer() != "nginx" || last.GetNamespace() != "default" {
		t.Errorf("exec start sent %v", last)
	}
	if got := e.fails("exec", "web", "-c", "nope", "--", "echo"); got != "error: container nope is not valid for pod web\n" {
		t.Errorf("unknown container: %q", got)
	}
	if got := e.fails("exec", "gone", "--", "echo"); got != "Error from server (NotFound): pods \"gone\" not found\n" {
		t.Errorf("missing pod: %q", got)
	}
	if got := e.fails("exec", "web", "echo"); !strings.Contains(got, "after --") {
		t.Errorf("command without --: %q", got)
	}
}

func TestLogs(t *testing.T) {
	e := newEnv(t)
	k := startFakeKubelet(t, e)
	if got := e.ok("logs", "web", "-c", "sidecar", "--tail=1"); got != "sidecar: line 3\n" {
		t.Errorf("logs --tail=1: %q", got)
	}
	r := e.run("", "logs", "web")
	if r.out != "nginx: line 1\nnginx: line 2\nnginx: line 3\n" || !strings.Contains(r.err, "Defaulted container") {
		t.Errorf("logs: %+v", r)
	}
	e.ok("create", "deployment", "web", "--image", "nginx")
	if got := e.ok("logs", "deploy/web", "-c", "nginx", "-p"); !strings.HasPrefix(got, "nginx: line 1") {
		t.Errorf("logs deploy/web: %q", got)
	}
	if got := e.ok("logs", "-l", "app=web", "--all-containers", "--prefix", "--tail=1"); got != "[pod/web/nginx] nginx: line 3\n[pod/web/sidecar] sidecar: line 3\n" {
		t.Errorf("logs -l --all-containers --prefix: %q", got)
	}
	if got := e.fails("logs", "-f", "-l", "app=web", "--all-containers", "--max-log-requests=1"); !strings.Contains(got, "maximum allowed concurrency is 1") {
		t.Errorf("too many follows: %q", got)
	}
	f := e.startAsync("logs", "-f", "web", "-c", "nginx")
	eventually(t, "followed logs", func() bool { return strings.Contains(f.out.String(), "line 3") })
	if r := f.stop(); r.code != 0 {
		t.Errorf("logs -f ended by Ctrl-C: %+v", r)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	var follows, previous int
	for _, l := range k.logs {
		if l.GetFollow() {
			follows++
		}
		if l.GetPrevious() {
			previous++
		}
	}
	if follows != 1 || previous != 1 {
		t.Errorf("kubelet saw %d follow and %d previous requests: %v", follows, previous, fmt.Sprint(k.logs))
	}
}

// openPTY opens a pseudo-terminal pair; the test's cleanup closes both.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx (exec -t needs a pseudo-terminal to test): %v", err)
	}
	t.Cleanup(func() { m.Close() })
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty slave: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// TestExecTTYRawModeAndResize protects exec -it on a real terminal: the
// start message carries the size, the terminal is raw while the command
// runs and restored after, and SIGWINCH sends the new size.
func TestExecTTYRawModeAndResize(t *testing.T) {
	e := newEnv(t)
	k := startFakeKubelet(t, e)
	master, slave := openPTY(t)
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80}); err != nil {
		t.Fatal(err)
	}
	before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Execute(context.Background(), []string{"exec", "-it", "web", "-c", "nginx", "--", "wait-resize"},
			IOStreams{In: slave, Out: &out, ErrOut: &errOut}, e.factory())
	}()
	eventually(t, "the exec to start", func() bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		return len(k.started) == 1
	})
	k.mu.Lock()
	start := k.started[0]
	k.mu.Unlock()
	if !start.GetTty() || !start.GetStdin() || start.GetSize().GetWidth() != 80 || start.GetSize().GetHeight() != 24 {
		t.Errorf("exec start = %v, want a 80x24 tty with stdin", start)
	}
	raw, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Lflag&unix.ICANON != 0 || raw.Lflag&unix.ECHO != 0 {
		t.Error("the terminal is not in raw mode during exec -it")
	}
	if _, err := master.Write([]byte("typed")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "stdin to reach the command", func() bool { return strings.Contains(out.String(), "typed") })
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 50, Col: 132}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "resized 132x50") {
		if time.Now().After(deadline) {
			t.Fatalf("no resize reached the command; output %q", out.String())
		}
		_ = syscall.Kill(os.Getpid(), syscall.SIGWINCH)
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exec -it exited %d: %s", code, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("exec -it did not end")
	}
	after, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if after.Lflag != before.Lflag {
		t.Errorf("terminal not restored: lflag %#x, was %#x", after.Lflag, before.Lflag)
	}
}
