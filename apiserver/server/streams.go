package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// KubeletDialer opens a connection to a node's kubelet for exec and logs.
type KubeletDialer interface {
	Dial(ctx context.Context, node *api.Node) (api.KubeletClient, io.Closer, error)
}

// GRPCKubeletDialer dials the node's InternalIP and kubeletPort with Creds:
// TLS that verifies the kubelet's serving certificate for that IP and
// presents the apiserver's client certificate. Plaintext needs Insecure.
type GRPCKubeletDialer struct {
	Creds credentials.TransportCredentials
	// Insecure dials plaintext when Creds is nil: an --insecure apiserver
	// calling --insecure kubelets, in tests.
	Insecure bool
}

// Dial implements KubeletDialer.
func (d GRPCKubeletDialer) Dial(_ context.Context, node *api.Node) (api.KubeletClient, io.Closer, error) {
	addr := ""
	for _, a := range node.GetStatus().GetAddresses() {
		if a.GetType() == "InternalIP" {
			addr = a.GetAddress()
		}
	}
	port := node.GetStatus().GetDaemonEndpoints().GetKubeletPort()
	if addr == "" || port == 0 {
		return nil, nil, status.Errorf(codes.Unavailable, "node %q has no InternalIP or kubelet port", node.GetMetadata().GetName())
	}
	creds := d.Creds
	switch {
	case creds == nil && d.Insecure:
		creds = insecure.NewCredentials()
	case creds == nil:
		return nil, nil, status.Error(codes.FailedPrecondition, "kubelet dialer: no TLS credentials")
	}
	conn, err := grpc.NewClient(net.JoinHostPort(addr, strconv.Itoa(int(port))), grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, nil, status.Errorf(codes.Unavailable, "dial kubelet on node %q: %v", node.GetMetadata().GetName(), err)
	}
	return api.NewKubeletClient(conn), conn, nil
}

// kubeletFor finds the kubelet running a pod.
func (s *Server) kubeletFor(ctx context.Context, namespace, name string) (api.KubeletClient, io.Closer, error) {
	if s.cfg.KubeletDialer == nil {
		return nil, nil, status.Error(codes.FailedPrecondition, "this apiserver cannot reach kubelets: it has no --kubelet-client-certificate for their mutual TLS")
	}
	podInfo, _ := kinds.ByResource("pods")
	obj, _, ok, err := s.getFresh(ctx, podInfo, s.key(podInfo, namespace, name))
	if err != nil {
		return nil, nil, apiError(podInfo, name, err)
	}
	if !ok {
		return nil, nil, status.Errorf(codes.NotFound, "pods %q not found", name)
	}
	pod := obj.(*api.Pod)
	nodeName := pod.GetSpec().GetNodeName()
	if nodeName == "" {
		return nil, nil, status.Errorf(codes.FailedPrecondition, "pod %s is not scheduled to a node yet", name)
	}
	nodeInfo, _ := kinds.ByResource("nodes")
	nodeObj, _, ok, err := s.getFresh(ctx, nodeInfo, s.store.Key("nodes", "", nodeName))
	if err != nil || !ok {
		return nil, nil, status.Errorf(codes.Unavailable, "node %q of pod %s is unknown", nodeName, name)
	}
	return s.cfg.KubeletDialer.Dial(ctx, nodeObj.(*api.Node))
}

// Exec implements api.APIServer by relaying the stream to the pod's kubelet.
func (s *Server) Exec(stream grpc.BidiStreamingServer[api.ExecInput, api.ExecOutput]) error {
	return relay(s, stream, "exec", func(first *api.ExecInput) (string, string, error) {
		start := first.GetStart()
		if start == nil {
			return "", "", invalidArg("start: Required value: the first message must say what to run")
		}
		if len(start.GetCommand()) == 0 {
			return "", "", invalidArg("start.command: Required value")
		}
		return start.GetNamespace(), start.GetPod(), nil
	}, api.KubeletClient.Exec)
}

// PortForward implements api.APIServer by relaying the stream, one TCP
// connection, to the pod's kubelet.
func (s *Server) PortForward(stream grpc.BidiStreamingServer[api.PortForwardInput, api.PortForwardOutput]) error {
	return relay(s, stream, "port-forward", func(first *api.PortForwardInput) (string, string, error) {
		start := first.GetStart()
		if start == nil {
			return "", "", invalidArg("start: Required value: the first message must name the pod and port")
		}
		if p := start.GetPort(); p < 1 || p > 65535 {
			return "", "", invalidArg("start.port: Invalid value: %d: must be between 1 and 65535, inclusive", p)
		}
		return start.GetNamespace(), start.GetPod(), nil
	}, api.KubeletClient.PortForward)
}

// relay serves a bidirectional stream by opening the same stream on the
// kubelet of the pod its first message names (target checks that message
// and says which pod): the first message and every later one go up, every
// answer comes back, and the client's half-close is passed on.
func relay[In, Out any](s *Server, stream grpc.BidiStreamingServer[In, Out], what string,
	target func(first *In) (namespace, pod string, err error),
	open func(api.KubeletClient, context.Context, ...grpc.CallOption) (grpc.BidiStreamingClient[In, Out], error)) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	namespace, pod, err := target(first)
	if err != nil {
		return err
	}
	kubelet, closer, err := s.kubeletFor(ctx, namespace, pod)
	if err != nil {
		return err
	}
	defer closer.Close()
	up, err := open(kubelet, ctx)
	if err != nil {
		return status.Errorf(codes.Unavailable, "%s on kubelet: %v", what, err)
	}
	if err := up.Send(first); err != nil && !errors.Is(err, io.EOF) {
		return status.Errorf(codes.Unavailable, "%s on kubelet: %v", what, err)
	}
	go func() {
		for {
			in, err := stream.Recv()
			if err != nil {
				_ = up.CloseSend()
				return
			}
			if err := up.Send(in); err != nil {
				return
			}
		}
	}()
	for {
		out, err := up.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(out); err != nil {
			return err
		}
	}
}

// Logs implements api.APIServer by relaying the pod's kubelet's stream.
func (s *Server) Logs(req *api.LogsRequest, stream grpc.ServerStreamingServer[api.LogChunk]) error {
	ctx := stream.Context()
	kubelet, closer, err := s.kubeletFor(ctx, req.GetNamespace(), req.GetPod())
	if err != nil {
		return err
	}
	defer closer.Close()
	up, err := kubelet.Logs(ctx, req)
	if err != nil {
		return status.Errorf(codes.Unavailable, "logs on kubelet: %v", err)
	}
	for {
		chunk, err := up.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("logs: %w", err)
		}
		if err := stream.Send(chunk); err != nil {
			return err
		}
	}
}
