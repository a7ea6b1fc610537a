package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/kubelet/runtime"
	"github.com/skiff-dev/skiff/proto/api"
)

// httpdScript serves /www on port 80 and reports SIGTERM on stdout before
// exiting; busybox httpd alone as PID 1 would ignore SIGTERM.
const httpdScript = `mkdir -p /www; echo "hello from $(hostname)" > /www/index.html; echo started;
trap 'echo TERM-received; sleep 1; exit 0' TERM; httpd -f -p 80 -h /www & wait`

func busybox(name string, script string) *api.Container {
	return &api.Container{Name: name, Image: "busybox", ImagePullPolicy: "IfNotPresent", Command: []string{"sh", "-c", script}}
}

func execInPod(t *testing.T, e *env, pod string, cmd ...string) (stdout, stderr string, code int) {
	t.Helper()
	return execInContainer(t, e, pod, "", cmd...)
}

// execInContainer runs cmd in one container of a pod ("": its only one).
func execInContainer(t *testing.T, e *env, pod, container string, cmd ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := e.cluster.Client.API.Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&api.ExecInput{Start: &api.ExecStart{Namespace: "default", Pod: pod, Container: container, Command: cmd}}); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	for {
		msg, err := stream.Recv()
		if err != nil {
			t.Fatalf("exec %v: %v", cmd, err)
		}
		out.Write(msg.GetStdout())
		errOut.Write(msg.GetStderr())
		if msg.GetExited() {
			return out.String(), errOut.String(), int(msg.GetExitCode())
		}
	}
}

func logsOf(t *testing.T, e *env, pod string, previous bool) string {
	t.Helper()
	return e.logs(t, &api.LogsRequest{Namespace: "default", Pod: pod, Previous: previous})
}

// logs reads a whole log stream through the apiserver.
func (e *env) logs(t *testing.T, req *api.LogsRequest) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := e.cluster.Client.API.Logs(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out.String()
		}
		if err != nil {
			t.Fatalf("logs of %s/%s: %v", req.GetPod(), req.GetContainer(), err)
		}
		out.Write(chunk.GetData())
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	var lastErr error
	for i := 0; i < 50; i++ {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, lastErr)
	return ""
}

