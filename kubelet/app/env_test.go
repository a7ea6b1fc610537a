package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/imagebuild"
	"github.com/skiff-dev/skiff/internal/testcluster"
	"github.com/skiff-dev/skiff/kubelet/cni"
	"github.com/skiff-dev/skiff/kubelet/containerdtest"
	"github.com/skiff-dev/skiff/kubelet/runtime"
	"github.com/skiff-dev/skiff/kubelet/status"
	"github.com/skiff-dev/skiff/kubelet/volumes"
	"github.com/skiff-dev/skiff/proto/api"
)

// env is one node: an in-process apiserver, a private containerd, and a
// kubelet with its own bridge and pod CIDR.
type env struct {
	t       testing.TB
	cluster *testcluster.Cluster
	ctrd    *containerdtest.Daemon
	cfg     Config
	stop    func()
}

func randInt(n int64) int64 {
	v, err := rand.Int(rand.Reader, big.NewInt(n))
	if err != nil {
		panic(err)
	}
	return v.Int64()
}

func newEnv(t testing.TB, opts ...func(*Config)) *env {
	t.Helper()
	containerdtest.RequireRoot(t, "containerd", "runc", "ip", "iptables", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback")
	e := &env{t: t}
	e.cluster = testcluster.Start(t)
	e.ctrd = containerdtest.Start(t)
	root := t.TempDir()
	// Runs before the temp dir goes: the volumes of pods a failed test
	// left (tmpfs, subPath binds) are unmounted, never removed through.
	t.Cleanup(e.teardownVolumes)
	preload := filepath.Join(root, "images")
	if err := os.MkdirAll(preload, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := imagebuild.WriteFile(filepath.Join(preload, "busybox.tar"), "busybox:latest", imagebuild.Busybox); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	cfg := Defaults()
	cfg.NodeName = "node-" + suffix
	cfg.NodeIP = "127.0.0.1"
	cfg.ContainerdAddress = e.ctrd.Address
	cfg.RootDir = filepath.Join(root, "kubelet")
	cfg.CNIConfDir = filepath.Join(root, "cni")
	cfg.NetworkName = "skt-" + suffix
	cfg.Bridge = "skt" + suffix
	cfg.PodCIDR = fmt.Sprintf("10.%d.%d.0/24", 200+randInt(50), randInt(250))
	cfg.ClusterDNS = "10.96.0.10"
	cfg.SyncFrequency = 5 * time.Second
	cfg.ImagePreloadDir = preload
	cfg.InsecureRegistries = []string{"127.0.0.1:1"}
	cfg.Backoff = status.Backoff{Initial: time.Second, Max: 8 * time.Second}
	cfg.NodeStatusPeriod = 2 * time.Second
	// testcluster's apiserver is --insecure and dials kubelets in
	// plaintext; kubelet/server's tests cover mutual TLS.
	cfg.Insecure = true
	for _, o := range opts {
		o(&cfg)
	}
	e.cfg = cfg
	// Runs after the kubelet has stopped (cleanups run last-in first-out):
	// tear down whatever pods are left, then the bridge.
	t.Cleanup(e.teardownNode)
	e.start()
	t.Cleanup(func() { e.stop() })
	return e
}

// start runs a kubelet (again) with the env's configuration.
func (e *env) start() {
	e.t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	cfg := e.cfg
	cfg.Listener = lis
	cfg.Port = lis.Addr().(*net.TCPAddr).Port
	level := slog.LevelWarn
	if os.Getenv("SKIFF_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	k, err := New(cfg, e.cluster.Client)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	e.stop = func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("kubelet: %v", err)
		}
		e.stop = func() {}
	}
	// Without a pod CIDR the kubelet registers and then waits for one:
	// that is as far as it gets until the test sets it.
	started := k.Ready
	if cfg.PodCIDR == "" {
		started = func() error {
			_, err := e.cluster.Client.Nodes().Get(context.Background(), "", cfg.NodeName)
			return err
		}
	}
	// Generous: on a shared, loaded machine containerd's first calls and
	// the preload import can be slow.
	deadline := time.Now().Add(90 * time.Second)
	for started() != nil {
		select {
		case err := <-done:
			e.t.Fatalf("kubelet stopped: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.t.Fatal("kubelet not ready after 90s")
		}
	}
}

// teardownNode removes what pods left behind (network first, so the CNI
// DEL removes the iptables rules) and the bridge.
func (e *env) teardownNode() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.removeAllPods(ctx); err != nil {
		e.t.Errorf("clean up pods: %v", err)
	}
	if out, err := exec.Command("ip", "link", "del", e.cfg.Bridge).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find") {
		e.t.Logf("ip link del %s: %v %s", e.cfg.Bridge, err, out)
	}
}

