package pods

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/skiff-dev/skiff/internal/imagebuild"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/kubelet/cni"
	"github.com/skiff-dev/skiff/kubelet/containerdtest"
	"github.com/skiff-dev/skiff/kubelet/runtime"
	"github.com/skiff-dev/skiff/proto/api"
)

// cancelOnFailure stands for the pod's deletion arriving while its
// container is created: it cancels the sync's context the moment the
// worker reports the create failed, before the worker cleans up.
type cancelOnFailure struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	seen   []string
}

func (c *cancelOnFailure) Eventf(_ kinds.Object, typ, reason, format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = append(c.seen, reason+": "+fmt.Sprintf(format, args...))
	if typ == "Warning" && reason == "Failed" {
		c.cancel()
	}
}

// newTestWorker is a worker for a fresh pod uid on a private containerd
// with busybox imported, in the kubelet's containerd namespace (so the
// pod cgroup is the real /skiff/pod<uid>, removed when the test ends).
func newTestWorker(t *testing.T, rec *cancelOnFailure) (*worker, *runtime.Runtime) {
	t.Helper()
	d := containerdtest.Start(t)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rt, err := runtime.New(runtime.Config{Address: d.Address, StateDir: filepath.Join(d.Dir, "fifo"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	var buf bytes.Buffer
	if err := imagebuild.Busybox(&buf, "busybox:latest"); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Import(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	uid := "test-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		if err := rt.RemovePodCgroup(uid); err != nil {
			t.Errorf("clean up pod cgroup: %v", err)
		}
	})
	m := NewManager(Config{NodeName: "node-test", RootDir: t.TempDir(), Recorder: rec, Logger: log}, rt, nil, nil)
	return newWorker(m, uid), rt
}

// podCgroupDirs are the pod cgroup's directories that exist, in every
// hierarchy.
func podCgroupDirs(t *testing.T, rt *runtime.Runtime, uid string) []string {
	t.Helper()
	pattern := filepath.Join(runtime.DefaultCgroupRoot, "*", rt.PodCgroup(uid))
	if _, err := os.Stat(filepath.Join(runtime.DefaultCgroupRoot, "cgroup.controllers")); err == nil {
		pattern = filepath.Join(runtime.DefaultCgroupRoot, rt.PodCgroup(uid))
	}
	dirs, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

func TestContainerCreateCancelledByPodDeletionLeavesNothingBehind(t *testing.T) {
	rec := &cancelOnFailure{}
	w, rt := newTestWorker(t, rec)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sctx, cancelSync := context.WithCancel(ctx)
	defer cancelSync()
	rec.cancel = cancelSync

	// The create fails in containerd (runc cannot run the command); the
	// deletion cancels the sync right then, before the worker's clean-up.
	c := &api.Container{Name: "main", Image: "busybox", ImagePullPolicy: "IfNotPresent", Command: []string{"/no/such/command"}}
	pod := &api.Pod{
		Metadata: &api.ObjectMeta{Uid: w.uid, Namespace: "default", Name: "p"},
		Spec:     &api.PodSpec{NodeName: "node-test", Containers: []*api.Container{c}},
	}
	if err := rt.EnsurePodCgroup(w.uid, 64<<20, 500); err != nil {
		t.Fatal(err)
	}
	if err := w.writePodFiles(pod, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	wt, _ := w.start(sctx, pod, &runtime.Sandbox{Pod: podRef(pod)}, c, 0)
	if wt == nil || wt.Reason != "CreateContainerError" {
		t.Fatalf("start = %+v, want CreateContainerError (events %q)", wt, rec.seen)
	}
	if sctx.Err() == nil {
		t.Fatalf("the sync was not cancelled: events %q", rec.seen)
	}

	// The clean-up ran although the sync's context was cancelled: no
	// container, no task, no snapshot.
	if left, err := rt.PodContainers(ctx, w.uid); err != nil || len(left) != 0 {
		t.Errorf("containers left after the cancelled create: %+v, %v", left, err)
	}
	nctx := namespaces.WithNamespace(ctx, runtime.DefaultNamespace)
	resp, err := rt.Client().TaskService().List(nctx, &tasks.ListTasksRequest{})
	if err != nil || len(resp.GetTasks()) != 0 {
		t.Errorf("tasks left: %v, %v", resp.GetTasks(), err)
	}
	active := 0
	if err := rt.Client().SnapshotService("").Walk(nctx, func(_ context.Context, i snapshots.Info) error {
		if i.Kind == snapshots.KindActive {
			active++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if active != 0 {
		t.Errorf("%d snapshots left", active)
	}

	// What a create cut short leaves in the pod cgroup: an empty child
	// cgroup per hierarchy. Terminating the pod removes them and the pod
	// cgroup itself.
	dirs := podCgroupDirs(t, rt, w.uid)
	if len(dirs) == 0 {
		t.Fatal("no pod cgroup was made")
	}
	for _, dir := range dirs {
		if err := os.MkdirAll(filepath.Join(dir, "cut-short", "nested"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.terminate(ctx, pod, true); err != nil {
		t.Fatalf("terminate: %v", err)
	}
	if left := podCgroupDirs(t, rt, w.uid); len(left) != 0 {
		t.Errorf("pod cgroups left: %v", left)
	}
	if _, err := os.Stat(w.m.PodDir(w.uid)); !os.IsNotExist(err) {
		t.Errorf("pod dir left: %v", err)
	}
}

// newTestNetwork is a pod network on a bridge of its own with a random
// pod CIDR, removed when the test ends.
func newTestNetwork(t *testing.T) (*cni.Network, cni.Config) {
	t.Helper()
	containerdtest.RequireRoot(t, "ip", "iptables", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback")
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	root := t.TempDir()
	cfg := cni.Config{
		NetworkName: "skp-" + suffix, Bridge: "skp" + suffix,
		PodCIDR:    fmt.Sprintf("10.%d.%d.0/24", 200+int(b[0])%50, int(b[1])%250),
		PluginDirs: []string{"/usr/lib/cni"},
		ConfDir:    filepath.Join(root, "conf"), DataDir: filepath.Join(root, "data"), NetNSDir: filepath.Join(root, "netns"),
	}
	n, err := cni.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "link", "del", cfg.Bridge).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find") {
			t.Logf("ip link del %s: %v %s", cfg.Bridge, err, out)
		}
	})
	return n, cfg
}

func TestSandboxSetUpCancelledByPodDeletionLeavesNoNetworkNamespace(t *testing.T) {
	w, rt := newTestWorker(t, &cancelOnFailure{cancel: func() {}})
	network, cfg := newTestNetwork(t)
	w.m.net = network
	pod := &api.Pod{
		Metadata: &api.ObjectMeta{Uid: w.uid, Namespace: "default", Name: "p"},
		Spec:     &api.PodSpec{NodeName: "node-test", Containers: []*api.Container{{Name: "main", Image: "busybox"}}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sctx, cancelSync := context.WithCancel(ctx)
	defer cancelSync()
	// The deletion arrives the moment the namespace exists, as the pod
	// network is being set up.
	go func() {
		for sctx.Err() == nil {
			if ns, _ := os.ReadDir(cfg.NetNSDir); len(ns) > 0 {
				cancelSync()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	sb, err := w.createSandbox(sctx, pod, nil)
	if err == nil {
		t.Fatalf("createSandbox finished (%+v) before the cancellation reached it", sb)
	}
	t.Logf("createSandbox: %v", err)
	// Everything it made is gone: namespace, record, IP lease.
	if ns, _ := os.ReadDir(cfg.NetNSDir); len(ns) != 0 {
		t.Errorf("network namespaces left: %v", ns)
	}
	if rec, err := rt.PodSandbox(ctx, w.uid); err != nil || rec != nil {
		t.Errorf("sandbox record left: %+v, %v", rec, err)
	}
	if ips, err := network.Leases(); err != nil || len(ips) != 0 {
		t.Errorf("IP leases left: %v, %v", ips, err)
	}
	// The pod's termination then finds nothing to do but the cgroup.
	if err := w.terminate(ctx, pod, true); err != nil {
		t.Fatalf("terminate: %v", err)
	}
	if left := podCgroupDirs(t, rt, w.uid); len(left) != 0 {
		t.Errorf("pod cgroups left: %v", left)
	}
}