func TestPodRunsServesExecLogsSurvivesRestartAndDeletesCleanly(t *testing.T) {
	e := newEnv(t)
	e.createPod("web", busybox("main", httpdScript))
	pod := e.waitPod(t, "web", 60*time.Second, "Running", running)
	st := pod.GetStatus()

	// It got an IP from the node's pod CIDR and serves HTTP to the node.
	_, cidr, _ := net.ParseCIDR(e.cfg.PodCIDR)
	if ip := net.ParseIP(st.GetPodIp()); ip == nil || !cidr.Contains(ip) || len(st.GetPodIps()) != 1 {
		t.Fatalf("podIP %q (podIPs %v) not in %s", st.GetPodIp(), st.GetPodIps(), e.cfg.PodCIDR)
	}
	if st.GetHostIp() != "127.0.0.1" || st.GetStartTime() == nil {
		t.Errorf("hostIP %q startTime %v", st.GetHostIp(), st.GetStartTime())
	}
	conds := map[string]string{}
	for _, c := range st.GetConditions() {
		conds[c.GetType()] = c.GetStatus()
	}
	for _, c := range []string{"PodScheduled", "Initialized", "ContainersReady", "Ready"} {
		if conds[c] != "True" {
			t.Errorf("condition %s = %q, want True (all: %v)", c, conds[c], conds)
		}
	}
	if body := httpGet(t, "http://"+st.GetPodIp()+"/"); body != "hello from web\n" {
		t.Errorf("GET pod = %q, want the pod's hostname page", body)
	}

	// exec (ctl → apiserver → kubelet → containerd) returns output and code.
	stdout, stderr, code := execInPod(t, e, "web", "sh", "-c", "cat /etc/resolv.conf; echo to-stderr >&2; exit 3")
	if code != 3 || stderr != "to-stderr\n" {
		t.Errorf("exec: code %d stderr %q", code, stderr)
	}
	for _, want := range []string{"nameserver 10.96.0.10", "search default.svc.cluster.local svc.cluster.local cluster.local"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("resolv.conf %q lacks %q", stdout, want)
		}
	}
	// logs show what the container printed.
	if logs := logsOf(t, e, "web", false); !strings.Contains(logs, "started") {
		t.Errorf("logs = %q, want them to contain started", logs)
	}

	// A restarted kubelet adopts the running pod: same container, same
	// process, same IP, no restart.
	before := e.containers(t)
	e.stop()
	e.start()
	time.Sleep(3 * time.Second) // a relist, pod syncs and a node status round
	after := e.containers(t)
	if len(before) != 1 || len(after) != 1 || before[0].ID != after[0].ID || before[0].Pid != after[0].Pid || after[0].Status != runtime.StatusRunning {
		t.Fatalf("containers before restart %+v, after %+v", before, after)
	}
	pod = e.waitPod(t, "web", 10*time.Second, "Running after kubelet restart", running)
	if pod.GetStatus().GetPodIp() != st.GetPodIp() || pod.GetStatus().GetContainerStatuses()[0].GetRestartCount() != 0 {
		t.Errorf("after kubelet restart: podIP %s (was %s), status %v", pod.GetStatus().GetPodIp(), st.GetPodIp(), pod.GetStatus())
	}
	if body := httpGet(t, "http://"+st.GetPodIp()+"/"); body != "hello from web\n" {
		t.Errorf("GET pod after kubelet restart = %q", body)
	}

	// Delete: Terminating, SIGTERM reaches the process, then everything goes.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	follow, err := e.cluster.Client.API.Logs(ctx, &api.LogsRequest{Namespace: "default", Pod: "web", Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	sawTerm := make(chan bool, 1)
	go func() {
		var all strings.Builder
		for {
			chunk, err := follow.Recv()
			if err != nil {
				sawTerm <- false
				return
			}
			all.Write(chunk.GetData())
			if strings.Contains(all.String(), "TERM-received") {
				sawTerm <- true
				return
			}
		}
	}()
	time.Sleep(500 * time.Millisecond) // the follow stream is open
	deleted, err := e.pods().Delete(ctx, "default", "web", client.DeleteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if deleted.GetMetadata().GetDeletionTimestamp() == nil {
		t.Fatalf("pod deleted at once, want Terminating with a grace period")
	}
	if !<-sawTerm {
		t.Error("the container never logged TERM-received: SIGTERM not delivered")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := e.pods().Get(ctx, "default", "web")
		if client.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod still present after deletion: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if left := e.containers(t); len(left) != 0 {
		t.Errorf("containers left: %+v", left)
	}
	if n := e.activeSnapshots(); n != 0 {
		t.Errorf("%d snapshots left", n)
	}
	if ips := e.leases(); len(ips) != 0 {
		t.Errorf("IP leases left: %v", ips)
	}
	if ns, _ := os.ReadDir(filepath.Join(e.cfg.RootDir, "netns")); len(ns) != 0 {
		t.Errorf("network namespaces left: %v", ns)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.RootDir, "pods", pod.GetMetadata().GetUid())); !os.IsNotExist(err) {
		t.Errorf("pod dir left: %v", err)
	}
	for _, cg := range []string{"/sys/fs/cgroup/memory/skiff/pod", "/sys/fs/cgroup/pids/skiff/pod", "/sys/fs/cgroup/skiff/pod"} {
		if _, err := os.Stat(cg + pod.GetMetadata().GetUid()); !os.IsNotExist(err) {
			t.Errorf("pod cgroup left: %v", err)
		}
	}
}

// containers lists the pod containers in the kubelet's containerd namespace.
func (e *env) containers(t testing.TB) []*runtime.Container {
	t.Helper()
	rt, err := runtime.New(runtime.Config{Address: e.ctrd.Address})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ctrs, err := rt.Containers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ctrs
}

