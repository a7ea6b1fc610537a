package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/proto/api"
)

func TestParsePortSpecs(t *testing.T) {
	tests := []struct {
		arg     string
		want    portSpec
		wantErr string
	}{
		{arg: "8080:80", want: portSpec{local: 8080, localSet: true, remote: 80}},
		{arg: "80", want: portSpec{remote: 80}},
		{arg: ":80", want: portSpec{local: 0, localSet: true, remote: 80}},
		{arg: "0:80", want: portSpec{local: 0, localSet: true, remote: 80}},
		{arg: "65535:65535", want: portSpec{local: 65535, localSet: true, remote: 65535}},
		{arg: "8443:https", want: portSpec{local: 8443, localSet: true, remoteName: "https"}},
		{arg: "http-alt", want: portSpec{remoteName: "http-alt"}},
		{arg: "x:y", wantErr: `invalid port spec "x:y": local port "x" is not a number`},
		{arg: "1:2:3", wantErr: `invalid port spec "1:2:3": want [LOCAL_PORT:]REMOTE_PORT`},
		{arg: "", wantErr: `invalid port spec "": remote port is required`},
		{arg: "8080:", wantErr: `invalid port spec "8080:": remote port is required`},
		{arg: ":", wantErr: `invalid port spec ":": remote port is required`},
		{arg: "0", wantErr: `invalid port spec "0": remote port 0 must be between 1 and 65535, inclusive`},
		{arg: "70000", wantErr: `invalid port spec "70000": remote port 70000 must be between 1 and 65535, inclusive`},
		{arg: "8080:-1", wantErr: `invalid port spec "8080:-1": remote port -1 must be between 1 and 65535, inclusive`},
		{arg: "70000:80", wantErr: `invalid port spec "70000:80": local port 70000 must be between 0 and 65535, inclusive`},
		{arg: "-1:80", wantErr: `invalid port spec "-1:80": local port -1 must be between 0 and 65535, inclusive`},
		{arg: "8080:Web_1", wantErr: `invalid port spec "8080:Web_1": remote port "Web_1" is neither a number nor a port name`},
		{arg: "8080:a-very-long-port-name", wantErr: `invalid port spec "8080:a-very-long-port-name": remote port "a-very-long-port-name" is neither a number nor a port name`},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			got, err := parsePortSpecs([]string{tt.arg})
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("parsePortSpecs(%q) error = %v, want %q", tt.arg, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parsePortSpecs(%q): %v", tt.arg, err)
			}
			if got[0] != tt.want {
				t.Errorf("parsePortSpecs(%q) = %+v, want %+v", tt.arg, got[0], tt.want)
			}
		})
	}
}

