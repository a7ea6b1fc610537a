// Package clientconfig reads and writes the client config file shared by ctl
// and the daemons (~/.skiff/config), and dials the apiservers it names: TLS
// with a CA and optional client certificate, a bearer token per RPC, and
// fail-over across several apiservers.
//
// It must never guess credentials: without a certificateAuthority the
// connection is plaintext, and a token is only sent over TLS or loopback.
package clientconfig

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// EnvVar names the file when no path is given.
const EnvVar = "SKIFF_CONFIG"

// Config is the client config file.
type Config struct {
	CurrentContext string    `json:"currentContext"`
	Contexts       []Context `json:"contexts"`
}

// Context is one cluster and the identity to use with it. File paths that
// are relative are read relative to the config file.
type Context struct {
	Name string `json:"name"`
	// Servers are apiserver addresses (host:port); a dead one is skipped.
	Servers              []string `json:"servers"`
	CertificateAuthority string   `json:"certificateAuthority,omitempty"`
	ClientCertificate    string   `json:"clientCertificate,omitempty"`
	ClientKey            string   `json:"clientKey,omitempty"`
	Token                string   `json:"token,omitempty"`
	// Namespace is the default namespace of ctl commands.
	Namespace string `json:"namespace,omitempty"`

	dir string // the config file's directory, for relative paths
}

// DefaultPath is $SKIFF_CONFIG, else ~/.skiff/config.
func DefaultPath() (string, error) {
	if p := os.Getenv(EnvVar); p != "" {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("client config: no $%s and no home directory: %w", EnvVar, err)
	}
	return filepath.Join(home, ".skiff", "config"), nil
}

// AddFlag registers --client-config, the path Load takes ("" = DefaultPath).
func AddFlag(fs *pflag.FlagSet, path *string) {
	fs.StringVar(path, "client-config", *path, "client config file (default $"+EnvVar+" or ~/.skiff/config)")
}

// ForAddress is a config for one plaintext apiserver, for tests and local
// clusters without TLS.
func ForAddress(addr string) *Config {
	return &Config{
		CurrentContext: "local",
		Contexts:       []Context{{Name: "local", Servers: []string{addr}, Namespace: "default"}},
	}
}

// Load reads and validates a config file; path "" means DefaultPath.
func Load(path string) (*Config, error) {
	if path == "" {
		p, err := DefaultPath()
		if err != nil {
			return nil, err
		}
		path = p
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client config: %w", err)
	}
	cfg := &Config{}
	if err := yaml.UnmarshalStrict(data, cfg); err != nil {
		return nil, fmt.Errorf("client config %s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("client config %s: %w", path, err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("client config %s: %w", path, err)
	}
	for i := range cfg.Contexts {
		cfg.Contexts[i].dir = dir
	}
	return cfg, nil
}

// Validate checks the config and names the field at fault.
func (c *Config) Validate() error {
	seen := map[string]bool{}
	for i, ctx := range c.Contexts {
		field := fmt.Sprintf("contexts[%d]", i)
		if ctx.Name == "" {
			return fmt.Errorf("%s.name: required", field)
		}
		if seen[ctx.Name] {
			return fmt.Errorf("%s.name: duplicate context %q", field, ctx.Name)
		}
		seen[ctx.Name] = true
		if len(ctx.Servers) == 0 {
			return fmt.Errorf("%s.servers: at least one host:port required", field)
		}
		for j, s := range ctx.Servers {
			if host, port, err := net.SplitHostPort(s); err != nil || port == "" {
				return fmt.Errorf("%s.servers[%d]: %q is not host:port", field, j, s)
			} else if host == "" && ctx.CertificateAuthority != "" {
				return fmt.Errorf("%s.servers[%d]: %q needs a host to verify the server certificate against", field, j, s)
			}
		}
		if (ctx.ClientCertificate == "") != (ctx.ClientKey == "") {
			return fmt.Errorf("%s: clientCertificate and clientKey go together", field)
		}
		if ctx.ClientCertificate != "" && ctx.CertificateAuthority == "" {
			return fmt.Errorf("%s.certificateAuthority: required with clientCertificate", field)
		}
		if ctx.Token != "" && ctx.CertificateAuthority == "" && !allLoopback(ctx.Servers) {
			return fmt.Errorf("%s.certificateAuthority: required to send a token to a non-loopback server", field)
		}
	}
	if c.CurrentContext != "" && !seen[c.CurrentContext] {
		return fmt.Errorf("currentContext: no context named %q", c.CurrentContext)
	}
	return nil
}

func allLoopback(servers []string) bool {
	for _, s := range servers {
		host, _, _ := net.SplitHostPort(s)
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return false
		}
	}
	return true
}

// Current returns the current context; with one context and no
// currentContext, that one.
func (c *Config) Current() (*Context, error) {
	name := c.CurrentContext
	if name == "" {
		if len(c.Contexts) == 1 {
			return &c.Contexts[0], nil
		}
		return nil, errors.New("client config: currentContext is not set")
	}
	for i := range c.Contexts {
		if c.Contexts[i].Name == name {
			return &c.Contexts[i], nil
		}
	}
	return nil, fmt.Errorf("client config: currentContext: no context named %q", name)
}

// Save writes the config to path ("" = DefaultPath), readable only by its
// owner since it may hold a token. The write is atomic.
func (c *Config) Save(path string) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("client config: %w", err)
	}
	if path == "" {
		p, err := DefaultPath()
		if err != nil {
			return err
		}
		path = p
	}
	data, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("client config: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("client config: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*")
	if err != nil {
		return fmt.Errorf("client config: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("client config: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("client config: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("client config: %w", err)
	}
	return nil
}

// path resolves a file named in the context.
func (c *Context) path(p string) string {
	if p == "" || filepath.IsAbs(p) || c.dir == "" {
		return p
	}
	return filepath.Join(c.dir, p)
}
