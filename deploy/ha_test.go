package deploy_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/clientconfig"
	"github.com/skiff-dev/skiff/internal/pki"
	skiffapi "github.com/skiff-dev/skiff/proto/api"
)

// TestHARecipeSurvivesTheLossOfAControlPlane installs three control planes
// into three roots as rollout.sh --ha does (the CA made on the first and
// handed to the others), then runs Debian's etcd with each root's
// /etc/default/etcd and an apiserver with each root's apiserver.yaml, on
// loopback addresses: the three members must form a cluster over peer TLS
// with the skiff-pki certificates, the admin's client config must reach
// the apiservers over TLS, and writes and reads must go on when the first
// control plane dies.
func TestHARecipeSurvivesTheLossOfAControlPlane(t *testing.T) {
	requireTools(t, "etcd", "go")
	bin, apiserver := controlPlaneBinaries(t)
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
			!strings.Contains(string(out), `etcd-servers: ["https://127.0.43.1:2379","https://127.0.43.2:2379","https://127.0.43.3:2379"]`) {
			t.Fatalf("%s apiserver.yaml: %v\n%s", names[i], err, out)
		}
	}
	procs := make([]*exec.Cmd, len(names))
	for i := range names {
		procs[i] = startEtcd(t, roots[i])
	}
	endpoints := []string{"https://127.0.43.1:2379", "https://127.0.43.2:2379", "https://127.0.43.3:2379"}
	// Clients need a certificate of the etcd CA: the apiserver's.
	etcdPKI := filepath.Join(roots[0], "etc/skiff/pki/etcd")
	tlsConfig, err := pki.ClientTLS(filepath.Join(etcdPKI, "ca.crt"), filepath.Join(etcdPKI, "apiserver-etcd-client.crt"), filepath.Join(etcdPKI, "apiserver-etcd-client.key"))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, TLS: tlsConfig})
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
		t.Fatalf("the cluster never accepted a write: %v\n%s", err, rootLogs(roots, "etcd.log"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	members3, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(members3.Members) != 3 {
		t.Fatalf("%d members, want 3", len(members3.Members))
	}
	for _, m := range members3.Members {
		if len(m.PeerURLs) != 1 || !strings.HasPrefix(m.PeerURLs[0], "https://") {
			t.Errorf("member %s peers over %v, want TLS", m.Name, m.PeerURLs)
		}
	}
	// Without a certificate of the etcd CA, etcd's client port refuses:
	// plaintext, TLS with no certificate, and a cluster-CA certificate (the
	// admin's).
	clusterPKI := filepath.Join(roots[0], "etc/skiff/pki")
	adminTLS, err := pki.ClientTLS(filepath.Join(etcdPKI, "ca.crt"), filepath.Join(clusterPKI, "admin.crt"), filepath.Join(clusterPKI, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	noCertTLS, err := pki.ClientTLS(filepath.Join(etcdPKI, "ca.crt"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		endpoint string
		tls      *tls.Config
	}{
		{"plaintext", "http://127.0.43.1:2379", nil},
		{"no certificate", endpoints[0], noCertTLS},
		{"admin certificate of the cluster CA", endpoints[0], adminTLS},
	} {
		if err := etcdRefuses(c.endpoint, c.tls); err != nil {
			t.Errorf("etcd with %s: %v", c.name, err)
		}
	}
	// An apiserver on each control plane, configured by install.sh, on the
	// three-member etcd; the admin's client config lists all three.
	apis := make([]*exec.Cmd, len(names))
	for i := range names {
		// What the unit's StateDirectory= and LogsDirectory= make.
		for _, d := range []string{"var/lib/skiff", "var/log/skiff"} {
			if err := os.MkdirAll(filepath.Join(roots[i], d), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		apis[i] = startInRoot(t, roots[i], "apiserver", apiserver, "--config", rootedCopy(t, roots[i], "etc/skiff/apiserver.yaml"),
			"--listen", ips[i]+":6443", "--http-addr", ips[i]+":6080")
	}
	cfg, err := clientconfig.Load(rootedCopy(t, roots[0], "etc/skiff/admin.config"))
	if err != nil {
		t.Fatal(err)
	}
	cur, err := cfg.Current()
	if err != nil {
		t.Fatal(err)
	}
	if len(cur.Servers) != 3 {
		t.Fatalf("admin config servers %v, want the three apiservers", cur.Servers)
	}
	dialCtx, stopDial := context.WithCancel(context.Background())
	t.Cleanup(stopDial)
	api, err := cfg.Dial(dialCtx)
	if err != nil {
		t.Fatal(err)
	}
	nodes := client.For[*skiffapi.Namespace](api)
	list := func() error {
		deadline := time.Now().Add(60 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, _, err := nodes.List(ctx, "", client.ListOptions{})
			cancel()
			if err == nil || time.Now().After(deadline) {
				return err
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	if err := list(); err != nil {
		t.Fatalf("the admin cannot list through the apiservers: %v\n%s", err, rootLogs(roots, "apiserver.log"))
	}

	// Control plane 1 dies (its etcd member and its apiserver): a quorum of
	// two keeps the data writable, and the admin's client fails over.
	for _, p := range []*exec.Cmd{apis[0], procs[0]} {
		_ = p.Process.Kill()
		_ = p.Wait()
	}
	if err := put("/registry/after-loss"); err != nil {
		t.Fatalf("no write after losing cp1: %v\n%s", err, rootLogs(roots, "etcd.log"))
	}
	for range 5 { // every call, whichever apiserver the balancer picks
		if err := list(); err != nil {
			t.Fatalf("no list after losing cp1: %v", err)
		}
	}
}

// etcdRefuses checks that a client of endpoint with tlsConfig can read
// nothing.
func etcdRefuses(endpoint string, tlsConfig *tls.Config) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 2 * time.Second, TLS: tlsConfig, Logger: zap.NewNop()})
	if err != nil {
		return nil // refused while dialing
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if resp, err := cli.Get(ctx, "/registry/", clientv3.WithPrefix()); err == nil {
		return fmt.Errorf("read %d keys", resp.Count)
	}
	return nil
}

// rootedCopy copies a YAML file of root whose absolute paths name files on
// the installed machine, with those paths moved into root, and returns the
// copy's path.
func rootedCopy(t *testing.T, root, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok && strings.HasPrefix(v, "/") {
			line = k + ": " + filepath.Join(root, v)
		}
		out = append(out, line)
	}
	path := filepath.Join(t.TempDir(), filepath.Base(rel))
	if err := os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// buildPKI builds skiff-pki into dir.
// controlPlaneBinaries builds skiff-pki and the apiserver into a temporary
// bin directory, beside stand-ins for the other control-plane binaries,
// which install.sh only copies: the recipes under test are etcd's and the
// apiservers'. It returns the directory and the apiserver's path.
func controlPlaneBinaries(t *testing.T) (bin, apiserver string) {
	t.Helper()
	bin = t.TempDir()
	buildPKI(t, bin)
	apiserver = filepath.Join(bin, "apiserver")
	if out, err := exec.Command("go", "build", "-o", apiserver, "../apiserver").CombinedOutput(); err != nil {
		t.Fatalf("build apiserver: %v\n%s", err, out)
	}
	for _, c := range []string{"ctl", "controller-manager", "scheduler"} {
		if err := os.WriteFile(filepath.Join(bin, c), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return bin, apiserver
}

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
		if k == "ETCD_LISTEN_CLIENT_URLS" {
			// The three "machines" share this host's 127.0.0.1: only one
			// member could take 127.0.0.1:2379.
			v = strings.ReplaceAll(v, ",https://127.0.0.1:2379", "")
		}
		env = append(env, k+"="+v)
	}
	cmd := exec.Command("etcd")
	cmd.Env = env
	return start(t, root, "etcd", cmd)
}

// startInRoot runs bin with args, its log in root/<name>.log.
func startInRoot(t *testing.T, root, name, bin string, args ...string) *exec.Cmd {
	t.Helper()
	return start(t, root, name, exec.Command(bin, args...))
}

// start runs cmd until the test ends, its output in root/<name>.log.
func start(t *testing.T, root, name string, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	logf, err := os.Create(filepath.Join(root, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
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

func rootLogs(roots []string, log string) string {
	var b strings.Builder
	for _, r := range roots {
		data, _ := os.ReadFile(filepath.Join(r, log))
		if len(data) > 1500 {
			data = data[len(data)-1500:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", r, data)
	}
	return b.String()
}
