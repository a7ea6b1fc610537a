package etcdtest

import (
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"

	"github.com/skiff-dev/skiff/internal/pki"
)

// TLSFiles are the certificates of a cluster started with Options.TLS,
// made with internal/pki in their own directory, as deploy/install.sh
// sets an etcd cluster up: every member serves its client port and
// dials its peers with one certificate (server and client auth) for
// localhost and 127.0.0.1, and accepts only clients whose certificate the
// CA signed.
type TLSFiles struct {
	// PKIDir is an internal/pki directory holding the CA: pki.IssueClient
	// into it makes another client the members accept.
	PKIDir string
	// CAFile is the CA certificate clients verify the members against.
	CAFile string
	// ClientCertFile and ClientKeyFile are a client certificate the
	// members accept.
	ClientCertFile, ClientKeyFile string
}

// clientFile is the file name of the test client certificate.
const clientFile = "etcd-test-client"

// makeTLS makes the CA in dir, a certificate for each member and a client
// certificate.
func makeTLS(dir string, members []*Member) (*TLSFiles, error) {
	if _, _, err := pki.InitCA(dir, pki.Options{CACommonName: "etcdtest-ca"}); err != nil {
		return nil, fmt.Errorf("etcd cluster TLS: %w", err)
	}
	loopback := []net.IP{net.IPv4(127, 0, 0, 1)}
	for _, m := range members {
		if _, err := pki.IssueServing(dir, pki.EtcdMemberFile(m.Name), []string{"localhost"}, loopback, pki.Options{}); err != nil {
			return nil, fmt.Errorf("etcd %s certificate: %w", m.Name, err)
		}
	}
	client, err := pki.IssueClient(dir, clientFile, "etcdtest-client", nil, pki.Options{})
	if err != nil {
		return nil, fmt.Errorf("etcd client certificate: %w", err)
	}
	return &TLSFiles{
		PKIDir: dir, CAFile: filepath.Join(dir, pki.CACertFile),
		ClientCertFile: client.CertFile, ClientKeyFile: client.KeyFile,
	}, nil
}

// memberArgs are the etcd options of member m: TLS and client certificate
// auth on both ports.
func (f *TLSFiles) memberArgs(m *Member) []string {
	cert := filepath.Join(f.PKIDir, pki.EtcdMemberFile(m.Name)+".crt")
	key := filepath.Join(f.PKIDir, pki.EtcdMemberFile(m.Name)+".key")
	return []string{
		"--cert-file", cert, "--key-file", key, "--trusted-ca-file", f.CAFile, "--client-cert-auth",
		"--peer-cert-file", cert, "--peer-key-file", key, "--peer-trusted-ca-file", f.CAFile, "--peer-client-cert-auth",
	}
}

// ClientTLS is the TLS of a client holding the test client certificate,
// or nil for a cluster without TLS.
func (c *Cluster) ClientTLS() (*tls.Config, error) {
	if c.TLS == nil {
		return nil, nil
	}
	tc, err := pki.ClientTLS(c.TLS.CAFile, c.TLS.ClientCertFile, c.TLS.ClientKeyFile)
	if err != nil {
		return nil, fmt.Errorf("etcd client TLS: %w", err)
	}
	return tc, nil
}
