package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/skiff-dev/skiff/apiserver/app"
	"github.com/skiff-dev/skiff/internal/testcluster"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type etcdMember struct {
	name      string
	clientURL string
	cmd       *exec.Cmd
}

// startEtcdCluster runs a 3-member cluster of Debian's etcd on loopback.
func startEtcdCluster(t *testing.T) []*etcdMember {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("etcd binary missing (Debian package etcd-server): %v", err)
		}
		t.Skip("etcd binary missing; install Debian's etcd-server (make deps)")
	}
	members := make([]*etcdMember, 3)
	var initial []string
	peers := make([]string, 3)
	for i := range members {
		members[i] = &etcdMember{name: fmt.Sprintf("m%d", i), clientURL: fmt.Sprintf("http://127.0.0.1:%d", freePort(t))}
		peers[i] = fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
		initial = append(initial, members[i].name+"="+peers[i])
	}
	dir := t.TempDir()
	for i, m := range members {
		m.cmd = exec.Command(bin,
			"--name", m.name, "--data-dir", filepath.Join(dir, m.name),
			"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "skiff-test", "--log-level", "error")
		logFile, err := os.Create(filepath.Join(dir, m.name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		m.cmd.Stdout, m.cmd.Stderr = logFile, logFile
		t.Cleanup(func() {
			logFile.Close()
			if t.Failed() {
				if data, err := os.ReadFile(logFile.Name()); err == nil {
					t.Logf("etcd %s log:\n%s", m.name, data)
				}
			}
		})
		m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := m.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = m.cmd.Process.Kill()
			_ = m.cmd.Wait()
		})
	}
	return members
}

func TestExternalEtcdClusterSurvivesLosingItsLeader(t *testing.T) {
	members := startEtcdCluster(t)
	var endpoints []string
	for _, m := range members {
		endpoints = append(endpoints, m.clientURL)
	}
	ctx := ctx(t)
	// Wait for the cluster to elect a leader.
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var leader *etcdMember
	for deadline := time.Now().Add(30 * time.Second); leader == nil; {
		if time.Now().After(deadline) {
			t.Fatal("etcd cluster elected no leader in 30s")
		}
		for _, m := range members {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := cli.Status(sctx, m.clientURL)
			cancel()
			if err == nil && st.Leader == st.Header.MemberId {
				leader = m
			}
		}
		time.Sleep(200 * time.Millisecond)
	}

	c := testcluster.Start(t, func(cfg *app.Config) { cfg.EtcdServers = endpoints })
	pods := c.Client.Pods()
	for i := 0; i < 5; i++ {
		if _, err := pods.Create(ctx, nginxPod(fmt.Sprintf("before-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := leader.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Writes and reads go on once the other two elect a new leader.
	for i := 0; i < 5; i++ {
		name := fmt.Sprintf("after-%d", i)
		var err error
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if _, err = pods.Create(ctx, nginxPod(name)); err == nil || strings.Contains(err.Error(), "already exists") {
				err = nil
				break
			}
		}
		if err != nil {
			t.Fatalf("create %s after killing the etcd leader %s: %v", name, leader.name, err)
		}
	}
	list, _, err := pods.List(ctx, "default", clientListAll())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 10 {
		t.Fatalf("%d pods after the leader died, want 10", len(list))
	}
}
