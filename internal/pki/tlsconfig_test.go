package pki

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTLSConfigsLoadTheirFilesOrSayWhichIsWrong(t *testing.T) {
	dir := newCA(t, Options{})
	if err := Node(dir, "node-1", []net.IP{net.ParseIP("127.0.0.1")}, Options{}); err != nil {
		t.Fatal(err)
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	notPEM := f("not-pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	serving, client := KubeletServingFile("node-1"), KubeletClientFile("node-1")
	tests := []struct {
		name string
		load func() (*tls.Config, error)
		want string // empty: loads
	}{
		{"server", func() (*tls.Config, error) {
			return ServerTLS(f(serving+".crt"), f(serving+".key"), f(CACertFile), tls.RequireAndVerifyClientCert)
		}, ""},
		{"server without its key", func() (*tls.Config, error) {
			return ServerTLS(f(serving+".crt"), f("missing.key"), f(CACertFile), tls.RequireAndVerifyClientCert)
		}, "serving certificate"},
		{"server with a CA file that is not PEM", func() (*tls.Config, error) {
			return ServerTLS(f(serving+".crt"), f(serving+".key"), notPEM, tls.RequireAndVerifyClientCert)
		}, "holds no PEM certificate"},
		{"client with a certificate", func() (*tls.Config, error) { return ClientTLS(f(CACertFile), f(client+".crt"), f(client+".key")) }, ""},
		{"client without a certificate", func() (*tls.Config, error) { return ClientTLS(f(CACertFile), "", "") }, ""},
		{"client with a key of another certificate", func() (*tls.Config, error) {
			return ClientTLS(f(CACertFile), f(client+".crt"), f(serving+".key"))
		}, "client certificate"},
		{"client with a missing CA", func() (*tls.Config, error) { return ClientTLS(f("missing.crt"), "", "") }, "read CA bundle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, err := tt.load()
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.MinVersion < tls.VersionTLS12 {
				t.Errorf("MinVersion %x, want TLS 1.2 or later", tc.MinVersion)
			}
			if tc.ClientCAs == nil && tc.RootCAs == nil {
				t.Error("no CA pool to verify the peer with")
			}
		})
	}
}
