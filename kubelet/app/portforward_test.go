package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skiff-dev/skiff/kubelet/server/servertest"
)

// Port-forward reaches a port the pod listens on only on its own
// localhost, through the apiserver and the kubelet, as kubectl
// port-forward does.
func TestPortForwardReachesThePodsLocalhost(t *testing.T) {
	e := newEnv(t)
	e.createPod("web", busybox("main", "mkdir -p /www && echo served from the pod > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www"))
	e.waitPod(t, "web", 60*time.Second, "Running", running)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var got string
	var err error
	// Running says the container started, not that httpd listens yet.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		got, err = servertest.PortForward(ctx, e.cluster.Client.API, "default", "web", 8080, "GET /index.html HTTP/1.0\r\n\r\n")
		if err == nil {
			break
		}
	}
	if err != nil || !strings.HasPrefix(got, "HTTP/1.") || !strings.Contains(got, "served from the pod") {
		t.Fatalf("port-forward to the pod's httpd: %q, %v", got, err)
	}

	_, err = servertest.PortForward(ctx, e.cluster.Client.API, "default", "web", 8081, "")
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("a port the pod does not listen on: %v, want Unavailable connection refused", err)
	}
}
