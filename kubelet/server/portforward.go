package server

import (
	"context"
	"errors"
	"io"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skiff-dev/skiff/proto/api"
)

// portForwardChunk is the most one message carries from the pod.
const portForwardChunk = 32 << 10

// PortForward implements api.KubeletServer: the first message names the
// pod and port, and the stream then carries one TCP connection to that
// port on the pod's localhost. The client's half-close closes the
// connection's write side; the stream ends when the pod closes it.
func (s *Server) PortForward(stream grpc.BidiStreamingServer[api.PortForwardInput, api.PortForwardOutput]) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil || start.GetPort() < 1 || start.GetPort() > 65535 {
		return status.Error(codes.InvalidArgument, "port-forward: the first message must carry start with a port between 1 and 65535")
	}
	conn, err := s.pods.DialPod(ctx, start.GetNamespace(), start.GetPod(), start.GetPort())
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) {
			return status.Errorf(codes.Unavailable, "port-forward to port %d: %v", start.GetPort(), err)
		}
		return findError(err)
	}
	defer conn.Close()
	// A client gone (the stream cancelled) must not leave the pod's side
	// waiting for bytes that never come.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	s.log.Info("port-forward", "pod", start.GetNamespace()+"/"+start.GetPod(), "port", start.GetPort())

	go func() {
		for {
			in, err := stream.Recv()
			if err != nil {
				closeWrite(conn)
				return
			}
			if _, err := conn.Write(in.GetData()); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, portForwardChunk)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			if err := stream.Send(&api.PortForwardOutput{Data: append([]byte(nil), buf[:n]...)}); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return status.FromContextError(ctx.Err()).Err()
			}
			return status.Errorf(codes.Unavailable, "port-forward to port %d: %v", start.GetPort(), err)
		}
	}
}

// closeWrite half-closes a TCP connection (the pod reads EOF and may still
// answer); other connections are closed.
func closeWrite(conn net.Conn) {
	if tc, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
		return
	}
	_ = conn.Close()
}