func TestParseListenAddresses(t *testing.T) {
	loopback := []listenAddress{{"tcp4", "127.0.0.1", true}, {"tcp6", "::1", true}}
	tests := []struct {
		name    string
		in      []string
		want    []listenAddress
		wantErr string
	}{
		{name: "localhost is both loopbacks", in: []string{"localhost"}, want: loopback},
		{name: "duplicates dropped", in: []string{"localhost", "127.0.0.1", "localhost"}, want: []listenAddress{{"tcp4", "127.0.0.1", false}, {"tcp6", "::1", true}}},
		{name: "sorted by text", in: []string{"::", "0.0.0.0"}, want: []listenAddress{{"tcp4", "0.0.0.0", false}, {"tcp6", "::", false}}},
		{name: "not an IP", in: []string{"localhost", "example.com"}, wantErr: "example.com is not a valid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseListenAddresses(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseListenAddresses(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

// TestResolvePortsMapsServicePortsToTargetPorts protects kubectl's
// mapping: a service's port (by number or name) reaches its targetPort, a
// named targetPort or remote port is looked up in the pod's container
// ports, and the local port defaults to the port typed (the service port).
func TestResolvePortsMapsServicePortsToTargetPorts(t *testing.T) {
	pod := &api.Pod{Metadata: &api.ObjectMeta{Name: "api-1"}, Spec: &api.PodSpec{Containers: []*api.Container{
		{Name: "app", Ports: []*api.ContainerPort{{Name: "web", ContainerPort: 8080}}},
		{Name: "exporter", Ports: []*api.ContainerPort{{Name: "metrics", ContainerPort: 9100}}},
	}}}
	svc := &api.Service{Metadata: &api.ObjectMeta{Name: "api"}, Spec: &api.ServiceSpec{Ports: []*api.ServicePort{
		{Name: "http", Port: 80, TargetPort: structpb.NewNumberValue(8080)},
		{Name: "metrics", Port: 9090, TargetPort: structpb.NewStringValue("metrics")},
		{Name: "grpc", Port: 50051, TargetPort: structpb.NewStringValue("grpc")},
		{Name: "plain", Port: 7000},
	}}}
	tests := []struct {
		name    string
		svc     *api.Service
		arg     string
		want    forwardedPort
		wantErr string
	}{
		{name: "pod port", arg: "5000", want: forwardedPort{5000, 5000}},
		{name: "pod port, other local", arg: "8888:5000", want: forwardedPort{8888, 5000}},
		{name: "pod named port", arg: "web", want: forwardedPort{8080, 8080}},
		{name: "pod named port, free local", arg: ":metrics", want: forwardedPort{0, 9100}},
		{name: "pod unknown name", arg: "grpc", wantErr: "Pod 'api-1' does not have a named port 'grpc'"},
		{name: "service port to targetPort", svc: svc, arg: "80", want: forwardedPort{80, 8080}},
		{name: "service port by name", svc: svc, arg: "8443:http", want: forwardedPort{8443, 8080}},
		{name: "service port name, local is the service port", svc: svc, arg: "http", want: forwardedPort{80, 8080}},
		{name: "service named targetPort", svc: svc, arg: ":9090", want: forwardedPort{0, 9100}},
		{name: "service port without targetPort", svc: svc, arg: "7000", want: forwardedPort{7000, 7000}},
		{name: "service lacks the port", svc: svc, arg: "8080", wantErr: "Service api does not have a service port 8080"},
		{name: "service lacks the name", svc: svc, arg: "https", wantErr: "Service 'api' does not have a named port 'https'"},
		{name: "pod lacks the targetPort name", svc: svc, arg: "50051", wantErr: "Pod 'api-1' does not have a named port 'grpc'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs, err := parsePortSpecs([]string{tt.arg})
			if err != nil {
				t.Fatal(err)
			}
			got, err := resolvePorts(specs, tt.svc, pod)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got[0] != tt.want {
				t.Errorf("resolvePorts(%q) = %+v, %v; want %+v", tt.arg, got, err, tt.want)
			}
		})
	}
}

// startForwardingKubelet is startFakeKubelet with its pod "web" Running.
func startForwardingKubelet(t *testing.T, e *env) *fakeKubelet {
	t.Helper()
	k := startFakeKubelet(t, e)
	setPodPhase(t, e, "web", "Running")
	return k
}

func setPodPhase(t *testing.T, e *env, name, phase string) {
	t.Helper()
	ctx := context.Background()
	pod, err := e.client().Pods().Get(ctx, "default", name)
	if err != nil {
		t.Fatal(err)
	}
	pod.Status = &api.PodStatus{Phase: phase}
	if _, err := e.client().Pods().UpdateStatus(ctx, pod); err != nil {
		t.Fatalf("set pod %s %s: %v", name, phase, err)
	}
}

// createPod creates a pod on the fake kubelet's node in phase.
func createPod(t *testing.T, e *env, name, phase string, labels map[string]string, ports ...*api.ContainerPort) {
	t.Helper()
	ctx := context.Background()
	pod, err := e.client().Pods().Create(ctx, &api.Pod{Metadata: &api.ObjectMeta{Name: name, Namespace: "default", Labels: labels},
		Spec: &api.PodSpec{Containers: []*api.Container{{Name: "app", Image: "app", Ports: ports}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client().Bind(ctx, "default", name, pod.GetMetadata().GetUid(), "node-1"); err != nil {
		t.Fatal(err)
	}
	setPodPhase(t, e, name, phase)
}

// forwardingPort waits for "Forwarding from 127.0.0.1:PORT -> remote" and
// returns PORT; the [::1] line, when there is one, must use the same port.
func forwardingPort(t *testing.T, a *async, remote int32) int {
	t.Helper()
	re := regexp.MustCompile(fmt.Sprintf(`Forwarding from 127\.0\.0\.1:(\d+) -> %d\n`, remote))
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := re.FindStringSubmatch(a.out.String()); m != nil {
			port, _ := strconv.Atoi(m[1])
			v6 := regexp.MustCompile(fmt.Sprintf(`Forwarding from \[::1\]:(\d+) -> %d\n`, remote)).FindStringSubmatch(a.out.String())
			if v6 != nil && v6[1] != m[1] {
				t.Errorf("127.0.0.1 listens on %s but ::1 on %s", m[1], v6[1])
			}
			return port
		}
		if time.Now().After(deadline) {
			t.Fatalf("no forwarding to %d\nstdout: %s\nstderr: %s", remote, a.out.String(), a.errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dialLocal(t *testing.T, port int) *net.TCPConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return conn.(*net.TCPConn)
}

// roundTrip writes msg, closes the write side and reads until the
// forwarder closes the connection.
func roundTrip(t *testing.T, port int, msg string) string {
	t.Helper()
	conn := dialLocal(t, port)
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := conn.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("read back %q: %v", msg, err)
	}
	return string(got)
}

// waitClosed connects and waits for the forwarder to close the connection
// without a byte (it may reset it: nothing is read on a refused port).
func waitClosed(t *testing.T, port int) {
	t.Helper()
	got, err := io.ReadAll(dialLocal(t, port))
	if len(got) != 0 || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
		t.Errorf("read %q, %v; want the connection closed", got, err)
	}
}

func TestPortForwardRejectsBadArgumentsBeforeListening(t *testing.T) {
	e := newEnv(t)
	k := startForwardingKubelet(t, e)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"web"}, "error: TYPE/NAME and list of ports are required for port-forward\nSee 'ctl port-forward --help' for usage.\n"},
		{[]string{"web", "8080:80", "x:y"}, "error: invalid port spec \"x:y\": local port \"x\" is not a number\n"},
		{[]string{"web", ":80", "70000"}, "error: invalid port spec \"70000\": remote port 70000 must be between 1 and 65535, inclusive\n"},
		{[]string{"web", ":80", "1:2:3"}, "error: invalid port spec \"1:2:3\": want [LOCAL_PORT:]REMOTE_PORT\n"},
		{[]string{"web", ":80", ":0"}, "error: invalid port spec \":0\": remote port 0 must be between 1 and 65535, inclusive\n"},
		{[]string{"--address", "localhost,nowhere", "web", ":80"}, "error: nowhere is not a valid IP\n"},
		{[]string{"--pod-running-timeout=0", "web", ":80"}, "error: --pod-running-timeout must be higher than zero\n"},
		{[]string{"web", ":http"}, "error: Pod 'web' does not have a named port 'http'\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := e.run("", append([]string{"port-forward"}, tt.args...)...)
			if r.code != 1 || r.err != tt.want || r.out != "" {
				t.Errorf("got exit %d, stdout %q, stderr %q; want exit 1, no output, stderr %q", r.code, r.out, r.err, tt.want)
			}
		})
	}
	if got := k.forwardStarts(); len(got) != 0 {
		t.Errorf("the kubelet saw forwards for bad arguments: %v", got)
	}
}

// TestPortForwardRoundTripsThroughTheKubelet protects the whole path: a
// local connection's bytes reach the pod's port through the apiserver and
// the kubelet, the answer comes back, the connection ends when the pod
// closes it, and Ctrl-C ends ctl with 0 and closes the listener.
func TestPortForwardRoundTripsThroughTheKubelet(t *testing.T) {
	e := newEnv(t)
	k := startForwardingKubelet(t, e)
	a := e.startAsync("port-forward", "-n", "default", "pod/web", ":80")
	port := forwardingPort(t, a, 80)
	if got := roundTrip(t, port, "hello, pod"); got != "HELLO, POD" {
		t.Errorf("round trip = %q, want the fake kubelet's upper-cased echo", got)
	}
	want := &api.PortForwardStart{Namespace: "default", Pod: "web", Port: 80}
	if got := k.forwardStarts(); len(got) != 1 || !proto.Equal(got[0], want) {
		t.Errorf("kubelet saw %v, want one %v", got, want)
	}
	// A connection still open at Ctrl-C is closed, not left behind.
	idle := dialLocal(t, port)
	if _, err := idle.Write([]byte("idle")); err != nil {
		t.Fatal(err)
	}
	echo := make([]byte, 4)
	if _, err := io.ReadFull(idle, echo); err != nil || string(echo) != "IDLE" {
		t.Fatalf("idle connection echoed %q, %v", echo, err)
	}
	r := a.stop()
	noForwarderGoroutines(t)
	if r.code != 0 || r.err != "" || strings.Count(r.out, fmt.Sprintf("Handling connection for %d\n", port)) != 2 {
		t.Errorf("port-forward ended by Ctrl-C: %+v", r)
	}
	if rest, err := io.ReadAll(idle); len(rest) != 0 || err != nil {
		t.Errorf("the open connection after Ctrl-C: read %q, %v; want it closed", rest, err)
	}
	if conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
		conn.Close()
		t.Errorf("port %d still listens after port-forward ended", port)
	}
}

// noForwarderGoroutines checks that no goroutine of port-forward outlives
// the command (the accept loops, the connections, their uploads).
func noForwarderGoroutines(t *testing.T) {
	t.Helper()
	// A goroutine that has sent its last result may still be on the way
	// out: look again for a while, as goleak does.
	var buf []byte
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		buf = make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		left := bytes.Contains(buf, []byte("ctl/cmd.(*portForwarder)")) || bytes.Contains(buf, []byte("ctl/cmd.upload("))
		if !left {
			return
		}
		if time.Now().After(deadline) {
			break
		}
	}
	t.Errorf("port-forward goroutines left after it returned:\n%s", buf)
}

