package server_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/skiff-dev/skiff/kubelet/server"
	"github.com/skiff-dev/skiff/kubelet/server/servertest"
	"github.com/skiff-dev/skiff/proto/api"
)

// plaintextKubelet serves a kubelet with one pod, default/web, and returns
// a client of it.
func plaintextKubelet(t *testing.T) api.KubeletClient {
	t.Helper()
	rt := servertest.NewRuntime(t)
	if err := rt.AddContainer("default", "web", "nginx", ""); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(servertest.Serve(t, rt, server.Security{Insecure: true}), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return api.NewKubeletClient(conn)
}

func TestPortForwardCarriesOneConnection(t *testing.T) {
	k := plaintextKubelet(t)
	echo := servertest.UpperEcho(t)
	// A port nobody listens on: a listener opened and closed.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := int32(lis.Addr().(*net.TCPAddr).Port)
	lis.Close()

	tests := []struct {
		name     string
		pod      string
		port     int32
		data     string
		want     string
		wantCode codes.Code
		wantMsg  string
	}{
		{name: "bytes both ways, the client's half-close reaching the pod", pod: "web", port: echo, data: "hello", want: "HELLO"},
		{name: "a large payload in many messages", pod: "web", port: echo, data: strings.Repeat("abc", 100_000), want: strings.Repeat("ABC", 100_000)},
		{name: "a pod not on this node", pod: "gone", port: echo, wantCode: codes.NotFound, wantMsg: "default/gone"},
		{name: "a port nobody listens on", pod: "web", port: closed, wantCode: codes.Unavailable, wantMsg: "connection refused"},
		{name: "port 0", pod: "web", port: 0, wantCode: codes.InvalidArgument, wantMsg: "between 1 and 65535"},
		{name: "a port above 65535", pod: "web", port: 70000, wantCode: codes.InvalidArgument, wantMsg: "between 1 and 65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			got, err := servertest.PortForward(ctx, k, "default", tt.pod, tt.port, tt.data)
			if status.Code(err) != tt.wantCode || (tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg)) {
				t.Fatalf("port-forward: %v, want %v with %q", err, tt.wantCode, tt.wantMsg)
			}
			if got != tt.want {
				t.Errorf("port-forward answered %d bytes (%.20q...), want %d", len(got), got, len(tt.want))
			}
		})
	}
}

// A client that goes away mid-connection ends the kubelet's side too: the
// pod's connection is closed, not left waiting.
func TestPortForwardEndsWhenTheClientGoes(t *testing.T) {
	k := plaintextKubelet(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	podSide := make(chan net.Conn, 1)
	go func() {
		c, err := lis.Accept()
		if err == nil {
			podSide <- c
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := k.PortForward(ctx)
	if err != nil {
		t.Fatal(err)
	}
	port := int32(lis.Addr().(*net.TCPAddr).Port)
	if err := stream.Send(&api.PortForwardInput{Start: &api.PortForwardStart{Namespace: "default", Pod: "web", Port: port}}); err != nil {
		t.Fatal(err)
	}
	var c net.Conn
	select {
	case c = <-podSide:
	case <-time.After(30 * time.Second):
		t.Fatal("the kubelet never connected to the pod")
	}
	defer c.Close()
	cancel()
	if err := c.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("the pod's connection is still open after the client left: %v", err)
	}
}
