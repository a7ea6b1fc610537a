package app

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	ctrdimages "github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes/docker"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/imagebuild"
	"github.com/skiff-dev/skiff/kubelet/containerdtest"
	"github.com/skiff-dev/skiff/kubelet/nodestatus"
	"github.com/skiff-dev/skiff/proto/api"
)

// startRegistry runs Debian's docker-registry on a loopback port until the
// test ends and returns its host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	containerdtest.RequireRoot(t, "docker-registry")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	conf := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker-registry", "serve", cfg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if i > 100 {
			t.Fatalf("docker-registry did not start: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pushBusybox pushes the busybox image to the registry as ref, through a
// scratch namespace of the test's containerd.
func pushBusybox(t *testing.T, e *env, ref string) {
	t.Helper()
	ctx := containerdNSNamed("push")
	c := e.ctrd.Client(t, "push")
	var buf bytes.Buffer
	if err := imagebuild.Busybox(&buf, "busybox:latest"); err != nil {
		t.Fatal(err)
	}
	imgs, err := c.Import(ctx, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImageService().Create(ctx, ctrdimages.Image{Name: ref, Target: imgs[0].Target}); err != nil {
		t.Fatal(err)
	}
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(docker.MatchAllHosts))})
	if err := c.Push(ctx, ref, imgs[0].Target, containerd.WithResolver(resolver)); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

func TestNodeRegistrationPreloadAndRegistryPull(t *testing.T) {
	registry := startRegistry(t)
	e := newEnv(t, func(c *Config) {
		c.InsecureRegistries = []string{registry}
		if err := imagebuild.WriteFile(filepath.Join(c.ImagePreloadDir, "nginx.tar"), "nginx:latest", imagebuild.Nginx); err != nil {
			t.Fatal(err)
		}
	})
	ctx := context.Background()

	t.Run("node registers with capacity, addresses, labels, Ready and a lease", func(t *testing.T) {
		var node *api.Node
		deadline := time.Now().Add(20 * time.Second)
		for {
			n, err := e.cluster.Client.Nodes().Get(ctx, "", e.cfg.NodeName)
			if err == nil && len(n.GetStatus().GetImages()) > 0 && n.GetStatus().GetConditions()[0].GetStatus() == "True" {
				node = n
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s: %v %v", e.cfg.NodeName, n, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		l := node.GetMetadata().GetLabels()
		if l["kubernetes.io/hostname"] != e.cfg.NodeName || l["kubernetes.io/os"] != "linux" || l["kubernetes.io/arch"] != runtime.GOARCH {
			t.Errorf("labels = %v", l)
		}
		st := node.GetStatus()
		if st.GetCapacity()["cpu"] != fmt.Sprint(runtime.NumCPU()) || st.GetCapacity()["pods"] != "110" || st.GetAllocatable()["memory"] == "" {
			t.Errorf("capacity %v allocatable %v", st.GetCapacity(), st.GetAllocatable())
		}
		addrs := map[string]string{}
		for _, a := range st.GetAddresses() {
			addrs[a.GetType()] = a.GetAddress()
		}
		if addrs["InternalIP"] != "127.0.0.1" || addrs["Hostname"] == "" {
			t.Errorf("addresses = %v", addrs)
		}
		if len(st.GetConditions()) != 1 || st.GetConditions()[0].GetType() != "Ready" || st.GetConditions()[0].GetStatus() != "True" {
			t.Errorf("conditions = %v", st.GetConditions())
		}
		if st.GetDaemonEndpoints().GetKubeletPort() == 0 || st.GetNodeInfo().GetContainerRuntimeVersion() == "" || st.GetNodeInfo().GetKernelVersion() == "" {
			t.Errorf("daemonEndpoints %v nodeInfo %v", st.GetDaemonEndpoints(), st.GetNodeInfo())
		}
		// The preloaded tarball was imported.
		var names []string
		for _, img := range st.GetImages() {
			names = append(names, img.GetNames()...)
		}
		if !slices.Contains(names, "docker.io/library/busybox:latest") {
			t.Errorf("node images %v lack the preloaded busybox", names)
		}
		lease, err := e.cluster.Client.Leases().Get(ctx, nodestatus.LeaseNamespace, e.cfg.NodeName)
		if err != nil || lease.GetSpec().GetHolderIdentity() != e.cfg.NodeName || lease.GetSpec().GetRenewTime() == nil {
			t.Errorf("lease = %v, %v", lease, err)
		}
	})

	t.Run("an image is pulled from a plain-HTTP local registry", func(t *testing.T) {
		ref := registry + "/test/busybox:v1"
		pushBusybox(t, e, ref)
		e.createPod("pulled", &api.Container{Name: "main", Image: ref, Command: []string{"sleep", "1000"}})
		p := e.waitPod(t, "pulled", 60*time.Second, "Running", running)
		if id := p.GetStatus().GetContainerStatuses()[0].GetImageId(); id != ref {
			t.Errorf("imageID = %q, want %q", id, ref)
		}
	})

	t.Run("the preloaded nginx image serves its welcome page", func(t *testing.T) {
		e.createPod("nginx", &api.Container{Name: "nginx", Image: "nginx", ImagePullPolicy: "IfNotPresent", Ports: []*api.ContainerPort{{ContainerPort: 80}}})
		p := e.waitPod(t, "nginx", 60*time.Second, "Running", running)
		if body := httpGet(t, "http://"+p.GetStatus().GetPodIp()+"/"); !strings.Contains(body, "Welcome to nginx!") {
			t.Errorf("GET nginx pod = %q", body)
		}
	})
}

// Without --pod-cidr the kubelet waits for the controller-manager to set
// the Node's spec.podCIDR (done by hand here) and uses it.
func TestPodCIDRComesFromTheNodeSpec(t *testing.T) {
	var cidr string
	e := newEnv(t, func(c *Config) { cidr, c.PodCIDR = c.PodCIDR, "" })
	e.cfg.PodCIDR = cidr // the clean-up's CNI DEL needs one; the running kubelet has none
	ctx := context.Background()
	// Registered, and NotReady for want of a pod network.
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := e.cluster.Client.Nodes().Get(ctx, "", e.cfg.NodeName)
		if err == nil && len(n.GetStatus().GetConditions()) == 1 {
			if c := n.GetStatus().GetConditions()[0]; c.GetType() != "Ready" || c.GetStatus() != "False" {
				t.Errorf("node without a pod CIDR: condition %v, want Ready False", c)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node never got a status: %v %v", n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// What the controller-manager's IPAM does, retried on conflicts with
	// the kubelet's status writes.
	for {
		node, err := e.cluster.Client.Nodes().Get(ctx, "", e.cfg.NodeName)
		if err != nil {
			t.Fatal(err)
		}
		node.Spec.PodCidr, node.Spec.PodCidrs = cidr, []string{cidr}
		_, err = e.cluster.Client.Nodes().Update(ctx, node)
		if err == nil {
			break
		}
		if !client.IsConflict(err) {
			t.Fatal(err)
		}
	}
	e.createPod("web", busybox("main", "sleep 1000"))
	p := e.waitPod(t, "web", 60*time.Second, "Running", running)
	_, n, _ := net.ParseCIDR(cidr)
	if !n.Contains(net.ParseIP(p.GetStatus().GetPodIp())) {
		t.Errorf("podIP %s not in the node's podCIDR %s", p.GetStatus().GetPodIp(), cidr)
	}
}