// teardownVolumes unmounts and removes the volumes of every pod directory
// left under the kubelet's root.
func (e *env) teardownVolumes() {
	vols := volumes.New(volumes.Config{RootDir: e.cfg.RootDir})
	uids, err := vols.PodUIDs()
	if err != nil {
		e.t.Errorf("clean up volumes: %v", err)
		return
	}
	for _, uid := range uids {
		if err := vols.TearDown(uid); err != nil {
			e.t.Errorf("clean up volumes: %v", err)
		}
	}
}

func (e *env) pods() *client.ResourceClient[*api.Pod] { return e.cluster.Client.Pods() }

func (e *env) createPod(name string, containers ...*api.Container) *api.Pod {
	e.t.Helper()
	grace := int64(5)
	p, err := e.pods().Create(context.Background(), &api.Pod{
		Metadata: &api.ObjectMeta{Name: name, Namespace: "default"},
		Spec:     &api.PodSpec{NodeName: e.cfg.NodeName, Containers: containers, TerminationGracePeriodSeconds: &grace},
	})
	if err != nil {
		e.t.Fatalf("create pod %s: %v", name, err)
	}
	return p
}

// waitPod watches the pod until cond holds for one of its versions: a
// watch sees every status the kubelet writes, even short-lived ones.
func (e *env) waitPod(t testing.TB, name string, timeout time.Duration, what string, cond func(*api.Pod) bool) *api.Pod {
	t.Helper()
	return e.waitPodSince(t, name, "", timeout, what, cond)
}

// waitPodSince is waitPod over every version of the pod after
// resourceVersion rv (empty: from the current one), so a test sees the
// statuses the kubelet wrote from the pod's creation on.
func (e *env) waitPodSince(t testing.TB, name, rv string, timeout time.Duration, what string, cond func(*api.Pod) bool) *api.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	w, err := e.pods().Watch(ctx, "default", client.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: rv})
	if err != nil {
		t.Fatalf("watch pod %s: %v", name, err)
	}
	var last *api.Pod
	for {
		ev, err := w.Next()
		if err != nil {
			t.Fatalf("pod %s: waiting for %s: %v; last status: %v", name, what, err, last.GetStatus())
		}
		if ev.Object == nil || ev.Type == client.Deleted {
			continue
		}
		last = ev.Object
		if cond(last) {
			return last
		}
	}
}

func running(p *api.Pod) bool {
	if p.GetStatus().GetPhase() != "Running" {
		return false
	}
	for _, cs := range p.GetStatus().GetContainerStatuses() {
		if cs.GetState().GetRunning() == nil {
			return false
		}
	}
	return true
}

func waitingReason(p *api.Pod) string {
	for _, cs := range p.GetStatus().GetContainerStatuses() {
		if w := cs.GetState().GetWaiting(); w != nil {
			return w.GetReason()
		}
	}
	return ""
}

// containerdNS is a context in the kubelet's containerd namespace.
func containerdNS() context.Context { return containerdNSNamed("skiff") }

func containerdNSNamed(ns string) context.Context {
	return namespaces.WithNamespace(context.Background(), ns)
}

// activeSnapshots counts the writable snapshots (one per container).
func (e *env) activeSnapshots() int {
	c := e.ctrd.Client(e.t, "skiff")
	n := 0
	if err := c.SnapshotService("").Walk(containerdNS(), func(_ context.Context, i snapshots.Info) error {
		if i.Kind == snapshots.KindActive {
			n++
		}
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) leases() []string {
	entries, _ := os.ReadDir(filepath.Join(e.cfg.RootDir, "cni", "networks", e.cfg.NetworkName))
	var ips []string
	for _, en := range entries {
		if net.ParseIP(en.Name()) != nil {
			ips = append(ips, en.Name())
		}
	}
	return ips
}

// removeAllPods tears down every sandbox and container the kubelet left.
func (e *env) removeAllPods(ctx context.Context) error {
	rt, err := runtime.New(runtime.Config{Address: e.ctrd.Address})
	if err != nil {
		return err
	}
	defer rt.Close()
	network, err := cni.New(e.cfg.networkConfig(e.cfg.PodCIDR))
	if err != nil {
		return err
	}
	// Keep going past failures: whatever can be removed is.
	var errs []error
	ctrs, err := rt.Containers(ctx)
	if err != nil {
		return err
	}
	for _, c := range ctrs {
		if err := rt.StopContainer(ctx, c.ID, 0); err != nil {
			errs = append(errs, err)
		}
		if err := rt.RemoveContainer(ctx, c.ID); err != nil {
			errs = append(errs, err)
		}
	}
	sbs, err := rt.Sandboxes(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, sb := range sbs {
		if sb.NetNSPath != "" {
			if err := network.TearDown(ctx, sb.Pod.UID, sb.NetNSPath, nil, nil); err != nil {
				errs = append(errs, err)
			}
			if err := network.RemoveNetNS(sb.NetNSPath); err != nil {
				errs = append(errs, err)
			}
		}
		if err := rt.RemoveSandbox(ctx, sb.Pod.UID); err != nil {
			errs = append(errs, err)
		}
		if err := rt.RemovePodCgroup(sb.Pod.UID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