func TestCrashLoopBackOffAndImagePullErrors(t *testing.T) {
	e := newEnv(t)
	e.createPod("missing", &api.Container{Name: "main", Image: "127.0.0.1:1/missing:v1"})

	// A missing image shows ErrImagePull with the reason, then back-off.
	p := e.waitPod(t, "missing", 30*time.Second, "ErrImagePull", func(p *api.Pod) bool { return waitingReason(p) == "ErrImagePull" })
	if msg := p.GetStatus().GetContainerStatuses()[0].GetState().GetWaiting().GetMessage(); !strings.Contains(msg, "127.0.0.1:1/missing:v1") {
		t.Errorf("ErrImagePull message %q does not name the image", msg)
	}
	if p.GetStatus().GetPhase() != "Pending" {
		t.Errorf("phase = %s, want Pending", p.GetStatus().GetPhase())
	}
	e.waitPod(t, "missing", 30*time.Second, "ImagePullBackOff", func(p *api.Pod) bool { return waitingReason(p) == "ImagePullBackOff" })

	// A crashing container is restarted with growing back-off (1s, 2s, 4s
	// here) and shows CrashLoopBackOff, the back-off, and its restarts.
	e.createPod("crash", busybox("main", "echo crashing; exit 1"))
	var backoffs []time.Duration // distinct back-offs, in the order seen
	e.waitPod(t, "crash", 60*time.Second, "3 restarts", func(p *api.Pod) bool {
		cs := p.GetStatus().GetContainerStatuses()
		if len(cs) == 0 {
			return false
		}
		if w := cs[0].GetState().GetWaiting(); w.GetReason() == "CrashLoopBackOff" {
			if last := cs[0].GetLastState().GetTerminated(); last.GetExitCode() != 1 || last.GetReason() != "Error" {
				t.Errorf("lastState = %v, want terminated Error exit 1", last)
			}
			var d string
			if _, err := fmt.Sscanf(w.GetMessage(), "back-off %s restarting", &d); err != nil {
				t.Errorf("CrashLoopBackOff message %q does not state the back-off", w.GetMessage())
			} else if dur, err := time.ParseDuration(d); err == nil && (len(backoffs) == 0 || backoffs[len(backoffs)-1] != dur) {
				backoffs = append(backoffs, dur)
			}
		}
		return cs[0].GetRestartCount() >= 3 && len(backoffs) > 0 && backoffs[len(backoffs)-1] >= 4*time.Second
	})
	for i := 1; i < len(backoffs); i++ {
		if backoffs[i] <= backoffs[i-1] {
			t.Errorf("back-off does not grow: %v", backoffs)
		}
	}
	if len(backoffs) < 2 {
		t.Errorf("saw back-offs %v, want at least two growing ones", backoffs)
	}
	// The kubelet recorded what happened as Events on the pod.
	evs, _, err := e.cluster.Client.Events().List(context.Background(), "default", client.ListOptions{FieldSelector: "involvedObject.name=crash"})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]bool{}
	for _, ev := range evs {
		reasons[ev.GetReason()] = true
	}
	if !reasons["Started"] || !reasons["BackOff"] {
		t.Errorf("events of the crashing pod have reasons %v, want Started and BackOff", reasons)
	}
	if logs := logsOf(t, e, "crash", true); !strings.Contains(logs, "crashing") {
		t.Errorf("previous logs = %q", logs)
	}
}

