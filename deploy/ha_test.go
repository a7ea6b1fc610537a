package deploy_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestHAEtcdRecipeFormsAClusterOverPeerTLS installs three control planes
// into three roots as rollout.sh --ha does (the CA made on the first and
// handed to the others), then runs Debian's etcd with each root's
// /etc/default/etcd on loopback addresses: the three members must form a
// cluster over peer TLS with the skiff-pki certificates and keep
// accepting writes when one of them dies.
func TestHAEtcdRecipeFormsAClusterOverPeerTLS(t *testing.T) {
	requireTools(t, "etcd", "go")
	bin := t.TempDir()
	buildPKI(t, bin)
	for _, c := range []string{"ctl", "apiserver", "controller-manager", "scheduler"} {
		// install.sh only copies these; the recipe under test is etcd's.
		if err := os.WriteFile(filepath.Join(bin, c), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	names := []string{"cp1", "cp2", "cp3"}
	ips := []string{"127.0.43.1", "127.0.43.2", "127.0.43.3"}
	var members, apiservers []string
	for i := range names {
		members = append(members, fmt.Sprintf("%s=http://%s:2380", names[i], ips[i]))
		apiservers = append(apiservers, ips[i]+":6443")
	}
	roots := make([]string, len(names))
	for i := range names {
		roots[i] = t.TempDir()
		args := []string{"control-plane", "--root", roots[i], "--bin-dir", bin, "--node-name", names[i], "--node-ip", ips[i],
			"--apiservers", strings.Join(apiservers, ","), "--apiserver-ips", strings.Join(ips, ","),
			"--etcd-initial-cluster", strings.Join(members, ",")}
		if i > 0 {
			args = append(args, "--pki-from", filepath.Join(roots[0], "etc/skiff/pki"))
		}
		if out, err := runScript(t, "install.sh", args...); err != nil {
			t.Fatalf("install.sh on %s: %v\n%s", names[i], err, out)
		}
		if out, err := os.ReadFile(filepath.Join(roots[i], "etc/skiff/apiserver.yaml")); err != nil ||
			!strings.Contains(string(out), `etcd-servers: ["http://127.0.43.1:2379","http://127.0.43.2:2379","http://127.0.43.3:2379"]`) {
			t.Fatalf("%s apiserver.yaml: %v\n%s", names[i], err, out)
		}
	}
	procs := make([]*exec.Cmd, len(names))
	for i := range names {
		procs[i] = startEtcd(t, roots[i])
	}
	endpoints := []string{"http://127.0.43.1:2379", "http://127.0.43.2:2379", "http://127.0.43.3:2379"}
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	put := func(key string) error {
		deadline := time.Now().Add(60 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err := cli.Put(ctx, key, "v")
			cancel()
			if err == nil || time.Now().After(deadline) {
				return err
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	if err := put("/registry/first"); err != nil {
		t.Fatalf("the cluster never accepted a write: %v\n%s", err, etcdLogs(roots))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Members) != 3 {
		t.Fatalf("%d members, want 3", len(list.Members))
	}
	for _, m := range list.Members {
		if len(m.PeerURLs) != 1 || !strings.HasPrefix(m.PeerURLs[0], "https://") {
			t.Errorf("member %s peers over %v, want TLS", m.Name, m.PeerURLs)
		}
	}
	// One control plane dies: a quorum of two keeps the data writable.
	_ = procs[0].Process.Kill()
	_ = procs[0].Wait()
	if err := put("/registry/after-loss"); err != nil {
		t.Fatalf("no write after losing cp1: %v\n%s", err, etcdLogs(roots))
	}
}

// buildPKI builds skiff-pki into dir.
func buildPKI(t *testing.T, dir string) {
	t.Helper()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "skiff-pki"), "./pki").CombinedOutput(); err != nil {
		t.Fatalf("build skiff-pki: %v\n%s", err, out)
	}
}

// startEtcd runs etcd with the environment of root/etc/default/etcd (as
// Debian's etcd.service does), its paths moved into root.
func startEtcd(t *testing.T, root string) *exec.Cmd {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "etc/default/etcd"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := []string{"PATH=" + os.Getenv("PATH")}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"`)
		if strings.HasPrefix(v, "/") {
			v = filepath.Join(root, v)
		}
		env = append(env, k+"="+v)
	}
	logf, err := os.Create(filepath.Join(root, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("etcd")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	})
	return cmd
}

func etcdLogs(roots []string) string {
	var b strings.Builder
	for _, r := range roots {
		data, _ := os.ReadFile(filepath.Join(r, "etcd.log"))
		if len(data) > 1500 {
			data = data[len(data)-1500:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", r, data)
	}
	return b.String()
}