func TestPortForwardServesParallelConnections(t *testing.T) {
	e := newEnv(t)
	startForwardingKubelet(t, e)
	a := e.startAsync("port-forward", "--address", "127.0.0.1", "web", ":8080")
	port := forwardingPort(t, a, 8080)
	one, two := dialLocal(t, port), dialLocal(t, port)
	// Both connections answer before either closes: two live streams.
	for _, c := range []struct {
		conn     *net.TCPConn
		msg, out string
	}{{one, "first", "FIRST"}, {two, "second", "SECOND"}, {one, "again", "AGAIN"}} {
		if _, err := c.conn.Write([]byte(c.msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(c.out))
		if _, err := io.ReadFull(c.conn, buf); err != nil || string(buf) != c.out {
			t.Fatalf("read %q, %v; want %q", buf, err, c.out)
		}
	}
	for _, c := range []*net.TCPConn{one, two} {
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
			t.Errorf("after close: %q, %v; want the connection closed", rest, err)
		}
	}
	if r := a.stop(); r.code != 0 || strings.Count(r.out, "Handling connection") != 2 {
		t.Errorf("port-forward: %+v", r)
	}
}

// TestPortForwardReportsARefusedPortAndKeepsServing protects kubectl's
// behaviour on a failed connection: an error line on stderr, the local
// connection closed, and the listeners still serving.
func TestPortForwardReportsARefusedPortAndKeepsServing(t *testing.T) {
	e := newEnv(t)
	startForwardingKubelet(t, e)
	a := e.startAsync("port-forward", "web", ":1", ":80")
	refused, open := forwardingPort(t, a, 1), forwardingPort(t, a, 80)
	waitClosed(t, refused)
	want := regexp.MustCompile(fmt.Sprintf(`^E\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ portforward\.go\] an error occurred forwarding %d -> 1: error forwarding port 1 to pod web: connection refused\n$`, refused))
	eventually(t, "the refusal to be reported", func() bool { return strings.HasSuffix(a.errOut.String(), "\n") })
	if got := a.errOut.String(); !want.MatchString(got) {
		t.Errorf("stderr = %q, want it to match %s", got, want)
	}
	if got := roundTrip(t, open, "still here"); got != "STILL HERE" {
		t.Errorf("after a refusal, the other port answered %q", got)
	}
	waitClosed(t, refused)
	eventually(t, "the second refusal", func() bool { return strings.Count(a.errOut.String(), "connection refused") == 2 })
	if r := a.stop(); r.code != 0 || strings.Count(r.out, "Handling connection") != 3 {
		t.Errorf("port-forward: %+v", r)
	}
	noForwarderGoroutines(t)
}

