// Package server is the kubelet's gRPC service (api.Kubelet) that the
// apiserver relays `ctl exec`, `ctl logs` and `ctl port-forward` to: exec
// with stdin, a TTY and window resize through containerd, logs read from
// the files the container runs write on the node, and TCP connections to
// a port on the pod's localhost.
//
// Who may call it is decided once, before any handler runs: TLS that
// requires a client certificate of the cluster CA, then an interceptor
// (Authorizer) that admits only the apiserver's user. Handlers must never
// check the caller themselves.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skiff-dev/skiff/kubelet/pods"
	"github.com/skiff-dev/skiff/kubelet/runtime"
	"github.com/skiff-dev/skiff/proto/api"
)

// Containers finds the container run a request names.
type Containers interface {
	FindContainer(ctx context.Context, namespace, pod, container string, previous bool) (*runtime.Container, error)
}

// Execer runs commands in containers.
type Execer interface {
	Exec(ctx context.Context, containerID string, o runtime.ExecOptions) (int, error)
	Containers(ctx context.Context) ([]*runtime.Container, error)
}

// PodDialer connects to a port on a running pod's localhost.
type PodDialer interface {
	DialPod(ctx context.Context, namespace, pod string, port int32) (net.Conn, error)
}

// Server implements api.KubeletServer.
type Server struct {
	api.UnimplementedKubeletServer
	containers Containers
	rt         Execer
	pods       PodDialer
	log        *slog.Logger
}

// New makes the service.
func New(containers Containers, rt Execer, pods PodDialer, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{containers: containers, rt: rt, pods: pods, log: log}
}

// Serve serves the service on lis until ctx ends, to the callers sec
// admits.
func (s *Server) Serve(ctx context.Context, lis net.Listener, sec Security) error {
	opts, err := sec.serverOptions(s.log)
	if err != nil {
		return err
	}
	gs := grpc.NewServer(opts...)
	api.RegisterKubeletServer(gs, s)
	stop := context.AfterFunc(ctx, gs.Stop)
	defer stop()
	s.log.Info("serving exec and logs", "addr", lis.Addr().String())
	if err := gs.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("kubelet server: %w", err)
	}
	return nil
}

func findError(err error) error {
	switch {
	case errors.Is(err, pods.ErrNoContainers):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, pods.ErrContainerNameRequired):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, pods.ErrPodNotRunning):
		return status.Error(codes.FailedPrecondition, err.Error())
	default:
		return status.Error(codes.Internal, err.Error())
	}
}

// Exec implements api.KubeletServer: the first message starts the command,
// later ones carry stdin, its close, and TTY resizes; the last message sent
// back carries the exit code.
func (s *Server) Exec(stream grpc.BidiStreamingServer[api.ExecInput, api.ExecOutput]) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil || len(start.GetCommand()) == 0 {
		return status.Error(codes.InvalidArgument, "exec: the first message must carry start with a command")
	}
	c, err := s.containers.FindContainer(ctx, start.GetNamespace(), start.GetPod(), start.GetContainer(), false)
	if err != nil {
		return findError(err)
	}
	if c.Status != runtime.StatusRunning {
		return status.Errorf(codes.FailedPrecondition, "container %s is not running", c.Name)
	}
	log := s.log.With("pod", start.GetNamespace()+"/"+start.GetPod(), "container", c.Name)
	log.Info("exec", "command", start.GetCommand(), "tty", start.GetTty())

	var sendMu sync.Mutex
	send := func(out *api.ExecOutput) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(out)
	}
	opts := runtime.ExecOptions{
		Command: start.GetCommand(), TTY: start.GetTty(),
		Stdout: streamWriter(func(b []byte) error { return send(&api.ExecOutput{Stdout: b}) }),
		Stderr: streamWriter(func(b []byte) error { return send(&api.ExecOutput{Stderr: b}) }),
	}
	if sz := start.GetSize(); sz != nil {
		opts.Size = &runtime.TerminalSize{Width: sz.GetWidth(), Height: sz.GetHeight()}
	}
	resize := make(chan runtime.TerminalSize, 4)
	opts.Resize = resize
	var stdinW *io.PipeWriter
	if start.GetStdin() {
		var stdinR *io.PipeReader
		stdinR, stdinW = io.Pipe()
		opts.Stdin = stdinR
	}
	execCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		s.pumpInput(stream, stdinW, resize)
	}()
	code, err := s.rt.Exec(execCtx, c.ID, opts)
	if stdinW != nil {
		stdinW.Close()
	}
	if err != nil {
		log.Warn("exec failed", "err", err)
		return status.Errorf(codes.Internal, "exec: %v", err)
	}
	if err := send(&api.ExecOutput{Exited: true, ExitCode: int32(code)}); err != nil {
		return err
	}
	return nil
}

// pumpInput copies the client's stdin and resizes until the stream ends.
func (s *Server) pumpInput(stream grpc.BidiStreamingServer[api.ExecInput, api.ExecOutput], stdin *io.PipeWriter, resize chan<- runtime.TerminalSize) {
	for {
		in, err := stream.Recv()
		if err != nil {
			if stdin != nil {
				stdin.Close()
			}
			return
		}
		if len(in.GetStdin()) > 0 && stdin != nil {
			if _, err := stdin.Write(in.GetStdin()); err != nil {
				return
			}
		}
		if in.GetStdinClose() && stdin != nil {
			stdin.Close()
		}
		if r := in.GetResize(); r != nil {
			select {
			case resize <- runtime.TerminalSize{Width: r.GetWidth(), Height: r.GetHeight()}:
			case <-stream.Context().Done():
				return
			}
		}
	}
}

// streamWriter sends each write as one message; the bytes are copied since
// gRPC may hold them after Send returns.
type streamWriter func([]byte) error

func (w streamWriter) Write(p []byte) (int, error) {
	if err := w(append([]byte(nil), p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}
