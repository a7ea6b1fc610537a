package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/imagebuild"
	"github.com/skiff-dev/skiff/internal/mounts"
)

func TestConfigNames(t *testing.T) {
	c := Config{StateDir: "/var/lib/x"}.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ got, want string }{
		{c.Bridge(), "skiffbr0"},
		{c.Netns(2), "skiff-node-2"},
		{c.HostVeth(2), "skiffv2"},
		{c.NodeName(2), "node-2"},
		{c.ChainPrefix(), "SKIFF-LOCAL-"},
		{c.HostIP().String(), "10.250.0.1"},
		{c.NodeIP(2).String(), "10.250.0.12"},
		{c.APIServer(), "10.250.0.1:6443"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	bad := []struct {
		name string
		cfg  Config
	}{
		{"name too long for link names", Config{Name: "waytoolongname"}},
		{"name with a slash", Config{Name: "a/b"}},
		{"subnet smaller than /24", Config{Subnet: "10.0.0.0/28"}},
		{"IPv6 subnet", Config{Subnet: "fd00::/64"}},
		{"cluster DNS not an IP", Config{ClusterDNS: "dns"}},
		{"state dir is /", Config{StateDir: "/"}},
	}
	for _, tt := range bad {
		cfg := tt.cfg
		if cfg.StateDir == "" {
			cfg.StateDir = "/var/lib/x"
		}
		if err := cfg.WithDefaults().Validate(); err == nil {
			t.Errorf("%s: validated", tt.name)
		}
	}
}

func TestStraysFindsDescendantsAndSkipsOthers(t *testing.T) {
	dir := t.TempDir()
	// A process naming the state dir, with a child that does not.
	parent := exec.Command("sh", "-c", "sleep 300 & wait", "sh", filepath.Join(dir, "x"))
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = parent.Process.Kill(); _ = parent.Wait() })
	other := exec.Command("sleep", "300")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Process.Kill(); _ = other.Wait() })
	var found []procInfo
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		found, err = strays(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(found) == 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	pids := map[int]bool{}
	for _, p := range found {
		pids[p.pid] = true
	}
	if len(found) != 2 || !pids[parent.Process.Pid] {
		t.Fatalf("strays = %v, want the sh %d and its sleep", found, parent.Process.Pid)
	}
	if pids[other.Process.Pid] || pids[os.Getpid()] {
		t.Fatalf("strays included an unrelated process or the test itself: %v", found)
	}
}

// requireRoot fails in CI, and skips elsewhere, when the test cannot run.
func requireRoot(t *testing.T, tools ...string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		missing = append(missing, "containernetworking-plugins")
	}
	if _, err := os.Stat(imagebuild.BusyboxBinary); err != nil {
		missing = append(missing, "busybox-static")
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") == "" {
		t.Skipf("needs %v", missing)
	}
	t.Fatalf("needs %v (CI must install them)", missing)
}

