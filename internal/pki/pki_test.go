package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func newCA(t *testing.T, opts Options) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	if _, reused, err := InitCA(dir, opts); err != nil || reused {
		t.Fatalf("InitCA: reused=%v err=%v", reused, err)
	}
	return dir
}

func TestInitCAIsIdempotentAndKeysArePrivate(t *testing.T) {
	dir := newCA(t, Options{})
	first, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	ca, reused, err := InitCA(dir, Options{})
	if err != nil || !reused {
		t.Fatalf("second InitCA: reused=%v err=%v", reused, err)
	}
	second, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	if !bytes.Equal(first, second) {
		t.Fatal("second InitCA rewrote ca.crt")
	}
	if !ca.Cert.IsCA || ca.Cert.Subject.CommonName != "skiff-ca" {
		t.Fatalf("CA subject %v IsCA=%v", ca.Cert.Subject, ca.Cert.IsCA)
	}
	for _, f := range []string{CAKeyFile, CACertFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o644)
		if f == CAKeyFile {
			want = 0o600
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", f, st.Mode().Perm(), want)
		}
	}
	st, _ := os.Stat(dir)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("pki dir mode %v, want 0700", st.Mode().Perm())
	}
}

func TestInitCARefusesAnExpiringCA(t *testing.T) {
	now := time.Now()
	dir := newCA(t, Options{CAValidity: 48 * time.Hour, Now: func() time.Time { return now }})
	later := func() time.Time { return now.Add(47 * time.Hour) }
	if _, _, err := InitCA(dir, Options{CAValidity: 48 * time.Hour, Now: later}); err == nil {
		t.Fatal("InitCA kept a CA that expires within an hour")
	}
}

func TestIssueServingCoversNamesAndIPsAndChainsToCA(t *testing.T) {
	dir := newCA(t, Options{})
	names := []string{"skiff-apiserver", "localhost"}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.250.0.1")}
	pair, err := IssueServing(dir, FileAPIServer, names, ips, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if pair.Reused {
		t.Fatal("first issue reported reused")
	}
	tests := []struct {
		host string
		ok   bool
	}{
		{"skiff-apiserver", true},
		{"localhost", true},
		{"127.0.0.1", true},
		{"10.250.0.1", true},
		{"10.250.0.2", false},
		{"evil.example", false},
	}
	ca, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		_, err := pair.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: tt.host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if (err == nil) != tt.ok {
			t.Errorf("verify for host %q: err=%v, want ok=%v", tt.host, err, tt.ok)
		}
	}
	if st, _ := os.Stat(pair.KeyFile); st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", st.Mode().Perm())
	}
}

