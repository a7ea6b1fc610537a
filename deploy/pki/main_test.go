package main

import (
	"bytes"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/pki"
)

func execute(t *testing.T, args ...string) string {
	t.Helper()
	cmd := newCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("skiff-pki %v: %v\n%s", args, err, out.String())
	}
	return out.String()
}

func TestCommandsMakeVerifiableCertificates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	execute(t, "init", "--dir", dir, "--apiserver-ip", "127.0.0.1,10.0.0.11", "--validity", "48h")
	execute(t, "node", "w1", "--dir", dir, "--ip", "10.0.0.21")
	etcdDir := filepath.Join(dir, pki.EtcdDir)
	execute(t, "serving", "etcd-cp1", "--dir", etcdDir, "--dns", "cp1,localhost", "--ip", "10.0.0.11,127.0.0.1")
	out := execute(t, "client", "alice", "--dir", dir, "--group", "system:viewers")
	if !strings.Contains(out, `user "alice"`) {
		t.Fatalf("client output: %s", out)
	}
	tests := []struct {
		dir, file, cn string
		usage         x509.ExtKeyUsage
	}{
		{dir, "apiserver.crt", "localhost", x509.ExtKeyUsageServerAuth},
		{dir, "admin.crt", pki.UserAdmin, x509.ExtKeyUsageClientAuth},
		{dir, "kubelet-w1.crt", "system:node:w1", x509.ExtKeyUsageClientAuth},
		{dir, "kubelet-w1-serving.crt", "w1", x509.ExtKeyUsageServerAuth},
		{etcdDir, "etcd-cp1.crt", "cp1", x509.ExtKeyUsageServerAuth}, // the client port
		{etcdDir, "etcd-cp1.crt", "cp1", x509.ExtKeyUsageClientAuth}, // peers authenticate both ways
		{etcdDir, "apiserver-etcd-client.crt", pki.UserAPIServerEtcdClient, x509.ExtKeyUsageClientAuth},
		{dir, "alice.crt", "alice", x509.ExtKeyUsageClientAuth},
	}
	for _, tt := range tests {
		cert, err := pki.Verify(tt.dir, filepath.Join(tt.dir, tt.file), tt.usage, time.Now())
		if err != nil {
			t.Errorf("%s: %v", tt.file, err)
			continue
		}
		if cert.Subject.CommonName != tt.cn {
			t.Errorf("%s: CN %q, want %q", tt.file, cert.Subject.CommonName, tt.cn)
		}
	}
	admin, err := pki.ReadCert(filepath.Join(dir, "admin.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Until(admin.NotAfter); got > 48*time.Hour || got < 47*time.Hour {
		t.Errorf("--validity 48h gave %v", got)
	}
}