// binDir returns the repository's bin/ (or $SKIFF_BIN_DIR) when it holds
// every component (a real cluster that must become Ready), else a
// directory of stand-ins that behave like daemons: they run until SIGTERM
// and name their flags (and so the state dir) on their command line.
func binDir(t *testing.T) (string, bool) {
	repoBin, _ := filepath.Abs("../../bin")
	if d := os.Getenv("SKIFF_BIN_DIR"); d != "" {
		repoBin = d
	}
	real := true
	for _, c := range Components() {
		if _, err := os.Stat(filepath.Join(repoBin, c)); err != nil {
			real = false
		}
	}
	if real && os.Getenv("SKIFF_LOCAL_FAKE_BINARIES") == "" {
		return repoBin, true
	}
	dir := t.TempDir()
	script := "#!/bin/sh\n[ \"$1\" = --help ] && exit 0\ntrap 'kill $child; exit 0' TERM\nsleep 3600 &\nchild=$!\nwait\n"
	for _, c := range Components() {
		if err := os.WriteFile(filepath.Join(dir, c), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir, false
}

func testConfig(t *testing.T) Config {
	t.Helper()
	bin, real := binDir(t)
	name := fmt.Sprintf("skt%04x", rand.IntN(0x10000))
	// Not t.TempDir(): its long name overflows containerd's socket path.
	base, err := os.MkdirTemp("", "skl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	c := Config{
		Name:        name,
		StateDir:    filepath.Join(base, "state"),
		BinDir:      bin,
		Nodes:       2,
		Subnet:      fmt.Sprintf("10.249.%d.0/24", rand.IntN(250)),
		AdminConfig: filepath.Join(base, "home", ".skiff", "config"),
		Wait:        real,
		WaitTimeout: 90 * time.Second,
		Logger:      testLogger(t),
	}
	if !real {
		t.Logf("bin/ lacks the Skiff binaries: running stand-ins from %s", bin)
	}
	// Whatever happens, leave the machine clean.
	t.Cleanup(func() {
		if err := Down(context.Background(), c); err != nil {
			t.Errorf("cleanup down: %v", err)
		}
	})
	return c
}

// TestDownLeavesNothingBehind brings a cluster up, runs a real container
// on a node's containerd and a mount in the state dir, then checks that
// Down leaves no process, namespace, link, iptables chain, mount or file,
// both with its record and after the record is lost (a crash).
func TestDownLeavesNothingBehind(t *testing.T) {
	requireRoot(t, "ip", "iptables", "nsenter", "sysctl", "containerd", "runc")
	for _, lost := range []bool{false, true} {
		t.Run(fmt.Sprintf("state record lost=%v", lost), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			c := testConfig(t)
			st, err := Up(ctx, c)
			if err != nil {
				t.Fatalf("up: %v", err)
			}
			c = c.WithDefaults()
			if got := len(st.Processes); got != 3+3*c.Nodes {
				t.Fatalf("%d processes recorded, want %d", got, 3+3*c.Nodes)
			}
			checkNodeNetwork(t, c)
			containerPid := runContainer(ctx, t, c.containerdSocket(1))
			volume := filepath.Join(c.nodeDir(1), "kubelet", "pods", "volume")
			if err := os.MkdirAll(volume, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mount("tmpfs", volume, "tmpfs", 0, ""); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(c.AdminConfig); err != nil {
				t.Fatalf("admin config not installed: %v", err)
			}
			if lost {
				if err := os.Remove(c.stateFile()); err != nil {
					t.Fatal(err)
				}
			}
			if err := Down(ctx, c); err != nil {
				t.Fatalf("down: %v", err)
			}
			assertNothingLeft(t, c, st, containerPid)
		})
	}
}

func TestUpTwiceIsSafe(t *testing.T) {
	requireRoot(t, "ip", "iptables", "nsenter", "sysctl", "containerd", "runc")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := testConfig(t)
	c.Nodes = 1
	first, err := Up(ctx, c)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	second, err := Up(ctx, c)
	if err != nil {
		t.Fatalf("second up: %v", err)
	}
	if len(second.Processes) != len(first.Processes) || second.Processes[0].Pid != first.Processes[0].Pid {
		t.Fatalf("second up started new processes: %v vs %v", second.Processes, first.Processes)
	}
	// The same cluster name from another state dir would share the bridge.
	other := c
	other.StateDir = c.StateDir + "-other"
	if _, err := Up(ctx, other); err == nil || !strings.Contains(err.Error(), "bridge") {
		t.Fatalf("up of a second cluster with the same name: %v, want a bridge conflict", err)
	}
	if _, err := os.Stat(other.StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("refused up left %s behind", other.StateDir)
	}
	// One process dies: a further Up refuses rather than guessing.
	victim := first.Processes[len(first.Processes)-1]
	if err := Kill(ctx, c, victim.Name); err != nil {
		t.Fatal(err)
	}
	if victim.Alive() {
		t.Fatalf("%s survived Kill", victim.Name)
	}
	if _, err := Up(ctx, c); !errors.Is(err, ErrPartlyUp) {
		t.Fatalf("up on a partly running cluster: %v, want ErrPartlyUp", err)
	}
	procs, err := Status(c)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := PrintStatus(&out, procs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), victim.Name) || !strings.Contains(out.String(), "Exited") {
		t.Fatalf("status does not show the dead %s:\n%s", victim.Name, out.String())
	}
	// Restart brings it back with its recorded command line, and the
	// record follows, so Up sees a whole cluster again and Down stops it.
	back, err := Restart(ctx, c, victim.Name, nil, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Alive() || back.Pid == victim.Pid || !slices.Equal(back.Args, victim.Args) {
		t.Fatalf("restarted %+v from %+v", back, victim)
	}
	again, err := Up(ctx, c)
	if err != nil {
		t.Fatalf("up after restart: %v", err)
	}
	if got := again.Processes[len(again.Processes)-1].Pid; got != back.Pid {
		t.Fatalf("state records pid %d, want the restarted %d", got, back.Pid)
	}
	if _, err := Restart(ctx, c, "node-9/kubelet", nil, time.Second); err == nil {
		t.Fatal("restart of an unknown process succeeded")
	}
	if err := Down(ctx, c); err != nil {
		t.Fatal(err)
	}
	if back.Alive() {
		t.Errorf("restarted %s survived down", back.Name)
	}
}

// checkNodeNetwork proves the namespaces are wired: node 1 reaches the
// host and node 2 across the bridge.
func checkNodeNetwork(t *testing.T, c Config) {
	t.Helper()
	for _, target := range []net.IP{c.HostIP(), c.NodeIP(2)} {
		out, err := exec.Command("nsenter", "--net="+netnsPath(c.Netns(1)), "--", imagebuild.BusyboxBinary, "ping", "-c1", "-W2", target.String()).CombinedOutput()
		if err != nil {
			t.Fatalf("node-1 cannot reach %s: %v: %s", target, err, out)
		}
	}
}

// runContainer imports busybox into the node's containerd and starts a
// container task in it, returning the task's pid.
func runContainer(ctx context.Context, t *testing.T, socket string) int {
	t.Helper()
	var img bytes.Buffer
	if err := imagebuild.Busybox(&img, "busybox:latest"); err != nil {
		t.Fatal(err)
	}
	cl, err := containerd.New(socket, containerd.WithDefaultNamespace("skiff-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	imgs, err := cl.Import(ctx, &img)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	image := containerd.NewImage(cl, imgs[0])
	if err := image.Unpack(ctx, ""); err != nil {
		t.Fatalf("unpack: %v", err)
	}
	ctr, err := cl.NewContainer(ctx, "sleeper",
		containerd.WithNewSnapshot("sleeper-snap", image),
		containerd.WithNewSpec(oci.WithImageConfig(image), oci.WithProcessArgs("sleep", "3600")))
	if err != nil {
		t.Fatalf("container: %v", err)
	}
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatalf("task: %v", err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatalf("start task: %v", err)
	}
	return int(task.Pid())
}

func assertNothingLeft(t *testing.T, c Config, st *State, containerPid int) {
	t.Helper()
	for _, p := range st.Processes {
		if p.Alive() {
			t.Errorf("process %s (pid %d) still runs", p.Name, p.Pid)
		}
	}
	if err := unix.Kill(containerPid, 0); err == nil {
		if state, _, err := procStat(containerPid); err == nil && state != 'Z' {
			t.Errorf("container process %d still runs", containerPid)
		}
	}
	left, err := strays(c.StateDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range left {
		t.Errorf("process %d still names the state dir: %s", p.pid, p.cmdline)
	}
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), c.NetnsPrefix()) {
			t.Errorf("namespace %s left", e.Name())
		}
	}
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifs {
		if strings.HasPrefix(ifc.Name, c.Name) {
			t.Errorf("link %s left", ifc.Name)
		}
	}
	for _, table := range []string{"filter", "nat"} {
		out, err := exec.Command("iptables", "-t", table, "-S").CombinedOutput()
		if err != nil {
			t.Fatalf("iptables -t %s -S: %v: %s", table, err, out)
		}
		if strings.Contains(string(out), c.ChainPrefix()) {
			t.Errorf("iptables %s still mentions %s:\n%s", table, c.ChainPrefix(), out)
		}
	}
	mps, err := mounts.Under(c.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, mp := range mps {
		t.Errorf("mount %s left", mp)
	}
	if _, err := os.Stat(c.StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir %s left: %v", c.StateDir, err)
	}
	if _, err := os.Stat(c.AdminConfig); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("admin config %s left: %v", c.AdminConfig, err)
	}
}
