package pki

import (
	"crypto/tls"
	"math/big"
	"net"
	"os"
	"testing"
	"time"
)

// handshake connects a ClientTLS client to a ServerTLS server over
// loopback and returns the serials each side saw of the other.
func handshake(t *testing.T, server, client *tls.Config) (serverSerial, clientSerial *big.Int) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	seen := make(chan *big.Int, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			seen <- nil
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil || len(tc.ConnectionState().PeerCertificates) == 0 {
			seen <- nil
			return
		}
		seen <- tc.ConnectionState().PeerCertificates[0].SerialNumber
	}()
	cfg := client.Clone()
	cfg.ServerName = "server"
	c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber, <-seen
}

// replace puts pair's files in place of dst's, newer than before.
func replace(t *testing.T, dst, pair Pair) {
	t.Helper()
	later := time.Now().Add(time.Minute)
	for src, to := range map[string]string{pair.CertFile: dst.CertFile, pair.KeyFile: dst.KeyFile} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(to, later, later); err != nil {
			t.Fatal(err)
		}
	}
}

// Renewed certificates are used from the next handshake on, by servers
// and clients alike, and a half-written renewal keeps the last good pair.
func TestRenewedCertificatesAreUsedWithoutARestart(t *testing.T) {
	dir := newCA(t, Options{})
	issueServing := func(name string) Pair {
		p, err := IssueServing(dir, name, []string{"server"}, []net.IP{net.ParseIP("127.0.0.1")}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	issueClient := func(name string) Pair {
		p, err := IssueClient(dir, name, "user-"+name, nil, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	srv, cli := issueServing("srv"), issueClient("cli")
	server, err := ServerTLS(srv.CertFile, srv.KeyFile, dir+"/"+CACertFile, tls.RequireAndVerifyClientCert)
	if err != nil {
		t.Fatal(err)
	}
	client, err := ClientTLS(dir+"/"+CACertFile, cli.CertFile, cli.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if s, c := handshake(t, server, client); s.Cmp(srv.Cert.SerialNumber) != 0 || c == nil || c.Cmp(cli.Cert.SerialNumber) != 0 {
		t.Fatalf("first handshake saw serials %v and %v, want the issued ones", s, c)
	}

	srv2, cli2 := issueServing("srv2"), issueClient("cli2")
	replace(t, srv, srv2)
	replace(t, cli, cli2)
	if s, c := handshake(t, server, client); s.Cmp(srv2.Cert.SerialNumber) != 0 || c == nil || c.Cmp(cli2.Cert.SerialNumber) != 0 {
		t.Errorf("after renewal the handshake saw serials %v and %v, want the renewed ones", s, c)
	}

	// A renewal caught half-way: a key that does not match the certificate.
	replace(t, srv, Pair{CertFile: srv.CertFile, KeyFile: cli.KeyFile})
	if s, _ := handshake(t, server, client); s.Cmp(srv2.Cert.SerialNumber) != 0 {
		t.Errorf("with a broken pair on disk the server showed serial %v, want the last good one", s)
	}
}
