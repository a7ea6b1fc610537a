package localcluster

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// listenerChild is the environment variable that makes this test binary a
// busy multi-threaded process holding a listening socket, as a daemon is.
const listenerChild = "SKIFF_LOCALCLUSTER_TEST_LISTENER"

func init() {
	addr := os.Getenv(listenerChild)
	if addr == "" {
		return
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		os.Exit(3)
	}
	// Threads in system calls, as a daemon's are, so that exiting takes
	// the kernel a while after the main thread is gone.
	var mu sync.Mutex
	for range 16 {
		go func() {
			for {
				mu.Lock()
				_, _ = os.ReadFile("/proc/self/stat")
				mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		}()
	}
	os.Stdout.WriteString(lis.Addr().String() + "\n")
	select {}
}

// A killed process counts as gone only once its sockets are closed: a
// successor can bind its address the moment waitGone returns.
func TestKilledProcessIsGoneOnlyOnceItsSocketsAre(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		cmd := exec.Command(self, "-test.run", "^$")
		cmd.Env = append(os.Environ(), listenerChild+"=127.0.0.1:0")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("child: %v", err)
		}
		addr := strings.TrimSpace(line)
		start, err := procStartTime(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		p := Process{Name: "listener", Pid: cmd.Process.Pid, StartTime: start}
		// Reaped as the harness reaps its daemons, whenever it exits.
		go func() { _ = cmd.Wait() }()
		if err := syscall.Kill(p.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if !waitGone(context.Background(), 10*time.Second, p.Alive) {
			t.Fatalf("run %d: pid %d survived SIGKILL", i, p.Pid)
		}
		lis, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("run %d: the killed process was taken for gone while its socket stayed: %v", i, err)
		}
		lis.Close()
	}
}
