package clientconfig

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadValidates(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		wantErr string
	}{
		{name: "valid", file: `
currentContext: prod
contexts:
- name: prod
  servers: [10.0.0.1:6443, 10.0.0.2:6443]
  certificateAuthority: ca.crt
  clientCertificate: admin.crt
  clientKey: admin.key
  namespace: web
- name: local
  servers: [127.0.0.1:6443]
  token: secret
`},
		{name: "unknown field", file: "contexts:\n- name: a\n  server: [a:1]\n", wantErr: `unknown field "server"`},
		{name: "missing name", file: "contexts:\n- servers: [a:1]\n", wantErr: "contexts[0].name: required"},
		{name: "duplicate name", file: "contexts:\n- {name: a, servers: [a:1]}\n- {name: a, servers: [b:1]}\n", wantErr: `contexts[1].name: duplicate context "a"`},
		{name: "no servers", file: "contexts:\n- name: a\n", wantErr: "contexts[0].servers: at least one"},
		{name: "server without port", file: "contexts:\n- {name: a, servers: [a:1, example.com]}\n", wantErr: `contexts[0].servers[1]: "example.com" is not host:port`},
		{name: "TLS server without host", file: "contexts:\n- {name: a, servers: [':6443'], certificateAuthority: ca.crt}\n", wantErr: "contexts[0].servers[0]"},
		{name: "cert without key", file: "contexts:\n- {name: a, servers: [a:1], certificateAuthority: ca, clientCertificate: c}\n", wantErr: "clientCertificate and clientKey go together"},
		{name: "cert without CA", file: "contexts:\n- {name: a, servers: [a:1], clientCertificate: c, clientKey: k}\n", wantErr: "contexts[0].certificateAuthority: required with clientCertificate"},
		{name: "token in plaintext to a remote server", file: "contexts:\n- {name: a, servers: ['127.0.0.1:1', '10.1.1.1:1'], token: t}\n", wantErr: "contexts[0].certificateAuthority: required to send a token"},
		{name: "current context missing", file: "currentContext: b\ncontexts:\n- {name: a, servers: [a:1]}\n", wantErr: `currentContext: no context named "b"`},
		{name: "not YAML", file: "contexts: [\n", wantErr: "client config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "config", tt.file)
			_, err := Load(p)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoadResolvesRelativePathsAgainstTheFile(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "config", "contexts:\n- {name: a, servers: [h:1], certificateAuthority: pki/ca.crt, clientCertificate: /abs/c.crt, clientKey: k.key}\n")
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := cfg.Current()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ got, want string }{
		{cur.path(cur.CertificateAuthority), filepath.Join(dir, "pki/ca.crt")},
		{cur.path(cur.ClientCertificate), "/abs/c.crt"},
		{cur.path(cur.ClientKey), filepath.Join(dir, "k.key")},
	} {
		if c.got != c.want {
			t.Errorf("path = %q, want %q", c.got, c.want)
		}
	}
}

func TestDefaultPathAndLoadFromEnv(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "cfg", "contexts:\n- {name: only, servers: ['127.0.0.1:7000']}\n")
	t.Setenv(EnvVar, p)
	if got, err := DefaultPath(); err != nil || got != p {
		t.Fatalf("DefaultPath = %q, %v; want %q", got, err, p)
	}
	cfg, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if cur, err := cfg.Current(); err != nil || cur.Name != "only" {
		t.Fatalf("Current = %v, %v; want the only context", cur, err)
	}

	t.Setenv(EnvVar, "")
	t.Setenv("HOME", dir)
	if got, err := DefaultPath(); err != nil || got != filepath.Join(dir, ".skiff", "config") {
		t.Fatalf("DefaultPath without $%s = %q, %v", EnvVar, got, err)
	}
	if _, err := Load(""); err == nil || !strings.Contains(err.Error(), ".skiff/config") {
		t.Fatalf("Load of a missing default file = %v, want an error naming it", err)
	}
}

func TestCurrent(t *testing.T) {
	two := []Context{{Name: "a", Servers: []string{"a:1"}}, {Name: "b", Servers: []string{"b:1"}}}
	tests := []struct {
		name    string
		cfg     Config
		want    string
		wantErr string
	}{
		{name: "named", cfg: Config{CurrentContext: "b", Contexts: two}, want: "b"},
		{name: "unset with several", cfg: Config{Contexts: two}, wantErr: "currentContext is not set"},
		{name: "unknown", cfg: Config{CurrentContext: "c", Contexts: two}, wantErr: `no context named "c"`},
		{name: "unset with one", cfg: *ForAddress("127.0.0.1:1"), want: "local"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur, err := tt.cfg.Current()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || cur.Name != tt.want {
				t.Fatalf("Current = %v, %v; want %q", cur, err, tt.want)
			}
		})
	}
}

func TestSaveRoundTripsPrivately(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "config")
	want := &Config{CurrentContext: "a", Contexts: []Context{
		{Name: "a", Servers: []string{"h1:6443", "h2:6443"}, CertificateAuthority: "ca.crt", Token: "tok", Namespace: "web"},
	}}
	if err := want.Save(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600: the file may hold a token", fi.Mode().Perm())
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got.Contexts {
		got.Contexts[i].dir = ""
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip = %+v, want %+v", got, want)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("Save left %d files behind, want only config", len(entries))
	}
	bad := &Config{Contexts: []Context{{Name: "x"}}}
	if err := bad.Save(path); err == nil {
		t.Error("Save of an invalid config succeeded")
	}
}
