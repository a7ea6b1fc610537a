package etcdtest

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/skiff-dev/skiff/internal/pki"
)

// TestTLSClusterServesOnlyClientsWithACertificate protects what the TLS
// option promises: the members serve https and elect a leader over peer
// TLS, the test client certificate reads and writes, and neither a client
// without a certificate nor one from another CA reads anything.
func TestTLSClusterServesOnlyClientsWithACertificate(t *testing.T) {
	c := StartT(t, Options{TLS: true})
	for _, m := range c.Members {
		if !strings.HasPrefix(m.ClientURL, "https://") || !strings.HasPrefix(m.PeerURL, "https://") {
			t.Errorf("member %s: client %s, peer %s, want https", m.Name, m.ClientURL, m.PeerURL)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	good, err := c.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	cli := newClient(t, c.Endpoints(), good)
	if _, err := cli.Put(ctx, "/secret", "v"); err != nil {
		t.Fatalf("put with the client certificate: %v", err)
	}

	noCert, err := pki.ClientTLS(c.TLS.CAFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	otherDir := t.TempDir()
	if _, _, err := pki.InitCA(otherDir, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	other, err := pki.IssueClient(otherDir, "intruder", "intruder", nil, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := pki.ClientTLS(c.TLS.CAFile, other.CertFile, other.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		endpoints []string
		tls       *tls.Config
	}{
		{"no certificate", c.Endpoints(), noCert},
		{"a certificate of another CA", c.Endpoints(), otherCA},
		{"plaintext", []string{strings.Replace(c.Members[0].ClientURL, "https://", "http://", 1)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cli := newClient(t, tt.endpoints, tt.tls)
			rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
			defer rcancel()
			if resp, err := cli.Get(rctx, "/secret"); err == nil {
				t.Fatalf("read %d keys", resp.Count)
			}
		})
	}
}

func newClient(t *testing.T, endpoints []string, tc *tls.Config) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, TLS: tc, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}
