package app

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/intstr"
	"github.com/skiff-dev/skiff/kubelet/runtime"
	"github.com/skiff-dev/skiff/proto/api"
)

func TestProbesLimitsTTYAndOrphans(t *testing.T) {
	e := newEnv(t)

	probed := busybox("main", `mkdir -p /www; touch /tmp/alive; httpd -f -p 80 -h /www`)
	probed.ReadinessProbe = &api.Probe{HttpGet: &api.HTTPGetAction{Path: "/ready", Port: intstr.FromString("http")}, PeriodSeconds: 1}
	// A generous timeout: under CI's load an exec can take over the default
	// second, and a liveness restart would drop the /www/ready file the
	// readiness check below touches. A removed /tmp/alive still fails fast.
	probed.LivenessProbe = &api.Probe{Exec: &api.ExecAction{Command: []string{"test", "-f", "/tmp/alive"}}, PeriodSeconds: 1, FailureThreshold: 2, TimeoutSeconds: 15}
	probed.Ports = []*api.ContainerPort{{Name: "http", ContainerPort: 80}}
	probed.Resources = &api.ResourceRequirements{Limits: map[string]string{"memory": "64Mi", "cpu": "500m"}}
	e.createPod("probed", probed)
	e.createPod("orphan", busybox("main", "sleep 1000"))

	t.Run("readiness probe gates the Ready condition", func(t *testing.T) {
		p := e.waitPod(t, "probed", 60*time.Second, "Running", running)
		if ready(p) {
			t.Fatal("Ready before the readiness probe passed")
		}
		if _, _, code := execInPod(t, e, "probed", "touch", "/www/ready"); code != 0 {
			t.Fatal("touch failed")
		}
		e.waitPod(t, "probed", 20*time.Second, "Ready", ready)
	})

	t.Run("limits become cgroup limits", func(t *testing.T) {
		p := e.waitPod(t, "probed", 60*time.Second, "Running", running)
		var id string
		for _, c := range e.containers(t) {
			if c.Pod.UID == p.GetMetadata().GetUid() && c.Status == runtime.StatusRunning {
				id = c.ID
			}
		}
		// The pod cgroup /skiff/pod<uid> holds the container's cgroup;
		// both carry the limits (the pod's are the sum over its containers).
		pod := "/skiff/pod" + p.GetMetadata().GetUid()
		files := map[string]string{}
		for _, cg := range []string{pod, pod + "/" + id} {
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil { // cgroup v2
				files["/sys/fs/cgroup"+cg+"/memory.max"] = "67108864"
				files["/sys/fs/cgroup"+cg+"/cpu.max"] = "50000 100000"
			} else {
				files["/sys/fs/cgroup/memory"+cg+"/memory.limit_in_bytes"] = "67108864"
				files["/sys/fs/cgroup/cpu"+cg+"/cpu.cfs_quota_us"] = "50000"
			}
		}
		for file, want := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Errorf("cgroup file: %v", err)
				continue
			}
			if got := strings.TrimSpace(string(b)); got != want {
				t.Errorf("%s = %s, want %s", file, got, want)
			}
		}
	})

	t.Run("exec with a TTY, stdin and resize", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		stream, err := e.cluster.Client.API.Exec(ctx)
		if err != nil {
			t.Fatal(err)
		}
		start := &api.ExecStart{Namespace: "default", Pod: "probed", Command: []string{"sh"}, Stdin: true, Tty: true, Size: &api.TerminalSize{Width: 100, Height: 30}}
		if err := stream.Send(&api.ExecInput{Start: start}); err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&api.ExecInput{Stdin: []byte("stty size\n")}); err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		recv := make(chan *api.ExecOutput)
		go func() {
			defer close(recv)
			for {
				msg, err := stream.Recv()
				if err != nil {
					return
				}
				recv <- msg
			}
		}()
		waitOutput := func(want string) {
			t.Helper()
			for !strings.Contains(out.String(), want) {
				select {
				case msg, ok := <-recv:
					if !ok {
						t.Fatalf("stream ended; output %q lacks %q", out.String(), want)
					}
					out.Write(msg.GetStdout())
				case <-ctx.Done():
					t.Fatalf("output %q lacks %q", out.String(), want)
				}
			}
		}
		waitOutput("30 100")
		if err := stream.Send(&api.ExecInput{Resize: &api.TerminalSize{Width: 120, Height: 40}}); err != nil {
			t.Fatal(err)
		}
		// A resize overtakes nothing: it reaches the TTY soon, not before
		// input sent after it. Ask until the shell sees the new size.
		for i := 0; !strings.Contains(out.String(), "40 120"); i++ {
			if i == 50 {
				t.Fatalf("the TTY never got the new size: %q", out.String())
			}
			if err := stream.Send(&api.ExecInput{Stdin: []byte("stty size\n")}); err != nil {
				t.Fatal(err)
			}
			select {
			case msg, ok := <-recv:
				if !ok {
					t.Fatalf("stream ended: %q", out.String())
				}
				out.Write(msg.GetStdout())
			case <-time.After(200 * time.Millisecond):
			}
		}
		if err := stream.Send(&api.ExecInput{Stdin: []byte("exit 5\n")}); err != nil {
			t.Fatal(err)
		}
		for msg := range recv {
			if msg.GetExited() {
				if msg.GetExitCode() != 5 {
					t.Errorf("exit code %d, want 5", msg.GetExitCode())
				}
				return
			}
		}
		t.Error("no exit code")
	})

	t.Run("liveness probe failure restarts the container", func(t *testing.T) {
		if _, _, code := execInPod(t, e, "probed", "rm", "/tmp/alive"); code != 0 {
			t.Fatal("rm failed")
		}
		e.waitPod(t, "probed", 30*time.Second, "a restart", func(p *api.Pod) bool {
			cs := p.GetStatus().GetContainerStatuses()
			return len(cs) == 1 && cs[0].GetRestartCount() >= 1
		})
	})

	t.Run("pods deleted while the kubelet was down are cleaned up", func(t *testing.T) {
		p := e.waitPod(t, "orphan", 60*time.Second, "Running", running)
		uid := p.GetMetadata().GetUid()
		e.stop()
		zero := int64(0)
		if _, err := e.pods().Delete(context.Background(), "default", "orphan", client.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatal(err)
		}
		e.start()
		deadline := time.Now().Add(30 * time.Second)
		for {
			left := 0
			for _, c := range e.containers(t) {
				if c.Pod.UID == uid {
					left++
				}
			}
			if left == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d containers of the deleted pod still there", left)
			}
			time.Sleep(200 * time.Millisecond)
		}
		// probed keeps its lease; orphan's is released.
		if ips := e.leases(); len(ips) != 1 {
			t.Errorf("leases = %v, want only the probed pod's", ips)
		}
		// The running pod was adopted, not restarted.
		e.waitPod(t, "probed", 20*time.Second, "Running", running)
	})
}

func ready(p *api.Pod) bool {
	for _, c := range p.GetStatus().GetConditions() {
		if c.GetType() == "Ready" {
			return c.GetStatus() == "True"
		}
	}
	return false
}
