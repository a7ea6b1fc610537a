// Package servertest runs the kubelet's real exec/logs server (package
// kubelet/server) over a fake container runtime, so tests of who may call
// it — the kubelet's own and the apiserver's relay — need no containerd.
//
// It must only be imported from tests.
package servertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"

	"github.com/skiff-dev/skiff/kubelet/pods"
	"github.com/skiff-dev/skiff/kubelet/runtime"
	"github.com/skiff-dev/skiff/kubelet/server"
	"github.com/skiff-dev/skiff/proto/api"
)

// Runtime is a fake runtime: containers added with AddContainer are
// running, their logs are files, Exec writes its command line to stdout
// and exits 0, and a pod's localhost is the test's own loopback.
type Runtime struct {
	dir string
	mu  sync.Mutex
	// containers by "namespace/pod/container".
	containers map[string]*runtime.Container
	execs      int
}

// NewRuntime makes an empty runtime whose log files live in t's temporary
// directory.
func NewRuntime(t testing.TB) *Runtime {
	return &Runtime{dir: t.TempDir(), containers: map[string]*runtime.Container{}}
}

// AddContainer adds a running container whose log holds log.
func (r *Runtime) AddContainer(namespace, pod, container, log string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := fmt.Sprintf("%s-%s-%s", namespace, pod, container)
	path := filepath.Join(r.dir, id+".log")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		return fmt.Errorf("container %s log: %w", id, err)
	}
	r.containers[namespace+"/"+pod+"/"+container] = &runtime.Container{
		ID: id, Pod: runtime.PodRef{Namespace: namespace, Name: pod}, Name: container,
		LogPath: path, Status: runtime.StatusRunning,
	}
	return nil
}

// Execs counts the commands Exec ran: a refused caller must leave it at 0.
func (r *Runtime) Execs() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.execs
}

// FindContainer implements server.Containers.
func (r *Runtime) FindContainer(_ context.Context, namespace, pod, container string, _ bool) (*runtime.Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[namespace+"/"+pod+"/"+container]
	if !ok {
		return nil, fmt.Errorf("pod %s/%s container %q: %w", namespace, pod, container, pods.ErrNoContainers)
	}
	cp := *c
	return &cp, nil
}

// Exec implements server.Execer.
func (r *Runtime) Exec(_ context.Context, _ string, o runtime.ExecOptions) (int, error) {
	r.mu.Lock()
	r.execs++
	r.mu.Unlock()
	if _, err := io.WriteString(o.Stdout, strings.Join(o.Command, " ")+"\n"); err != nil {
		return 0, err
	}
	return 0, nil
}

// DialPod implements server.PodDialer: port on the test's loopback, for a
// pod that has a container.
func (r *Runtime) DialPod(ctx context.Context, namespace, pod string, port int32) (net.Conn, error) {
	r.mu.Lock()
	found := false
	for _, c := range r.containers {
		found = found || c.Pod.Namespace == namespace && c.Pod.Name == pod
	}
	r.mu.Unlock()
	if !found {
		return nil, fmt.Errorf("pod %s/%s: %w", namespace, pod, pods.ErrNoContainers)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(port)))
}

// Containers implements server.Execer.
func (r *Runtime) Containers(context.Context) ([]*runtime.Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*runtime.Container, 0, len(r.containers))
	for _, c := range r.containers {
		cp := *c
		out = append(out, &cp)
	}
	return out, nil
}

// Serve runs the kubelet server over rt on a loopback port with sec until
// the test ends, and returns its address.
func Serve(t testing.TB, rt *Runtime, sec server.Security) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(rt, rt, rt, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis, sec) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("kubelet server: %v", err)
		}
		lis.Close()
	})
	return lis.Addr().String()
}

// Streams is what both the apiserver (api.APIClient) and a kubelet
// (api.KubeletClient) answer: exec, logs and port-forward.
type Streams interface {
	Exec(ctx context.Context, opts ...grpc.CallOption) (grpc.BidiStreamingClient[api.ExecInput, api.ExecOutput], error)
	Logs(ctx context.Context, in *api.LogsRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[api.LogChunk], error)
	PortForward(ctx context.Context, opts ...grpc.CallOption) (grpc.BidiStreamingClient[api.PortForwardInput, api.PortForwardOutput], error)
}

// PortForward opens one connection to port of a pod, writes data, closes
// its side and returns all the pod answered until it closed the
// connection.
func PortForward(ctx context.Context, c Streams, namespace, pod string, port int32, data string) (string, error) {
	stream, err := c.PortForward(ctx)
	if err != nil {
		return "", err
	}
	start := &api.PortForwardStart{Namespace: namespace, Pod: pod, Port: port}
	// A refused stream reports why on Recv; Send only sees io.EOF.
	if err := stream.Send(&api.PortForwardInput{Start: start}); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if err := stream.Send(&api.PortForwardInput{Data: []byte(data)}); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if err := stream.CloseSend(); err != nil {
		return "", err
	}
	var out strings.Builder
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out.String(), nil
		}
		if err != nil {
			return out.String(), err
		}
		out.Write(msg.GetData())
	}
}

// UpperEcho listens on the test's loopback and answers each connection
// with what it read until its client's half-close, upper-cased; it
// returns the port.
func UpperEcho(t testing.TB) int32 {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				in, _ := io.ReadAll(c)
				_, _ = c.Write([]byte(strings.ToUpper(string(in))))
			}()
		}
	}()
	return int32(lis.Addr().(*net.TCPAddr).Port)
}

// Exec runs command in a container without stdin and returns its stdout
// and exit code.
func Exec(ctx context.Context, c Streams, namespace, pod, container string, command ...string) (string, int32, error) {
	stream, err := c.Exec(ctx)
	if err != nil {
		return "", 0, err
	}
	start := &api.ExecStart{Namespace: namespace, Pod: pod, Container: container, Command: command}
	// A refused stream reports why on Recv; Send only sees io.EOF.
	if err := stream.Send(&api.ExecInput{Start: start}); err != nil && !errors.Is(err, io.EOF) {
		return "", 0, err
	}
	if err := stream.CloseSend(); err != nil {
		return "", 0, err
	}
	var out strings.Builder
	for {
		msg, err := stream.Recv()
		if err != nil {
			return out.String(), 0, err
		}
		out.Write(msg.GetStdout())
		if msg.GetExited() {
			return out.String(), msg.GetExitCode(), nil
		}
	}
}

// Logs reads a container's whole log.
func Logs(ctx context.Context, c Streams, namespace, pod, container string) (string, error) {
	stream, err := c.Logs(ctx, &api.LogsRequest{Namespace: namespace, Pod: pod, Container: container})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return b.String(), nil
		}
		if err != nil {
			return b.String(), err
		}
		b.Write(chunk.GetData())
	}
}
