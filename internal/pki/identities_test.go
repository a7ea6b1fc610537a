package pki

import (
	"crypto/x509"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNodeServingCertificateNamesTheNodeAndItsInternalIP(t *testing.T) {
	dir := newCA(t, Options{})
	ip := net.ParseIP("10.0.0.21")
	if err := Node(dir, "w1", []net.IP{ip}, Options{}); err != nil {
		t.Fatal(err)
	}
	cert, err := Verify(dir, filepath.Join(dir, KubeletServingFile("w1")+".crt"), x509.ExtKeyUsageServerAuth, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// What the apiserver checks when it dials the node's InternalIP, and
	// what a name-based dial would check.
	for _, host := range []string{"10.0.0.21", "w1"} {
		if err := cert.VerifyHostname(host); err != nil {
			t.Errorf("serving certificate for %s: %v", host, err)
		}
	}
	if err := cert.VerifyHostname("10.0.0.22"); err == nil {
		t.Error("the serving certificate is valid for another node's address")
	}
	client, err := Verify(dir, filepath.Join(dir, KubeletClientFile("w1")+".crt"), x509.ExtKeyUsageClientAuth, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if client.Subject.CommonName != NodeUser("w1") || !slices.Equal(client.Subject.Organization, []string{GroupNodes}) {
		t.Errorf("client certificate subject %v", client.Subject)
	}

	tests := []struct {
		name, node string
		ips        []net.IP
		want       string
	}{
		{"no node name", "", []net.IP{ip}, "empty node name"},
		{"no InternalIP", "w2", nil, "InternalIP is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Node(dir, tt.node, tt.ips, Options{}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Node = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestControlPlaneEtcdCATrustsOnlyItsOwnCertificates protects what keeps
// etcd out of reach of cluster identities: the etcd CA is a second CA, the
// apiserver's etcd client certificate chains only to it, and no cluster-CA
// certificate (the admin's, a kubelet's) chains to it.
func TestControlPlaneEtcdCATrustsOnlyItsOwnCertificates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	loopback := []net.IP{net.ParseIP("127.0.0.1")}
	if err := ControlPlane(dir, []string{"localhost"}, loopback, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := Node(dir, "w1", []net.IP{net.ParseIP("10.0.0.21")}, Options{}); err != nil {
		t.Fatal(err)
	}
	etcdDir := filepath.Join(dir, EtcdDir)
	member, err := IssueServing(etcdDir, EtcdMemberFile("cp1"), []string{"cp1", "localhost"}, []net.IP{net.ParseIP("10.0.0.11"), net.ParseIP("127.0.0.1")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	etcdCA, err := LoadCA(etcdDir)
	if err != nil {
		t.Fatal(err)
	}
	clusterCA, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if etcdCA.Cert.Equal(clusterCA.Cert) || etcdCA.Cert.Subject.CommonName != "skiff-etcd-ca" {
		t.Fatalf("etcd CA %q is not a CA of its own (cluster CA %q)", etcdCA.Cert.Subject.CommonName, clusterCA.Cert.Subject.CommonName)
	}

	tests := []struct {
		name  string
		dir   string // whose CA must accept the certificate
		file  string
		usage x509.ExtKeyUsage
		ok    bool
	}{
		{"apiserver etcd client by the etcd CA", etcdDir, filepath.Join(etcdDir, FileAPIServerEtcdClient+".crt"), x509.ExtKeyUsageClientAuth, true},
		{"apiserver etcd client by the cluster CA", dir, filepath.Join(etcdDir, FileAPIServerEtcdClient+".crt"), x509.ExtKeyUsageClientAuth, false},
		{"member serves clients", etcdDir, member.CertFile, x509.ExtKeyUsageServerAuth, true},
		{"member dials its peers", etcdDir, member.CertFile, x509.ExtKeyUsageClientAuth, true},
		{"admin by the etcd CA", etcdDir, filepath.Join(dir, FileAdmin+".crt"), x509.ExtKeyUsageClientAuth, false},
		{"kubelet by the etcd CA", etcdDir, filepath.Join(dir, KubeletClientFile("w1")+".crt"), x509.ExtKeyUsageClientAuth, false},
		{"apiserver kubelet client by the etcd CA", etcdDir, filepath.Join(dir, FileAPIServerKubeletClient+".crt"), x509.ExtKeyUsageClientAuth, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(tt.dir, tt.file, tt.usage, time.Now())
			if (err == nil) != tt.ok {
				t.Fatalf("Verify = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	client, err := ReadCert(filepath.Join(etcdDir, FileAPIServerEtcdClient+".crt"))
	if err != nil {
		t.Fatal(err)
	}
	if client.Subject.CommonName != UserAPIServerEtcdClient || len(client.Subject.Organization) != 0 {
		t.Errorf("apiserver etcd client subject %v", client.Subject)
	}
	for _, host := range []string{"cp1", "localhost", "10.0.0.11", "127.0.0.1"} {
		if err := member.Cert.VerifyHostname(host); err != nil {
			t.Errorf("member certificate for %s: %v", host, err)
		}
	}

	// A second run (another control plane's install, a re-run) keeps both
	// CAs and the client certificate.
	if err := ControlPlane(dir, []string{"localhost"}, loopback, Options{}); err != nil {
		t.Fatal(err)
	}
	again, err := LoadCA(etcdDir)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cert.Equal(etcdCA.Cert) {
		t.Error("a second ControlPlane replaced the etcd CA")
	}
	kept, err := ReadCert(filepath.Join(etcdDir, FileAPIServerEtcdClient+".crt"))
	if err != nil {
		t.Fatal(err)
	}
	if !kept.Equal(client) {
		t.Error("a second ControlPlane reissued the apiserver's etcd client certificate")
	}
}
