package runtime

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/snapshots"

	"github.com/skiff-dev/skiff/internal/imagebuild"
	"github.com/skiff-dev/skiff/kubelet/containerdtest"
)

func TestNormalizeImage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nginx", "docker.io/library/nginx:latest"},
		{"nginx:1.25", "docker.io/library/nginx:1.25"},
		{"someone/app", "docker.io/someone/app:latest"},
		{"127.0.0.1:5000/busybox", "127.0.0.1:5000/busybox:latest"},
		{"registry.local/a/b:v1", "registry.local/a/b:v1"},
	}
	for _, tt := range tests {
		got, err := NormalizeImage(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("NormalizeImage(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := NormalizeImage("bad image"); err == nil {
		t.Error("NormalizeImage accepted an invalid reference")
	}
}

func TestProcessArgsFollowsKubernetesRules(t *testing.T) {
	ep, cmd := []string{"/ep"}, []string{"c1", "c2"}
	tests := []struct {
		name          string
		command, args []string
		want          []string
	}{
		{"image defaults", nil, nil, []string{"/ep", "c1", "c2"}},
		{"args replace cmd", nil, []string{"a"}, []string{"/ep", "a"}},
		{"command replaces both", []string{"/bin/x"}, nil, []string{"/bin/x"}},
		{"command and args", []string{"/bin/x"}, []string{"a"}, []string{"/bin/x", "a"}},
	}
	for _, tt := range tests {
		if got := processArgs(ep, cmd, tt.command, tt.args); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

// newTestRuntime starts a private containerd with the busybox image
// imported.
func newTestRuntime(t *testing.T) *Runtime {
	t.Helper()
	d := containerdtest.Start(t)
	r, err := New(Config{Address: d.Address, StateDir: filepath.Join(d.Dir, "fifo"), Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	var buf bytes.Buffer
	if err := imagebuild.Busybox(&buf, "busybox:latest"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Import(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestContainerLifecycle(t *testing.T) {
	r := newTestRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	img, err := r.EnsureImage(ctx, "busybox", PullNever)
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "c", "0.log")
	pod := PodRef{UID: "uid-1", Namespace: "default", Name: "p"}
	t.Cleanup(func() {
		if err := r.RemovePodCgroup(pod.UID); err != nil {
			t.Errorf("clean up pod cgroup: %v", err)
		}
	})
	c, err := r.CreateContainer(ctx, ContainerSpec{
		Pod: pod, Name: "main", Image: "busybox", Img: img, Hostname: "p", LogPath: logPath,
		Command: []string{"sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo hello; while true; do sleep 0.1; done"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != StatusRunning || c.Pod != pod || c.Name != "main" || c.StartedAt.IsZero() {
		t.Fatalf("created container = %+v", c)
	}
	waitFor(t, func() bool { b, _ := os.ReadFile(logPath); return strings.Contains(string(b), "hello") }, "log has hello")
	if own, err := r.PodContainers(ctx, pod.UID); err != nil || len(own) != 1 || own[0].ID != c.ID {
		t.Errorf("PodContainers(own) = %v, %v", own, err)
	}
	if other, err := r.PodContainers(ctx, "uid-2"); err != nil || len(other) != 0 {
		t.Errorf("PodContainers(other) = %v, %v", other, err)
	}
	fp, err := r.PodFingerprints(ctx)
	if err != nil || len(fp) != 1 || fp[pod.UID] == "" {
		t.Fatalf("fingerprints = %v, %v", fp, err)
	}

	var out, errOut bytes.Buffer
	code, err := r.Exec(ctx, c.ID, ExecOptions{Command: []string{"sh", "-c", "hostname; echo err >&2; exit 7"}, Stdout: &out, Stderr: &errOut})
	if err != nil {
		t.Fatal(err)
	}
	if code != 7 || out.String() != "p\n" || errOut.String() != "err\n" {
		t.Errorf("exec: code %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	var catOut bytes.Buffer
	code, err = r.Exec(ctx, c.ID, ExecOptions{Command: []string{"cat"}, Stdin: strings.NewReader("from stdin"), Stdout: &catOut})
	if err != nil || code != 0 || catOut.String() != "from stdin" {
		t.Errorf("exec cat with stdin: code %d, err %v, output %q", code, err, catOut.String())
	}

	if err := r.StopContainer(ctx, c.ID, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	list, err := r.Containers(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("containers = %v, %v", list, err)
	}
	if got := list[0]; got.Status != StatusExited || got.ExitCode != 3 || got.FinishedAt.IsZero() {
		t.Errorf("after SIGTERM: %+v", got)
	}
	if b, _ := os.ReadFile(logPath); !strings.Contains(string(b), "got TERM") {
		t.Errorf("log %q lacks the TERM trap's output", b)
	}
	if fp2, _ := r.PodFingerprints(ctx); fp2[pod.UID] == fp[pod.UID] {
		t.Errorf("fingerprint %q did not change when the container exited", fp2[pod.UID])
	}
	if err := r.RemoveContainer(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if list, _ := r.Containers(ctx); len(list) != 0 {
		t.Errorf("containers after remove: %v", list)
	}
	var snaps []string
	if err := r.client.SnapshotService("").Walk(ctx, func(_ context.Context, i snapshots.Info) error {
		if i.Kind == snapshots.KindActive {
			snaps = append(snaps, i.Name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 0 {
		t.Errorf("active snapshots left: %v", snaps)
	}
}

// A create whose caller gives up half-way is finished by containerd anyway
// (the task, and runc's cgroups under the pod cgroup, appear after the
// caller cleaned up), so CreateContainer never lets its caller's
// cancellation cut it short: it ends with a running container the caller
// can stop and remove.
func TestCreateContainerIsNotCutShortByCancellation(t *testing.T) {
	r := newTestRuntime(t)
	img, err := r.EnsureImage(context.Background(), "busybox", PullNever)
	if err != nil {
		t.Fatal(err)
	}
	pod := PodRef{UID: "uid-cancelled-create", Namespace: "default", Name: "p"}
	t.Cleanup(func() {
		if err := r.RemovePodCgroup(pod.UID); err != nil {
			t.Errorf("clean up pod cgroup: %v", err)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the pod was deleted as its container was about to be created
	c, err := r.CreateContainer(ctx, ContainerSpec{
		Pod: pod, Name: "main", Image: "busybox", Img: img, Hostname: "p",
		LogPath: filepath.Join(t.TempDir(), "c", "0.log"), Command: []string{"sleep", "3600"},
	})
	if err != nil {
		t.Fatalf("CreateContainer on a cancelled context: %v", err)
	}
	if c.Status != StatusRunning {
		t.Fatalf("container %+v, want it running", c)
	}
	bg := context.Background()
	if err := r.StopContainer(bg, c.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveContainer(bg, c.ID); err != nil {
		t.Fatal(err)
	}
	if left, err := r.PodContainers(bg, pod.UID); err != nil || len(left) != 0 {
		t.Errorf("containers left: %v, %v", left, err)
	}
}

func TestSandboxRecords(t *testing.T) {
	r := newTestRuntime(t)
	ctx := context.Background()
	pod := PodRef{UID: "u2", Namespace: "ns", Name: "web"}
	now := time.Now().Truncate(time.Millisecond)
	if err := r.CreateSandbox(ctx, Sandbox{Pod: pod, NetNSPath: "/run/x/ns1", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := r.SetSandboxIP(ctx, pod.UID, "10.1.2.3"); err != nil {
		t.Fatal(err)
	}
	if sb, err := r.PodSandbox(ctx, pod.UID); err != nil || sb == nil || sb.IP != "10.1.2.3" {
		t.Errorf("PodSandbox = %+v, %v", sb, err)
	}
	if sb, err := r.PodSandbox(ctx, "none"); err != nil || sb != nil {
		t.Errorf("PodSandbox(none) = %+v, %v", sb, err)
	}
	sbs, err := r.Sandboxes(ctx)
	if err != nil || len(sbs) != 1 {
		t.Fatalf("sandboxes = %v, %v", sbs, err)
	}
	if sb := sbs[0]; sb.Pod != pod || sb.NetNSPath != "/run/x/ns1" || sb.IP != "10.1.2.3" || !sb.CreatedAt.Equal(now) {
		t.Errorf("sandbox = %+v", sb)
	}
	if err := r.RemoveSandbox(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveSandbox(ctx, pod.UID); err != nil {
		t.Errorf("second remove: %v", err)
	}
	if sbs, _ := r.Sandboxes(ctx); len(sbs) != 0 {
		t.Errorf("sandboxes after remove: %v", sbs)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A create cut short after the snapshot and before the container record
// (the kubelet killed) leaves a snapshot under the container's id; the
// next create of that container must not fail on it forever.
func TestCreateContainerRemovesAnOrphanedSnapshot(t *testing.T) {
	r := newTestRuntime(t)
	bg := context.Background()
	img, err := r.EnsureImage(bg, "busybox", PullNever)
	if err != nil {
		t.Fatal(err)
	}
	pod := PodRef{UID: "uid-orphaned-snapshot", Namespace: "default", Name: "p"}
	t.Cleanup(func() {
		if err := r.RemovePodCgroup(pod.UID); err != nil {
			t.Errorf("clean up pod cgroup: %v", err)
		}
	})
	spec := ContainerSpec{
		Pod: pod, Name: "main", Image: "busybox", Img: img, Hostname: "p",
		LogPath: filepath.Join(t.TempDir(), "c", "0.log"), Command: []string{"sleep", "3600"},
	}
	c, err := r.CreateContainer(bg, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.StopContainer(bg, c.ID, 0); err != nil {
		t.Fatal(err)
	}
	// Delete the container record only: its snapshot stays behind.
	ctr, err := r.client.LoadContainer(bg, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if task, err := ctr.Task(bg, nil); err == nil {
		if _, err := task.Delete(bg); err != nil {
			t.Fatal(err)
		}
	}
	if err := ctr.Delete(bg); err != nil {
		t.Fatal(err)
	}

	again, err := r.CreateContainer(bg, spec)
	if err != nil {
		t.Fatalf("create over an orphaned snapshot: %v", err)
	}
	if again.ID != c.ID || again.Status != StatusRunning {
		t.Errorf("recreated container %+v, want %s running", again, c.ID)
	}
	if err := r.StopContainer(bg, again.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveContainer(bg, again.ID); err != nil {
		t.Fatal(err)
	}
}