// TestPortForwardPicksAPodOfTheTarget protects TYPE/NAME: a deployment,
// replica set or service forwards to a running pod its selector matches,
// and a service's port reaches the pod's targetPort.
func TestPortForwardPicksAPodOfTheTarget(t *testing.T) {
	e := newEnv(t)
	k := startForwardingKubelet(t, e)
	ctx := context.Background()
	labels := map[string]string{"app": "api"}
	createPod(t, e, "api-old-pending", "Pending", labels)
	createPod(t, e, "api-running", "Running", labels, &api.ContainerPort{Name: "metrics", ContainerPort: 9100})
	e.ok("create", "deployment", "api", "--image", "app")
	if _, err := e.client().ReplicaSets().Create(ctx, &api.ReplicaSet{Metadata: &api.ObjectMeta{Name: "api-rs", Namespace: "default"},
		Spec: &api.ReplicaSetSpec{Selector: &api.LabelSelector{MatchLabels: labels},
			Template: &api.PodTemplateSpec{Metadata: &api.ObjectMeta{Labels: labels}, Spec: &api.PodSpec{Containers: []*api.Container{{Name: "app", Image: "app"}}}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client().Services().Create(ctx, &api.Service{Metadata: &api.ObjectMeta{Name: "api", Namespace: "default"},
		Spec: &api.ServiceSpec{Selector: labels, Ports: []*api.ServicePort{
			{Name: "http", Port: 80, TargetPort: structpb.NewNumberValue(8080)},
			{Name: "metrics", Port: 9090, TargetPort: structpb.NewStringValue("metrics")},
		}}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		target, port string
		typed        int32 // the port the "Forwarding from" line names
		wantPort     int32 // the pod's port the kubelet is asked for
	}{
		{"deploy/api", ":5000", 5000, 5000},
		{"deployments/api", ":5000", 5000, 5000},
		{"rs/api-rs", ":5000", 5000, 5000},
		{"svc/api", ":80", 8080, 8080},
		{"service/api", ":http", 8080, 8080},
		{"svc/api", ":9090", 9100, 9100},
		{"pod/api-running", ":metrics", 9100, 9100},
	}
	for _, tt := range tests {
		t.Run(tt.target+" "+tt.port, func(t *testing.T) {
			before := len(k.forwardStarts())
			a := e.startAsync("port-forward", tt.target, tt.port)
			port := forwardingPort(t, a, tt.typed)
			if got := roundTrip(t, port, "ping"); got != "PING" {
				t.Errorf("round trip = %q", got)
			}
			a.stop()
			got := k.forwardStarts()
			if len(got) != before+1 {
				t.Fatalf("kubelet saw %d new forwards, want 1", len(got)-before)
			}
			if s := got[before]; s.GetPod() != "api-running" || s.GetPort() != tt.wantPort {
				t.Errorf("kubelet asked for %s:%d, want api-running:%d", s.GetPod(), s.GetPort(), tt.wantPort)
			}
		})
	}
	if got := e.fails("port-forward", "svc/api", "8080"); got != "Found 2 pods, using pod/api-running\nerror: Service api does not have a service port 8080\n" {
		t.Errorf("unknown service port: %q", got)
	}
}

func TestPortForwardNeedsARunningPod(t *testing.T) {
	e := newEnv(t)
	startFakeKubelet(t, e) // its pod "web" has not started
	if got := e.fails("port-forward", "gone", "80"); got != "Error from server (NotFound): pods \"gone\" not found\n" {
		t.Errorf("missing pod: %q", got)
	}
	if got := e.fails("port-forward", "deploy/gone", "80"); got != "Error from server (NotFound): deployments.apps \"gone\" not found\n" {
		t.Errorf("missing deployment: %q", got)
	}
	start := time.Now()
	if got := e.fails("port-forward", "--pod-running-timeout=300ms", "web", "80"); got != "error: unable to forward port because pod is not running. Current status=Pending\n" {
		t.Errorf("pending pod: %q", got)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("gave up after %s, before --pod-running-timeout", d)
	}
	a := e.startAsync("port-forward", "web", ":80")
	time.Sleep(2 * waitPoll)
	if out := a.out.String(); out != "" {
		t.Fatalf("forwarding to a pending pod: %q", out)
	}
	setPodPhase(t, e, "web", "Running")
	if got := roundTrip(t, forwardingPort(t, a, 80), "started"); got != "STARTED" {
		t.Errorf("round trip once the pod runs = %q", got)
	}
	setPodPhase(t, e, "web", "Succeeded")
	if got := e.fails("port-forward", "web", "80"); got != "error: unable to forward port because pod is not running. Current status=Succeeded\n" {
		t.Errorf("completed pod: %q", got)
	}
}

// TestPortForwardSkipsABusyPort protects kubectl's rule: a port that cannot
// listen is reported and the others are served; ctl fails only when no
// port listens.
func TestPortForwardSkipsABusyPort(t *testing.T) {
	e := newEnv(t)
	startForwardingKubelet(t, e)
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	busyPort := busy.Addr().(*net.TCPAddr).Port
	spec := fmt.Sprintf("%d:80", busyPort)
	a := e.startAsync("port-forward", "--address", "127.0.0.1", "web", spec, ":81")
	if got := roundTrip(t, forwardingPort(t, a, 81), "free"); got != "FREE" {
		t.Errorf("the free port answered %q", got)
	}
	wantErr := fmt.Sprintf("Unable to listen on port %d: listen tcp4 127.0.0.1:%d: bind: address already in use\n", busyPort, busyPort)
	if r := a.stop(); r.code != 0 || r.err != wantErr {
		t.Errorf("port-forward: %+v, want stderr %q", r, wantErr)
	}
	want := wantErr + fmt.Sprintf("error: unable to listen on any of the requested ports: %d -> 80\n", busyPort)
	if got := e.fails("port-forward", "--address", "127.0.0.1", "web", spec); got != want {
		t.Errorf("only a busy port: %q, want %q", got, want)
	}
}

// A forward ends, as kubectl's does, when its pod goes away or stops
// running: its listeners close and it fails with "lost connection to pod".
func TestPortForwardEndsWhenThePodIsLost(t *testing.T) {
	tests := []struct {
		name string
		lose func(t *testing.T, e *env)
	}{
		{"the pod is deleted", func(t *testing.T, e *env) {
			zero := int64(0)
			if _, err := e.client().Pods().Delete(context.Background(), "default", "web", client.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
				t.Fatal(err)
			}
		}},
		{"the pod stops running", func(t *testing.T, e *env) { setPodPhase(t, e, "web", "Succeeded") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			startForwardingKubelet(t, e)
			a := e.startAsync("port-forward", "--address", "127.0.0.1", "web", ":80")
			port := forwardingPort(t, a, 80)
			if got := roundTrip(t, port, "before"); got != "BEFORE" {
				t.Fatalf("forwarded %q before the pod was lost", got)
			}
			tt.lose(t, e)
			r := a.wait(t)
			if r.code != 1 || !strings.HasSuffix(r.err, "error: lost connection to pod\n") {
				t.Errorf("port-forward after its pod was lost: code %d, stderr %q", r.code, r.err)
			}
			if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				c.Close()
				t.Errorf("port %d still listens after the forward ended", port)
			}
			noForwarderGoroutines(t)
		})
	}
}

// An interrupted forward ends even while a local client writes and never
// reads: the pod's answers back up until the forward's own write blocks.
func TestPortForwardStopsWhileAClientDoesNotRead(t *testing.T) {
	e := newEnv(t)
	startForwardingKubelet(t, e)
	a := e.startAsync("port-forward", "--address", "127.0.0.1", "web", ":80")
	conn := dialLocal(t, forwardingPort(t, a, 80))
	var written atomic.Int64
	go func() {
		chunk := make([]byte, 64<<10)
		for range 400 { // 25 MB, far beyond every buffer on the way
			n, err := conn.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	// Everything is backed up once the client's writes stop going through.
	last := int64(-1)
	eventually(t, "the forward to back up", func() bool {
		time.Sleep(500 * time.Millisecond)
		now := written.Load()
		stalled := now == last && now > 0
		last = now
		return stalled
	})
	stopped := make(chan result, 1)
	go func() { stopped <- a.stop() }()
	select {
	case r := <-stopped:
		if r.code != 0 {
			t.Errorf("port-forward interrupted: %+v", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("port-forward did not end within 20s of an interrupt while a client was not reading")
	}
}
