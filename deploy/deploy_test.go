// Package deploy_test checks the deployment files: shellcheck on every
// script, install.sh's dry run (every action printed, nothing changed), a
// real install into a temporary root whose certificates and client configs
// must load, whose config keys must be flags of the binaries, and whose
// units must pass systemd-analyze verify.
package deploy_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/skiff-dev/skiff/internal/clientconfig"
	"github.com/skiff-dev/skiff/internal/pki"
)

// daemons are the components with a unit: control plane, then worker.
func daemons() []string {
	return []string{"apiserver", "controller-manager", "scheduler", "kubelet", "proxy"}
}

func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") == "" {
		t.Skipf("needs %v", missing)
	}
	t.Fatalf("needs %v (CI must install them)", missing)
}

func TestShellcheckPassesOnEveryScript(t *testing.T) {
	requireTools(t, "shellcheck")
	var scripts []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".sh") {
			scripts = append(scripts, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(scripts, "install.sh") || !slices.Contains(scripts, "rollout.sh") {
		t.Fatalf("scripts found: %v", scripts)
	}
	for _, s := range scripts {
		out, err := exec.Command("shellcheck", "--severity=style", s).CombinedOutput()
		if err != nil {
			t.Errorf("shellcheck %s: %v\n%s", s, err, out)
		}
	}
}

func runScript(t *testing.T, script string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// etcdTLSFiles makes the CA, certificate and key files an operator's own
// etcd would give its clients (their contents do not matter to install.sh).
func etcdTLSFiles(t *testing.T) (ca, cert, key string) {
	t.Helper()
	dir := t.TempDir()
	ca, cert, key = filepath.Join(dir, "etcd-ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	for _, f := range []string{ca, cert, key} {
		if err := os.WriteFile(f, []byte("pem"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca, cert, key
}

func TestInstallDryRunPrintsEveryActionAndChangesNothing(t *testing.T) {
	pkiFrom := t.TempDir()
	etcdCA, etcdCert, etcdKey := etcdTLSFiles(t)
	tests := []struct {
		name string
		args []string
		want []string
		// absent must not be printed.
		absent []string
	}{
		{
			name: "control plane with embedded etcd",
			args: []string{"control-plane", "--node-name", "cp1", "--node-ip", "10.0.0.11"},
			want: []string{
				"dry run: nothing is changed",
				"+ env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates iptables iproute2\n",
				"/usr/local/bin/skiff-apiserver\n",
				"/usr/local/bin/skiff-pki init --dir /etc/skiff/pki --apiserver-name localhost,skiff-apiserver --apiserver-ip 127.0.0.1,10.0.0.11\n",
				"+ write /etc/skiff/apiserver.yaml (mode 0644)",
				"    | client-ca-file: /etc/skiff/pki/ca.crt",
				"    | kubelet-client-certificate: /etc/skiff/pki/apiserver-kubelet-client.crt",
				"+ write /etc/skiff/admin.config (mode 0600)",
				`    |   servers: ["10.0.0.11:6443"]`,
				"+ install -m 0600 /etc/skiff/admin.config /root/.skiff/config",
				"+ install -D -m 0644 ",
				"/etc/systemd/system/skiff-scheduler.service",
				"+ systemctl daemon-reload",
				"+ systemctl enable skiff-apiserver.service",
				"+ systemctl restart skiff-controller-manager.service",
				"# done: control-plane cp1",
			},
			absent: []string{"etcd-servers:", "etcd-cafile:", "/etc/default/etcd", "skiff-pki serving"},
		},
		{
			name: "HA control plane with a local etcd member",
			args: []string{"control-plane", "--node-name", "cp2", "--node-ip", "10.0.0.12",
				"--apiservers", "10.0.0.11:6443,10.0.0.12:6443,10.0.0.13:6443", "--apiserver-ips", "10.0.0.11,10.0.0.12,10.0.0.13",
				"--etcd-initial-cluster", "cp1=http://10.0.0.11:2380,cp2=http://10.0.0.12:2380,cp3=http://10.0.0.13:2380",
				"--pki-from", pkiFrom},
			want: []string{
				"etcd-server etcd-client",
				"--apiserver-ip 127.0.0.1,10.0.0.11,10.0.0.12,10.0.0.13",
				"skiff-pki serving etcd-cp2 --dir /etc/skiff/pki/etcd --dns cp2,localhost --ip 10.0.0.12,127.0.0.1",
				`    | etcd-servers: ["https://10.0.0.11:2379","https://10.0.0.12:2379","https://10.0.0.13:2379"]`,
				"    | etcd-cafile: /etc/skiff/pki/etcd/ca.crt\n",
				"    | etcd-certfile: /etc/skiff/pki/etcd/apiserver-etcd-client.crt\n",
				"    | etcd-keyfile: /etc/skiff/pki/etcd/apiserver-etcd-client.key\n",
				`    |   servers: ["10.0.0.11:6443","10.0.0.12:6443","10.0.0.13:6443"]`,
				`    | ETCD_INITIAL_CLUSTER="cp1=https://10.0.0.11:2380,cp2=https://10.0.0.12:2380,cp3=https://10.0.0.13:2380"`,
				`    | ETCD_NAME="cp2"`,
				`    | ETCD_LISTEN_CLIENT_URLS="https://10.0.0.12:2379,https://127.0.0.1:2379"`,
				`    | ETCD_ADVERTISE_CLIENT_URLS="https://10.0.0.12:2379"`,
				`    | ETCD_CERT_FILE="/etc/etcd/pki/member.crt"`,
				`    | ETCD_KEY_FILE="/etc/etcd/pki/member.key"`,
				`    | ETCD_TRUSTED_CA_FILE="/etc/etcd/pki/ca.crt"`,
				`    | ETCD_CLIENT_CERT_AUTH="true"`,
				`    | ETCD_PEER_CLIENT_CERT_AUTH="true"`,
				"+ install -o etcd -g etcd -m 0644 /etc/skiff/pki/etcd/ca.crt /etc/etcd/pki/ca.crt",
				"+ install -o etcd -g etcd -m 0600 /etc/skiff/pki/etcd/etcd-cp2.key /etc/etcd/pki/member.key",
				"+ systemctl restart --no-block etcd.service",
			},
		},
		{
			name: "control plane on the operator's own TLS etcd",
			args: []string{"control-plane", "--node-name", "cp1", "--node-ip", "10.0.0.11",
				"--etcd-servers", "https://10.0.0.50:2379", "--etcd-cafile", etcdCA, "--etcd-certfile", etcdCert, "--etcd-keyfile", etcdKey},
			want: []string{
				"+ install -d -m 0700 /etc/skiff/pki/etcd-client\n",
				"+ install -m 0644 " + etcdCA + " /etc/skiff/pki/etcd-client/ca.crt\n",
				"+ install -m 0644 " + etcdCert + " /etc/skiff/pki/etcd-client/client.crt\n",
				"+ install -m 0600 " + etcdKey + " /etc/skiff/pki/etcd-client/client.key\n",
				`    | etcd-servers: ["https://10.0.0.50:2379"]`,
				"    | etcd-cafile: /etc/skiff/pki/etcd-client/ca.crt\n",
				"    | etcd-certfile: /etc/skiff/pki/etcd-client/client.crt\n",
				"    | etcd-keyfile: /etc/skiff/pki/etcd-client/client.key\n",
			},
			absent: []string{"etcd-server etcd-client", "/etc/default/etcd", "skiff-pki serving", "apiserver-etcd-client"},
		},
		{
			name: "worker",
			args: []string{"worker", "--node-name", "w1", "--node-ip", "10.0.0.21", "--apiservers", "10.0.0.11:6443", "--pki-from", pkiFrom},
			want: []string{
				"containerd runc containernetworking-plugins",
				"/usr/local/bin/skiff-kubelet\n",
				"+ write /etc/skiff/kubelet.yaml (mode 0644)",
				"    | node-name: w1",
				`    | node-ip: "10.0.0.21"`,
				"    | tls-cert-file: /etc/skiff/pki/kubelet-w1-serving.crt",
				"    | client-ca-file: /etc/skiff/pki/ca.crt",
				`    | authorized-client-names: ["system:apiserver"]`,
				"    |   clientCertificate: /etc/skiff/pki/kubelet-w1.crt",
				"+ systemctl enable containerd.service",
				"+ systemctl enable skiff-kubelet.service",
				"+ systemctl restart skiff-proxy.service",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			out, err := runScript(t, "install.sh", append(tt.args, "--dry-run")...)
			if err != nil {
				t.Fatalf("install.sh: %v\n%s", err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(out, a) {
					t.Errorf("output has %q", a)
				}
			}
			// Every action line is printed, and none ran: under --root the
			// directory stays empty.
			outRoot, err := runScript(t, "install.sh", append(tt.args, "--dry-run", "--root", root)...)
			if err != nil {
				t.Fatalf("install.sh --root: %v\n%s", err, outRoot)
			}
			entries, _ := os.ReadDir(root)
			if len(entries) != 0 {
				t.Errorf("dry run wrote into the root: %v", entries)
			}
			if t.Failed() {
				t.Logf("output:\n%s", out)
			}
		})
	}
}

func TestInstallRefusesBadInput(t *testing.T) {
	ca, cert, key := etcdTLSFiles(t)
	cp := []string{"control-plane", "--node-name", "cp1", "--node-ip", "10.0.0.11", "--dry-run"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no role", nil, "Usage"},
		{"unknown role", []string{"master"}, "unknown role"},
		{"worker without apiservers", []string{"worker", "--node-ip", "10.0.0.2", "--dry-run"}, "needs --apiservers"},
		{"bad node name", []string{"worker", "--node-name", "Node_1", "--node-ip", "10.0.0.2", "--apiservers", "a:1", "--dry-run"}, "DNS-1123"},
		{"etcd member missing", []string{"control-plane", "--node-name", "cp9", "--node-ip", "10.0.0.9", "--etcd-initial-cluster", "cp1=http://10.0.0.1:2380", "--dry-run"}, "no member named 'cp9'"},
		{"unknown flag", []string{"worker", "--frobnicate"}, "unknown option"},
		{"etcd CA without its client pair", append(cp, "--etcd-servers", "https://e:2379", "--etcd-cafile", ca), "give all three"},
		{"etcd TLS without etcd servers", append(cp, "--etcd-cafile", ca, "--etcd-certfile", cert, "--etcd-keyfile", key), "needs --etcd-servers"},
		{"etcd TLS beside the etcd install.sh makes", append(cp, "--etcd-servers", "https://e:2379", "--etcd-initial-cluster", "cp1=http://10.0.0.11:2380",
			"--etcd-cafile", ca, "--etcd-certfile", cert, "--etcd-keyfile", key), "--etcd-initial-cluster makes one"},
		{"etcd TLS file missing", append(cp, "--etcd-servers", "https://e:2379", "--etcd-cafile", ca, "--etcd-certfile", cert, "--etcd-keyfile", "/nonexistent.key"), "/nonexistent.key: no such file"},
		{"etcd TLS on a worker", []string{"worker", "--node-ip", "10.0.0.2", "--apiservers", "a:1", "--dry-run", "--etcd-servers", "https://e:2379",
			"--etcd-cafile", ca, "--etcd-certfile", cert, "--etcd-keyfile", key}, "for control-plane nodes"},
		{"missing pki dir", []string{"worker", "--node-ip", "10.0.0.2", "--apiservers", "a:1", "--pki-from", "/nonexistent", "--dry-run"}, "no such directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runScript(t, "install.sh", tt.args...)
			if err == nil {
				t.Fatalf("install.sh %v succeeded:\n%s", tt.args, out)
			}
			if !strings.Contains(out, tt.want) {
				t.Fatalf("output lacks %q:\n%s", tt.want, out)
			}
		})
	}
}

func TestRolloutDryRunInstallsEveryVM(t *testing.T) {
	out, err := runScript(t, "rollout.sh", "--dry-run", "--ha",
		"--control-plane", "cp1=10.0.0.11,cp2=10.0.0.12,cp3=10.0.0.13", "--workers", "w1=10.0.0.21,w2=10.0.0.22")
	if err != nil {
		t.Fatalf("rollout.sh: %v\n%s", err, out)
	}
	want := []string{
		"root@10.0.0.11 /opt/skiff-install/deploy/install.sh control-plane --node-name cp1",
		"root@10.0.0.13 /opt/skiff-install/deploy/install.sh control-plane --node-name cp3",
		"--etcd-initial-cluster cp1=http://10.0.0.11:2380,cp2=http://10.0.0.12:2380,cp3=http://10.0.0.13:2380 --pki-from /opt/skiff-install/pki",
		"root@10.0.0.11 /usr/local/bin/skiff-pki node w2 --ip 10.0.0.22",
		"kubelet-w2.crt kubelet-w2.key",
		"root@10.0.0.22 /opt/skiff-install/deploy/install.sh worker --node-name w2 --node-ip 10.0.0.22",
		"--apiservers 10.0.0.11:6443,10.0.0.12:6443,10.0.0.13:6443",
		// The other control planes get the etcd CA, subdirectory and all.
		"apiserver-kubelet-client.key etcd/ca.crt etcd/ca.key | tar -C",
		"+ scp -rq -o BatchMode=yes ",
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q", w)
		}
	}
	// Workers get their own certificates and the CA certificate, never
	// the CA key.
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "tar -C /etc/skiff/pki -cf -") && strings.Contains(line, "kubelet-w") && strings.Contains(line, "ca.key") {
			t.Errorf("a worker receives the CA key: %s", line)
		}
	}
	if _, err := runScript(t, "rollout.sh", "--dry-run", "--ha", "--control-plane", "cp1=10.0.0.11,cp2=10.0.0.12"); err == nil {
		t.Error("--ha with 2 control planes accepted")
	}
}

// buildBinaries builds skiff-pki and every component that builds into
// dir, and a stand-in for a component not written yet so its unit still
// verifies. It returns the components built for real.
func buildBinaries(t *testing.T, dir string) map[string]bool {
	t.Helper()
	build := func(pkgs ...string) error {
		cmd := exec.Command("go", append([]string{"build", "-o", dir + "/"}, pkgs...)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Logf("go build %v: %v\n%s", pkgs, err, b)
			return err
		}
		return nil
	}
	buildPKI(t, dir)
	var pkgs []string
	for _, c := range append([]string{"ctl"}, daemons()...) {
		if _, err := os.Stat(filepath.Join("..", c, "main.go")); err == nil {
			pkgs = append(pkgs, "../"+c)
		}
	}
	// One go build links in parallel; should one component not build,
	// each is built alone so the others still count.
	if len(pkgs) > 0 && build(pkgs...) != nil {
		for _, p := range pkgs {
			_ = build(p)
		}
	}
	real := map[string]bool{}
	for _, c := range append([]string{"ctl"}, daemons()...) {
		if _, err := os.Stat(filepath.Join(dir, c)); err == nil {
			real[c] = true
			continue
		}
		// A component that does not build fails the repository's own
		// build; here its unit is still verified, with a stand-in.
		t.Logf("%s is not built: its unit is verified against a stand-in binary", c)
		if err := os.WriteFile(filepath.Join(dir, c), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return real
}

// TestInstallIntoRootVerifiesEverything installs both roles into a
// temporary root for real: binaries, certificates, configs and units, with
// systemctl --root enabling them; then checks the certificates chain to
// the CA, the client configs load, every config key is a flag of its
// binary, and systemd-analyze verify accepts every unit.
func TestInstallIntoRootVerifiesEverything(t *testing.T) {
	requireTools(t, "systemd-analyze", "systemctl", "go")
	bin := t.TempDir()
	real := buildBinaries(t, bin)
	root := t.TempDir()
	// systemd-analyze resolves dependencies (multi-user.target,
	// containerd.service) inside the root.
	if err := os.MkdirAll(filepath.Join(root, "usr/lib/systemd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/system")).CombinedOutput(); err != nil {
		t.Fatalf("copy the system's units: %v: %s", err, out)
	}
	for _, role := range []string{"control-plane", "worker"} {
		out, err := runScript(t, "install.sh", role, "--root", root, "--bin-dir", bin,
			"--node-name", "node-1", "--node-ip", "10.0.0.11", "--apiservers", "10.0.0.11:6443")
		if err != nil {
			t.Fatalf("install.sh %s --root: %v\n%s", role, err, out)
		}
	}

	pkiDir := filepath.Join(root, "etc/skiff/pki")
	certs := []struct {
		file  string
		usage x509.ExtKeyUsage
	}{
		{"apiserver.crt", x509.ExtKeyUsageServerAuth},
		{"kubelet-node-1-serving.crt", x509.ExtKeyUsageServerAuth},
		{"admin.crt", x509.ExtKeyUsageClientAuth},
		{"kubelet-node-1.crt", x509.ExtKeyUsageClientAuth},
		{"proxy.crt", x509.ExtKeyUsageClientAuth},
	}
	for _, c := range certs {
		if _, err := pki.Verify(pkiDir, filepath.Join(pkiDir, c.file), c.usage, time.Now()); err != nil {
			t.Errorf("%s: %v", c.file, err)
		}
	}
	keys, _ := filepath.Glob(filepath.Join(pkiDir, "*.key"))
	for _, k := range keys {
		if st, err := os.Stat(k); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", k, st.Mode().Perm())
		}
	}

	for _, name := range []string{"admin", "controller-manager", "scheduler", "kubelet", "proxy"} {
		path := filepath.Join(root, "etc/skiff", name+".config")
		cfg, err := clientconfig.Load(path)
		if err != nil {
			t.Errorf("client config %s: %v", name, err)
			continue
		}
		cur, err := cfg.Current()
		if err != nil {
			t.Fatal(err)
		}
		// The files it names exist once the root prefix is added.
		for _, f := range []string{cur.CertificateAuthority, cur.ClientCertificate, cur.ClientKey} {
			if _, err := os.Stat(filepath.Join(root, f)); err != nil {
				t.Errorf("client config %s names %s: %v", name, f, err)
			}
		}
	}

	for _, c := range daemons() {
		if !real[c] {
			continue
		}
		checkConfigKeysAreFlags(t, filepath.Join(bin, c), filepath.Join(root, "etc/skiff", c+".yaml"))
	}

	// A separate worker, as rollout.sh makes it: its certificates signed
	// on the control plane, handed over with --pki-from, never the CA key.
	if out, err := exec.Command(filepath.Join(bin, "skiff-pki"), "node", "w1", "--ip", "10.0.0.21", "--dir", pkiDir).CombinedOutput(); err != nil {
		t.Fatalf("skiff-pki node: %v\n%s", err, out)
	}
	handOver := t.TempDir()
	for _, f := range []string{"ca.crt", "kubelet-w1.crt", "kubelet-w1.key", "kubelet-w1-serving.crt", "kubelet-w1-serving.key", "proxy.crt", "proxy.key"} {
		data, err := os.ReadFile(filepath.Join(pkiDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(handOver, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	workerRoot := t.TempDir()
	if out, err := runScript(t, "install.sh", "worker", "--root", workerRoot, "--bin-dir", bin, "--node-name", "w1",
		"--node-ip", "10.0.0.21", "--apiservers", "10.0.0.11:6443,10.0.0.12:6443", "--pki-from", handOver); err != nil {
		t.Fatalf("install.sh worker --pki-from: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(workerRoot, "etc/skiff/pki/ca.key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the worker has a CA key: %v", err)
	}
	wcfg, err := clientconfig.Load(filepath.Join(workerRoot, "etc/skiff/kubelet.config"))
	if err != nil {
		t.Fatal(err)
	}
	wctx, err := wcfg.Current()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(wctx.Servers, []string{"10.0.0.11:6443", "10.0.0.12:6443"}) {
		t.Errorf("worker servers %v", wctx.Servers)
	}
	if _, err := pki.Verify(pkiDir, filepath.Join(workerRoot, wctx.ClientCertificate), x509.ExtKeyUsageClientAuth, time.Now()); err != nil {
		t.Errorf("worker kubelet certificate: %v", err)
	}
	// Without its certificates a worker install stops and says what to do.
	if out, err := runScript(t, "install.sh", "worker", "--root", t.TempDir(), "--bin-dir", bin, "--node-name", "w2",
		"--node-ip", "10.0.0.22", "--apiservers", "10.0.0.11:6443", "--pki-from", t.TempDir()); err == nil || !strings.Contains(out, "skiff-pki node w2") {
		t.Errorf("worker install without certificates: err=%v\n%s", err, out)
	}

	units, _ := filepath.Glob(filepath.Join(root, "etc/systemd/system/skiff-*.service"))
	if len(units) != 5 {
		t.Fatalf("units installed: %v, want 5", units)
	}
	for _, u := range units {
		inRoot := strings.TrimPrefix(u, root)
		out, err := exec.Command("systemd-analyze", "verify", "--root="+root, inRoot).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", inRoot, err, out)
		}
		wanted := filepath.Join(root, "etc/systemd/system/multi-user.target.wants", filepath.Base(u))
		if _, err := os.Lstat(wanted); err != nil {
			t.Errorf("%s not enabled: %v", filepath.Base(u), err)
		}
	}
}

// checkConfigKeysAreFlags fails when a key of a component's config file
// is not one of its flags: the daemon would refuse to start.
func checkConfigKeysAreFlags(t *testing.T, bin, config string) {
	t.Helper()
	data, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]any{}
	if err := yaml.Unmarshal(data, &keys); err != nil {
		t.Fatalf("%s: %v", config, err)
	}
	help, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --help: %v\n%s", bin, err, help)
	}
	for k := range keys {
		if !strings.Contains(string(help), "--"+k+" ") {
			t.Errorf("%s: key %q is not a flag of %s", config, k, filepath.Base(bin))
		}
	}
}

// TestInstallEtcdMemberServesClientsOverTLSOnly installs a control plane
// with a local etcd member into a temporary root and checks what etcd and
// the apiserver read: every /etc/default/etcd key is an option of Debian's
// etcd, both ports use TLS with client certificate auth, the member's
// certificate serves the node's names and authenticates it to peers, and
// etcd trusts only the etcd CA, which signed the apiserver's etcd client
// certificate and no cluster identity.
func TestInstallEtcdMemberServesClientsOverTLSOnly(t *testing.T) {
	requireTools(t, "etcd", "go")
	bin, apiserver := controlPlaneBinaries(t)
	root := t.TempDir()
	if out, err := runScript(t, "install.sh", "control-plane", "--root", root, "--bin-dir", bin, "--node-name", "cp1",
		"--node-ip", "10.0.0.11", "--apiserver-ips", "10.0.0.11,10.0.0.12,10.0.0.13",
		"--etcd-initial-cluster", "cp1=http://10.0.0.11:2380,cp2=http://10.0.0.12:2380,cp3=http://10.0.0.13:2380"); err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}

	env := readEnvFile(t, filepath.Join(root, "etc/default/etcd"))
	help, err := exec.Command("etcd", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("etcd --help: %v\n%s", err, help)
	}
	for k := range env {
		flag := "--" + strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(k, "ETCD_")), "_", "-") + " "
		if !strings.Contains(string(help), flag) {
			t.Errorf("/etc/default/etcd: %s is not an option of etcd (%s)", k, strings.TrimSpace(flag))
		}
	}
	want := map[string]string{
		"ETCD_LISTEN_CLIENT_URLS":          "https://10.0.0.11:2379,https://127.0.0.1:2379",
		"ETCD_ADVERTISE_CLIENT_URLS":       "https://10.0.0.11:2379",
		"ETCD_LISTEN_PEER_URLS":            "https://10.0.0.11:2380",
		"ETCD_INITIAL_CLUSTER":             "cp1=https://10.0.0.11:2380,cp2=https://10.0.0.12:2380,cp3=https://10.0.0.13:2380",
		"ETCD_CLIENT_CERT_AUTH":            "true",
		"ETCD_PEER_CLIENT_CERT_AUTH":       "true",
		"ETCD_CERT_FILE":                   "/etc/etcd/pki/member.crt",
		"ETCD_PEER_CERT_FILE":              "/etc/etcd/pki/member.crt",
		"ETCD_TRUSTED_CA_FILE":             "/etc/etcd/pki/ca.crt",
		"ETCD_PEER_TRUSTED_CA_FILE":        "/etc/etcd/pki/ca.crt",
		"ETCD_KEY_FILE":                    "/etc/etcd/pki/member.key",
		"ETCD_PEER_KEY_FILE":               "/etc/etcd/pki/member.key",
		"ETCD_INITIAL_ADVERTISE_PEER_URLS": "https://10.0.0.11:2380",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}

	// etcd's CA is the etcd CA, not the cluster CA.
	etcdCA, err := os.ReadFile(filepath.Join(root, "etc/etcd/pki/ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file string
		same bool
	}{{"etc/skiff/pki/etcd/ca.crt", true}, {"etc/skiff/pki/ca.crt", false}} {
		data, err := os.ReadFile(filepath.Join(root, c.file))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(data, etcdCA) != c.same {
			t.Errorf("etcd's CA equals %s: %v, want %v", c.file, !c.same, c.same)
		}
	}
	etcdPKI := filepath.Join(root, "etc/etcd/pki")
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		member, err := verifyAgainst(filepath.Join(etcdPKI, "ca.crt"), filepath.Join(etcdPKI, "member.crt"), usage)
		if err != nil {
			t.Errorf("member certificate, usage %v: %v", usage, err)
			continue
		}
		for _, host := range []string{"10.0.0.11", "127.0.0.1", "localhost", "cp1"} {
			if err := member.VerifyHostname(host); err != nil {
				t.Errorf("member certificate: %v", err)
			}
		}
	}
	if st, err := os.Stat(filepath.Join(etcdPKI, "member.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("member.key: %v %v, want mode 0600", err, st)
	}

	// The apiserver connects with the etcd CA's client certificate; no
	// cluster identity would pass etcd.
	data, err := os.ReadFile(filepath.Join(root, "etc/skiff/apiserver.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		EtcdServers []string `json:"etcd-servers"`
		EtcdCAFile  string   `json:"etcd-cafile"`
		EtcdCert    string   `json:"etcd-certfile"`
		EtcdKey     string   `json:"etcd-keyfile"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://10.0.0.11:2379", "https://10.0.0.12:2379", "https://10.0.0.13:2379"}; !slices.Equal(cfg.EtcdServers, want) {
		t.Errorf("etcd-servers %v, want %v", cfg.EtcdServers, want)
	}
	if ca, err := os.ReadFile(filepath.Join(root, cfg.EtcdCAFile)); err != nil || !bytes.Equal(ca, etcdCA) {
		t.Errorf("etcd-cafile %s is not etcd's CA: %v", cfg.EtcdCAFile, err)
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(root, cfg.EtcdCert), filepath.Join(root, cfg.EtcdKey)); err != nil {
		t.Errorf("etcd-certfile/etcd-keyfile: %v", err)
	}
	if _, err := verifyAgainst(filepath.Join(etcdPKI, "ca.crt"), filepath.Join(root, cfg.EtcdCert), x509.ExtKeyUsageClientAuth); err != nil {
		t.Errorf("etcd-certfile: %v", err)
	}
	clusterPKI := filepath.Join(root, "etc/skiff/pki")
	for _, f := range []string{"admin.crt", "apiserver-kubelet-client.crt", "controller-manager.crt", "proxy.crt"} {
		if _, err := verifyAgainst(filepath.Join(etcdPKI, "ca.crt"), filepath.Join(clusterPKI, f), x509.ExtKeyUsageClientAuth); err == nil {
			t.Errorf("etcd would accept %s", f)
		}
	}
	checkConfigKeysAreFlags(t, apiserver, filepath.Join(root, "etc/skiff/apiserver.yaml"))
}

// verifyAgainst checks certFile against the CA bundle caFile only, as a
// TLS peer holding that bundle does.
func verifyAgainst(caFile, certFile string, usage x509.ExtKeyUsage) (*x509.Certificate, error) {
	pool, err := pki.ReadPool(caFile)
	if err != nil {
		return nil, err
	}
	cert, err := pki.ReadCert(certFile)
	if err != nil {
		return nil, err
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return nil, fmt.Errorf("verify %s: %w", certFile, err)
	}
	return cert, nil
}

// readEnvFile reads KEY="value" lines as a systemd EnvironmentFile.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			env[k] = strings.Trim(v, `"`)
		}
	}
	return env
}