func TestIssueClientCarriesUserAndGroups(t *testing.T) {
	dir := newCA(t, Options{})
	pair, err := IssueClient(dir, KubeletClientFile("node-1"), NodeUser("node-1"), []string{GroupNodes}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := Verify(dir, pair.CertFile, x509.ExtKeyUsageClientAuth, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "system:node:node-1" || !slices.Equal(cert.Subject.Organization, []string{"system:nodes"}) {
		t.Fatalf("subject %v", cert.Subject)
	}
	if _, err := Verify(dir, pair.CertFile, x509.ExtKeyUsageServerAuth, time.Now()); err == nil {
		t.Fatal("a client certificate verified for server auth")
	}
}

func TestIssueIsIdempotentAndReissuesWhenTheRequestChanges(t *testing.T) {
	dir := newCA(t, Options{})
	ips := []net.IP{net.ParseIP("10.0.0.1")}
	first, err := IssueServing(dir, "apiserver", []string{"a"}, ips, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		dnsNames   []string
		ips        []net.IP
		wantReused bool
	}{
		{"same request keeps the files", []string{"a"}, ips, true},
		{"a subset keeps the files", nil, ips, true},
		{"a new name reissues", []string{"a", "b"}, ips, false},
		{"a new IP reissues", []string{"a", "b"}, []net.IP{net.ParseIP("10.0.0.2")}, false},
	}
	prev := first.Cert
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pair, err := IssueServing(dir, "apiserver", tt.dnsNames, tt.ips, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if pair.Reused != tt.wantReused {
				t.Fatalf("reused=%v, want %v", pair.Reused, tt.wantReused)
			}
			if tt.wantReused != pair.Cert.Equal(prev) {
				t.Fatalf("certificate changed=%v, want changed=%v", !pair.Cert.Equal(prev), !tt.wantReused)
			}
			prev = pair.Cert
		})
	}

	c1, err := IssueClient(dir, "admin", "admin", []string{GroupMasters}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := IssueClient(dir, "admin", "admin", []string{GroupMasters}, Options{})
	if err != nil || !c2.Reused || !c2.Cert.Equal(c1.Cert) {
		t.Fatalf("second IssueClient: reused=%v err=%v", c2.Reused, err)
	}
	c3, err := IssueClient(dir, "admin", "admin", []string{"system:viewers"}, Options{})
	if err != nil || c3.Reused {
		t.Fatalf("IssueClient with other groups: reused=%v err=%v", c3.Reused, err)
	}
}

func TestExpiryIsEnforcedAndRenewed(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	opts := Options{Validity: time.Hour, Now: clock}
	dir := newCA(t, opts)
	pair, err := IssueClient(dir, "scheduler", UserScheduler, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	// x509 keeps whole seconds.
	if got := pair.Cert.NotAfter.Sub(now); got <= time.Hour-time.Second || got > time.Hour {
		t.Fatalf("validity %v, want 1h", got)
	}
	if _, err := Verify(dir, pair.CertFile, x509.ExtKeyUsageClientAuth, now.Add(2*time.Hour)); err == nil {
		t.Fatal("an expired certificate verified")
	}
	// Within RenewBefore (a tenth of the validity) of expiry, a new issue
	// replaces the certificate instead of keeping it.
	late := Options{Validity: time.Hour, Now: func() time.Time { return now.Add(55 * time.Minute) }}
	renewed, err := IssueClient(dir, "scheduler", UserScheduler, nil, late)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.Reused || !renewed.Cert.NotAfter.After(pair.Cert.NotAfter) {
		t.Fatalf("renewal: reused=%v notAfter=%v (old %v)", renewed.Reused, renewed.Cert.NotAfter, pair.Cert.NotAfter)
	}
}

func TestLeafNeverOutlivesCA(t *testing.T) {
	opts := Options{CAValidity: 24 * time.Hour, Validity: 365 * 24 * time.Hour}
	dir := newCA(t, opts)
	pair, err := IssueClient(dir, "admin", UserAdmin, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := LoadCA(dir)
	if pair.Cert.NotAfter.After(ca.Cert.NotAfter) {
		t.Fatalf("leaf expires %v after CA %v", pair.Cert.NotAfter, ca.Cert.NotAfter)
	}
}

func TestCertificateFromAnotherCAIsReissued(t *testing.T) {
	dir := newCA(t, Options{})
	other := newCA(t, Options{})
	foreign, err := IssueClient(other, "admin", UserAdmin, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{foreign.CertFile, foreign.KeyFile} {
		data, _ := os.ReadFile(f)
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Verify(dir, filepath.Join(dir, "admin.crt"), x509.ExtKeyUsageClientAuth, time.Now()); err == nil {
		t.Fatal("a certificate of another CA verified")
	}
	pair, err := IssueClient(dir, "admin", UserAdmin, nil, Options{})
	if err != nil || pair.Reused {
		t.Fatalf("reissue: reused=%v err=%v", pair.Reused, err)
	}
}

func TestIssueWithoutCAFails(t *testing.T) {
	dir := t.TempDir()
	_, err := IssueClient(dir, "admin", UserAdmin, nil, Options{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err=%v, want not exist", err)
	}
}

func TestInvalidNamesAreRefused(t *testing.T) {
	dir := newCA(t, Options{})
	for _, name := range []string{"", "ca", "../x", ".hidden", `a\b`} {
		if _, err := IssueClient(dir, name, "u", nil, Options{}); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
}

// TestMutualTLSHandshake proves the files work together as the apiserver
// and a component use them: a TLS server with the serving pair that
// requires client certificates from the CA, and a client with its pair.
func TestMutualTLSHandshake(t *testing.T) {
	dir := t.TempDir()
	if err := ControlPlane(dir, []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := Node(dir, "node-1", []net.IP{net.ParseIP("127.0.0.1")}, Options{}); err != nil {
		t.Fatal(err)
	}
	ca, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := tls.LoadX509KeyPair(filepath.Join(dir, "apiserver.crt"), filepath.Join(dir, "apiserver.key"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientCAs:    ca.Pool(),
		ClientAuth:   tls.RequireAndVerifyClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	users := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			users <- "accept: " + err.Error()
			return
		}
		defer conn.Close()
		tc := conn.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			users <- "handshake: " + err.Error()
			return
		}
		users <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
	}()
	clientCert, err := tls.LoadX509KeyPair(filepath.Join(dir, KubeletClientFile("node-1")+".crt"), filepath.Join(dir, KubeletClientFile("node-1")+".key"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{clientCert}, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(conn, "x")
	conn.Close()
	if got := <-users; got != "system:node:node-1" {
		t.Fatalf("server saw %q, want system:node:node-1", got)
	}
}
