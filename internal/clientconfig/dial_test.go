package clientconfig

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/skiff-dev/skiff/proto/api"
)

// whoami answers Version with what the server saw: its own name, the
// client certificate's CN and the authorization header.
type whoami struct {
	api.UnimplementedAPIServer
	name string
}

func (w whoami) Version(ctx context.Context, _ *api.VersionRequest) (*api.VersionInfo, error) {
	cn := "-"
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
			cn = ti.State.PeerCertificates[0].Subject.CommonName
		}
	}
	auth := "-"
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get("authorization")) > 0 {
		auth = md.Get("authorization")[0]
	}
	return &api.VersionInfo{Platform: w.name, GitVersion: cn + "|" + auth}, nil
}

func serve(t *testing.T, name string, opts ...grpc.ServerOption) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	api.RegisterAPIServer(srv, whoami{name: name})
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String(), srv.Stop
}

// deadAddr is a loopback port nobody listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type testPKI struct {
	dir              string
	caCert           *x509.Certificate
	caKey            *ecdsa.PrivateKey
	caPool           *x509.CertPool
	serverCert       tls.Certificate
	clientCrt, clKey string
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	var caDER []byte
	p.caKey, caDER, p.caCert = p.issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "skiff-ca"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	})
	p.writePEM(t, "ca.crt", "CERTIFICATE", caDER)
	p.caPool = x509.NewCertPool()
	p.caPool.AddCert(p.caCert)

	srvKey, srvDER, _ := p.issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "apiserver"}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	p.serverCert = tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}

	clKey, clDER, _ := p.issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	p.clientCrt = p.writePEM(t, "admin.crt", "CERTIFICATE", clDER)
	keyDER, err := x509.MarshalECPrivateKey(clKey)
	if err != nil {
		t.Fatal(err)
	}
	p.clKey = p.writePEM(t, "admin.key", "EC PRIVATE KEY", keyDER)
	return p
}

func (p *testPKI) issue(t *testing.T, tmpl *x509.Certificate) (*ecdsa.PrivateKey, []byte, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(time.Hour)
	parent, signer := tmpl, key
	if p.caCert != nil {
		parent, signer = p.caCert, p.caKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, der, cert
}

func (p *testPKI) writePEM(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (p *testPKI) serverCreds(clientAuth tls.ClientAuthType) grpc.ServerOption {
	return grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{p.serverCert}, ClientCAs: p.caPool, ClientAuth: clientAuth,
	}))
}

func version(t *testing.T, ctx context.Context, c *Context) (*api.VersionInfo, error) {
	t.Helper()
	cl, err := c.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return cl.API.Version(rctx, &api.VersionRequest{})
}

func TestDialSendsCredentials(t *testing.T) {
	p := newPKI(t)
	mtlsAddr, _ := serve(t, "mtls", p.serverCreds(tls.RequireAndVerifyClientCert))
	tlsAddr, _ := serve(t, "tls", p.serverCreds(tls.VerifyClientCertIfGiven))
	plainAddr, _ := serve(t, "plain")
	ca := filepath.Join(p.dir, "ca.crt")
	otherCA := newPKI(t)

	tests := []struct {
		name    string
		ctx     Context
		want    string // "CN|authorization" as the server saw them
		wantErr string
	}{
		{name: "client certificate over TLS", want: "admin|-",
			ctx: Context{Servers: []string{mtlsAddr}, CertificateAuthority: ca, ClientCertificate: p.clientCrt, ClientKey: p.clKey}},
		{name: "token over TLS", want: "-|Bearer s3cret",
			ctx: Context{Servers: []string{tlsAddr}, CertificateAuthority: ca, Token: "s3cret"}},
		{name: "server name from the address", want: "-|-",
			ctx: Context{Servers: []string{strings.Replace(tlsAddr, "127.0.0.1", "localhost", 1)}, CertificateAuthority: ca}},
		{name: "plaintext with token on loopback", want: "-|Bearer t",
			ctx: Context{Servers: []string{plainAddr}, Token: "t"}},
		{name: "plaintext without credentials", want: "-|-",
			ctx: Context{Servers: []string{plainAddr}}},
		{name: "server signed by another CA is refused", wantErr: "certificate signed by unknown authority",
			ctx: Context{Servers: []string{tlsAddr}, CertificateAuthority: filepath.Join(otherCA.dir, "ca.crt")}},
		{name: "missing client certificate is refused", wantErr: "Unavailable",
			ctx: Context{Servers: []string{mtlsAddr}, CertificateAuthority: ca}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.ctx.Name = "test"
			v, err := version(t, t.Context(), &tt.ctx)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.GitVersion != tt.want {
				t.Fatalf("server saw %q, want %q", v.GitVersion, tt.want)
			}
		})
	}
}

func TestConnRefusesBadSettings(t *testing.T) {
	dir := t.TempDir()
	notPEM := writeFile(t, dir, "ca.crt", "hello")
	tests := []struct {
		name    string
		ctx     Context
		wantErr string
	}{
		{name: "no servers", ctx: Context{}, wantErr: "no servers"},
		{name: "missing CA file", ctx: Context{Servers: []string{"h:1"}, CertificateAuthority: filepath.Join(dir, "absent")}, wantErr: "certificateAuthority"},
		{name: "CA not PEM", ctx: Context{Servers: []string{"h:1"}, CertificateAuthority: notPEM}, wantErr: "no PEM certificate"},
		{name: "missing client key", ctx: Context{Servers: []string{"h:1"}, CertificateAuthority: newPKI(t).dir + "/ca.crt", ClientCertificate: "c", ClientKey: "k"}, wantErr: "clientCertificate/clientKey"},
		{name: "token in plaintext to a remote server", ctx: Context{Servers: []string{"10.0.0.1:6443"}, Token: "t"}, wantErr: "a token needs a certificateAuthority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.ctx.Conn()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDialFailsOverToALiveServer(t *testing.T) {
	addrA, stopA := serve(t, "a")
	addrB, _ := serve(t, "b")
	cfg := &Config{Contexts: []Context{{Name: "ha", Servers: []string{deadAddr(t), addrA, addrB}}}}
	cl, err := cfg.Dial(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	call := func() (string, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		v, err := cl.API.Version(ctx, &api.VersionRequest{})
		return v.GetPlatform(), err
	}
	seen := map[string]bool{}
	for range 20 {
		name, err := call()
		if err != nil {
			t.Fatalf("with one dead server of three: %v", err)
		}
		seen[name] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Errorf("requests reached %v, want both live servers", seen)
	}

	stopA()
	// Once the balancer has seen A go, every request lands on B.
	deadline := time.Now().Add(5 * time.Second)
	for {
		name, err := call()
		if err == nil && name == "b" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after stopping a: %q, %v", name, err)
		}
	}
	for range 10 {
		if name, err := call(); err != nil || name != "b" {
			t.Fatalf("after fail-over: %q, %v; want b", name, err)
		}
	}
}

func TestDialClosesWithContext(t *testing.T) {
	addr, _ := serve(t, "a")
	ctx, cancel := context.WithCancel(t.Context())
	cl, err := ForAddress(addr).Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.API.Version(ctx, &api.VersionRequest{}); err != nil {
		t.Fatal(err)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := cl.API.Version(t.Context(), &api.VersionRequest{})
		if err != nil && strings.Contains(err.Error(), "closing") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("connection still usable after its context ended: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
