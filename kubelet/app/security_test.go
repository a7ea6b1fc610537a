package app

import (
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiff-dev/skiff/internal/pki"
)

func TestKubeletRefusesToStartWithoutTLSUnlessInsecure(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := pki.InitCA(dir, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := pki.Node(dir, "n1", []net.IP{net.ParseIP("127.0.0.1")}, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	serving := filepath.Join(dir, pki.KubeletServingFile("n1"))
	withTLS := func(c *Config) {
		c.TLSCertFile, c.TLSPrivateKeyFile, c.ClientCAFile = serving+".crt", serving+".key", filepath.Join(dir, pki.CACertFile)
	}
	tests := []struct {
		name string
		set  func(*Config)
		want string // empty: starts
	}{
		{"defaults: no insecure mode, so the TLS flags are required", func(*Config) {}, "--tls-cert-file, --tls-private-key-file and --client-ca-file are required"},
		{"TLS flags, apiserver by default", withTLS, ""},
		{"explicit --insecure", func(c *Config) { c.Insecure = true }, ""},
		{"only a certificate", func(c *Config) { c.TLSCertFile = serving + ".crt" }, "are required"},
		{"--insecure with TLS flags", func(c *Config) { withTLS(c); c.Insecure = true }, "mutually exclusive"},
		{"unreadable key", func(c *Config) { withTLS(c); c.TLSPrivateKeyFile = filepath.Join(dir, "missing.key") }, "--tls-private-key-file"},
		{"nobody may call", func(c *Config) { withTLS(c); c.AuthorizedClientNames = nil }, "--authorized-client-names"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Defaults()
			cfg.NodeName = "n1"
			tt.set(&cfg)
			err := cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if got := Defaults().AuthorizedClientNames; len(got) != 1 || got[0] != pki.UserAPIServer {
		t.Errorf("default authorized clients %v, want only %s", got, pki.UserAPIServer)
	}
}
