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
