package pods

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"os/exec"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/skiff-dev/skiff/kubelet/containerdtest"
)

// listenInNetNS makes a network namespace of its own (removed when the test
// ends) and listens on a loopback port inside it.
func listenInNetNS(t *testing.T) (path string, lis net.Listener) {
	t.Helper()
	containerdtest.RequireRoot(t, "ip")
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "skt-pf-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	path = "/run/netns/" + name
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	own, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	target, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		t.Fatal(err)
	}
	lis, err = net.Listen("tcp", "127.0.0.1:0")
	if err := netns.Set(own); err != nil {
		t.Fatalf("back to the test's namespace: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	return path, lis
}

func TestDialInNetNSReachesLocalhostOfThatNamespace(t *testing.T) {
	path, lis := listenInNetNS(t)
	go func() {
		c, err := lis.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.WriteString(c, "from inside")
	}()
	addr := lis.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	conn, err := DialInNetNS(ctx, path, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got, err := io.ReadAll(conn)
	if err != nil || string(got) != "from inside" {
		t.Fatalf("read %q, %v; want the listener's greeting", got, err)
	}

	// The same address in the test's own namespace is somebody else's (or
	// nobody's): the listener was reached through its namespace only.
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		buf := make([]byte, 11)
		n, _ := c.Read(buf)
		c.Close()
		if string(buf[:n]) == "from inside" {
			t.Fatal("the listener is reachable from the test's namespace: the namespace was not used")
		}
	}
	if _, err := DialInNetNS(ctx, path, "127.0.0.1:1"); err == nil {
		t.Error("a port nobody listens on in the namespace was reached")
	}
	if _, err := DialInNetNS(ctx, "/run/netns/does-not-exist", addr); err == nil {
		t.Error("a missing namespace was dialled")
	}
}
