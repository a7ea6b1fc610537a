package cmd

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"

	"github.com/skiff-dev/skiff/proto/api"
)

// fakeKubelet answers exec and logs like a kubelet would, without
// containers: "echo ARGS" prints, "cat" echoes stdin, "exit N" exits with N.
type fakeKubelet struct {
	api.UnimplementedKubeletServer
	mu      sync.Mutex
	started []*api.ExecStart
	logs    []*api.LogsRequest
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
	case "exit":
		code, _ := strconv.Atoi(cmd[1])
		return stream.Send(&api.ExecOutput{Exited: true, ExitCode: int32(code)})
	}
	return stream.Send(&api.ExecOutput{Exited: true})
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

// startFakeKubelet serves a fake kubelet on loopback and registers a node
// and a running pod bound to it.
func startFakeKubelet(t *testing.T, e *env) *fakeKubelet {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	k := &fakeKubelet{}
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