func TestFinishedPodReleasesItsIPAndKeepsLogs(t *testing.T) {
	e := newEnv(t)
	t.Run("hostNetwork pod serves on the node's address", func(t *testing.T) { testHostNetwork(t, e) })
	t.Run("a container ignoring SIGTERM is killed after the grace period", func(t *testing.T) { testGracePeriodKill(t, e) })
	t.Run("deleting a pod stuck pulling its image does not wait for the pull", func(t *testing.T) { testDeleteDuringPull(t, e) })
	grace := int64(5)
	if _, err := e.pods().Create(context.Background(), &api.Pod{
		Metadata: &api.ObjectMeta{Name: "job", Namespace: "default"},
		Spec: &api.PodSpec{NodeName: e.cfg.NodeName, RestartPolicy: "Never", TerminationGracePeriodSeconds: &grace,
			Containers: []*api.Container{busybox("main", "echo all done")}},
	}); err != nil {
		t.Fatal(err)
	}
	p := e.waitPod(t, "job", 60*time.Second, "Succeeded", func(p *api.Pod) bool { return p.GetStatus().GetPhase() == "Succeeded" })
	term := p.GetStatus().GetContainerStatuses()[0].GetState().GetTerminated()
	if term.GetReason() != "Completed" || term.GetExitCode() != 0 || p.GetStatus().GetPodIp() == "" {
		t.Errorf("finished pod status: %v", p.GetStatus())
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(e.leases()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the finished pod still holds its IP: %v", e.leases())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if logs := logsOf(t, e, "job", false); logs != "all done\n" {
		t.Errorf("logs = %q", logs)
	}
	time.Sleep(2 * time.Second) // more syncs: the pod must stay finished, not restarted
	if p := e.waitPod(t, "job", time.Second, "Succeeded", func(p *api.Pod) bool { return p.GetStatus().GetPhase() == "Succeeded" }); p.GetStatus().GetContainerStatuses()[0].GetRestartCount() != 0 {
		t.Errorf("finished pod was restarted: %v", p.GetStatus())
	}
	if _, err := e.pods().Delete(context.Background(), "default", "job", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for len(e.containers(t)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("containers left after delete: %v", e.containers(t))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func testHostNetwork(t *testing.T, e *env) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := lis.Addr().(*net.TCPAddr).Port
	lis.Close()
	grace := int64(1)
	if _, err := e.pods().Create(context.Background(), &api.Pod{
		Metadata: &api.ObjectMeta{Name: "hostnet", Namespace: "default"},
		Spec: &api.PodSpec{NodeName: e.cfg.NodeName, HostNetwork: true, TerminationGracePeriodSeconds: &grace,
			Containers: []*api.Container{busybox("main", fmt.Sprintf("mkdir -p /www; echo on-host > /www/index.html; exec httpd -f -p 127.0.0.1:%d -h /www", port))}},
	}); err != nil {
		t.Fatal(err)
	}
	p := e.waitPod(t, "hostnet", 60*time.Second, "Running", running)
	if p.GetStatus().GetPodIp() != "127.0.0.1" {
		t.Errorf("hostNetwork podIP = %q, want the node IP", p.GetStatus().GetPodIp())
	}
	if body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); body != "on-host\n" {
		t.Errorf("GET = %q", body)
	}
	if len(e.leases()) != 0 {
		t.Errorf("a hostNetwork pod took an IP lease: %v", e.leases())
	}
	zero := int64(0)
	if _, err := e.pods().Delete(context.Background(), "default", "hostnet", client.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
}

func testGracePeriodKill(t *testing.T, e *env) {
	// sleep as PID 1 has no SIGTERM handler, so the kernel ignores it.
	grace := int64(2)
	if _, err := e.pods().Create(context.Background(), &api.Pod{
		Metadata: &api.ObjectMeta{Name: "stubborn", Namespace: "default"},
		Spec: &api.PodSpec{NodeName: e.cfg.NodeName, TerminationGracePeriodSeconds: &grace,
			Containers: []*api.Container{{Name: "main", Image: "busybox", ImagePullPolicy: "IfNotPresent", Command: []string{"sleep", "1000"}}}},
	}); err != nil {
		t.Fatal(err)
	}
	e.waitPod(t, "stubborn", 60*time.Second, "Running", running)
	start := time.Now()
	if _, err := e.pods().Delete(context.Background(), "default", "stubborn", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := e.pods().Get(context.Background(), "default", "stubborn")
		if client.IsNotFound(err) {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("pod not gone 30s after delete: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("pod gone after %v, before its 2s grace period", took)
	}
}

func testDeleteDuringPull(t *testing.T, e *env) {
	// A registry that accepts connections and never answers.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		<-accepted
		for _, c := range conns {
			c.Close()
		}
	})
	e.createPod("stuck", &api.Container{Name: "main", Image: lis.Addr().String() + "/hang:v1"})
	e.waitPod(t, "stuck", 30*time.Second, "ContainerCreating", func(p *api.Pod) bool { return waitingReason(p) == "ContainerCreating" })
	time.Sleep(time.Second) // the pull is under way
	start := time.Now()
	zero := int64(0)
	if _, err := e.pods().Delete(context.Background(), "default", "stuck", client.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	// Grace 0 removes the object at once; the kubelet must still clean up.
	deadline := time.Now().Add(20 * time.Second)
	for len(e.leases()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the stuck pod's sandbox is still there %v after delete", time.Since(start))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
