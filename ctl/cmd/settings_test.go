package cmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/clientconfig"
	"github.com/skiff-dev/skiff/internal/version"
)

// runPlain runs ctl with a Factory that dials like the real binary: from
// --server or the client config file.
func runPlain(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Execute(context.Background(), args, IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, &Factory{})
	return result{out: out.String(), err: errOut.String(), code: code}
}

func TestServerFlagAndClientConfig(t *testing.T) {
	e := newEnv(t)
	addr := e.cluster.Addr
	if r := runPlain(t, "--server", addr, "create", "namespace", "team-a"); r.code != 0 || r.out != "namespace/team-a created\n" {
		t.Fatalf("--server: %+v", r)
	}
	if r := runPlain(t, "--server", addr, "--request-timeout", "5s", "get", "ns", "team-a", "-o", "name"); r.out != "namespace/team-a\n" {
		t.Errorf("--request-timeout: %+v", r)
	}
	if r := runPlain(t, "--server", addr, "cluster-info"); r.out != "Skiff control plane is running at "+addr+"\n" {
		t.Errorf("cluster-info: %+v", r)
	}
	if r := runPlain(t, "--server", addr, "version"); r.code != 0 || !strings.HasPrefix(r.out, "Client Version: "+version.GitVersion+"\nServer Version: ") {
		t.Errorf("version: %+v", r)
	}
	if r := runPlain(t, "version", "--client", "-o", "json"); r.code != 0 || !strings.Contains(r.out, "\"clientVersion\": {") || strings.Contains(r.out, "serverVersion") {
		t.Errorf("version --client -o json: %+v", r)
	}
	if r := runPlain(t, "--server", "127.0.0.1:1", "--request-timeout", "2s", "get", "pods"); r.code == 0 || !strings.HasPrefix(r.err, "Unable to connect to the server") && !strings.Contains(r.err, "timed out") {
		t.Errorf("an unreachable server: %+v", r)
	}

	// The same through a client config file with contexts.
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config")
	cfg := &clientconfig.Config{CurrentContext: "a", Contexts: []clientconfig.Context{
		{Name: "a", Servers: []string{addr}},
		{Name: "b", Servers: []string{addr}, Namespace: "team-a"},
	}}
	if err := cfg.Save(cfgPath); err != nil {
		t.Fatal(err)
	}
	if r := runPlain(t, "--client-config", cfgPath, "create", "deployment", "web", "--image", "nginx"); r.out != "deployment.apps/web created\n" {
		t.Fatalf("create through the config file: %+v", r)
	}
	if r := runPlain(t, "--kubeconfig", cfgPath, "config", "use-context", "b"); r.out != "Switched to context \"b\".\n" {
		t.Errorf("use-context: %+v", r)
	}
	// Context b's namespace is the default now.
	if r := runPlain(t, "--kubeconfig", cfgPath, "get", "deploy"); r.err != "No resources found in team-a namespace.\n" {
		t.Errorf("get in the context's namespace: %+v", r)
	}
	if r := runPlain(t, "--kubeconfig", cfgPath, "get", "deploy", "-n", "default", "-o", "name"); r.out != "deployment.apps/web\n" {
		t.Errorf("-n overrides the context's namespace: %+v", r)
	}
	if r := runPlain(t, "--kubeconfig", cfgPath, "config", "get-contexts"); r.out != "CURRENT   NAME   SERVERS           NAMESPACE\n          a      "+addr+"   \n*         b      "+addr+"   team-a\n" {
		t.Errorf("get-contexts:\n%s", r.out)
	}
	if r := runPlain(t, "--kubeconfig", cfgPath, "config", "set-context", "--current", "--namespace", "default"); r.out != "Context \"b\" modified.\n" {
		t.Errorf("set-context --current: %+v", r)
	}
	// A token needs a CA for a non-loopback server: the config refuses it.
	if r := runPlain(t, "--kubeconfig", cfgPath, "config", "set-context", "c", "--servers", "10.0.0.1:6443", "--token", "secret"); r.code == 0 || !strings.Contains(r.err, "certificateAuthority") {
		t.Errorf("set-context with a token and no CA: %+v", r)
	}
	if r := runPlain(t, "--kubeconfig", cfgPath, "config", "set-context", "c", "--servers", "127.0.0.1:6443", "--token", "secret"); r.out != "Context \"c\" created.\n" {
		t.Errorf("set-context new: %+v", r)
	}
	if r := runPlain(t, "--kubeconfig", cfgPath, "config", "view"); !strings.Contains(r.out, "token: REDACTED") || strings.Contains(r.out, "secret") {
		t.Errorf("config view must hide tokens:\n%s", r.out)
	}
	if r := runPlain(t, "--kubeconfig", cfgPath, "config", "view", "--raw", "--minify"); strings.Contains(r.out, "name: c") || !strings.Contains(r.out, "name: b") {
		t.Errorf("config view --minify:\n%s", r.out)
	}
	if r := runPlain(t, "--kubeconfig", cfgPath, "config", "current-context"); r.out != "b\n" {
		t.Errorf("current-context: %+v", r)
	}
	if r := runPlain(t, "--kubeconfig", cfgPath, "config", "use-context", "nope"); r.code == 0 || !strings.Contains(r.err, "no context exists with the name: \"nope\"") {
		t.Errorf("use-context nope: %+v", r)
	}
	if r := runPlain(t, "--kubeconfig", filepath.Join(dir, "missing"), "get", "pods"); r.code == 0 || !strings.Contains(r.err, "client config") {
		t.Errorf("a missing config file: %+v", r)
	}
	t.Setenv(clientconfig.EnvVar, cfgPath)
	if r := runPlain(t, "get", "deploy", "-o", "name"); r.out != "deployment.apps/web\n" {
		t.Errorf("$SKIFF_CONFIG: %+v", r)
	}
}

func TestCompletionScripts(t *testing.T) {
	for shell, want := range map[string]string{"bash": "__start_ctl", "zsh": "#compdef ctl", "fish": "complete -c ctl"} {
		r := runPlain(t, "completion", shell)
		if r.code != 0 || !strings.Contains(r.out, want) {
			t.Errorf("completion %s: code %d, output lacks %q", shell, r.code, want)
		}
	}
	if r := runPlain(t, "completion", "tcsh"); r.code == 0 {
		t.Error("completion for an unknown shell must fail")
	}
	// Resource types complete from the kinds table.
	r := runPlain(t, cobra.ShellCompNoDescRequestCmd, "get", "dep")
	if !strings.HasPrefix(r.out, "deploy\ndeployment\ndeployments\n") {
		t.Errorf("completing get dep: %q", r.out)
	}
}

// TestEveryCommandHasHelpWithExamples protects --help: every runnable
// command documents itself with examples.
func TestEveryCommandHasHelpWithExamples(t *testing.T) {
	root := NewRootCmd(IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}, &Factory{})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Runnable() && c.Name() != "help" && !strings.HasPrefix(c.Name(), "__") && c.Example == "" && c.HasParent() {
			t.Errorf("%q has no Example", c.CommandPath())
		}
		if c.Short == "" {
			t.Errorf("%q has no Short description", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	r := runPlain(t, "get", "--help")
	if r.code != 0 || !strings.Contains(r.out, "Examples:\n  # List all pods in ps output format\n  ctl get pods") {
		t.Errorf("get --help:\n%s", r.out)
	}
}

func TestConfigFileIsCreatedBySetContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "config")
	if r := runPlain(t, "--client-config", path, "config", "set-context", "local", "--servers", "127.0.0.1:6443", "--namespace", "dev"); r.out != "Context \"local\" created.\n" {
		t.Fatalf("set-context on a new file: %+v", r)
	}
	cfg, err := clientconfig.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := cfg.Current()
	if err != nil || cur.Namespace != "dev" || cur.Servers[0] != "127.0.0.1:6443" {
		t.Errorf("saved config: %+v %v", cur, err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm()&0o077 != 0 {
		t.Errorf("the config file must be private: %v %v", st.Mode(), err)
	}
}

func TestAPIResources(t *testing.T) {
	r := runPlain(t, "api-resources")
	lines := strings.Split(r.out, "\n")
	if r.code != 0 || lines[0] != "NAME           SHORTNAMES   APIVERSION                     NAMESPACED   KIND" {
		t.Fatalf("api-resources header: %q", lines[0])
	}
	if !strings.Contains(r.out, "\ndeployments    deploy       apps/v1                        true         Deployment\n") {
		t.Errorf("api-resources:\n%s", r.out)
	}
	if r := runPlain(t, "api-resources", "-o", "name", "--namespaced=false"); r.out != "namespaces\nnodes\nrolebindings.rbac.authorization.k8s.io\n" {
		t.Errorf("api-resources -o name --namespaced=false: %q", r.out)
	}
}

func TestUnknownSubcommandsSuggest(t *testing.T) {
	if r := runPlain(t, "rollout", "statsu", "deploy/x"); r.code == 0 || r.err != "error: unknown command \"statsu\" for \"ctl rollout\"\n\nDid you mean this?\n\tstatus\n" {
		t.Errorf("rollout statsu: %+v", r)
	}
	if r := runPlain(t, "config"); r.code == 0 || !strings.Contains(r.err, "a subcommand is required: current-context, get-contexts, set-context, use-context, view") {
		t.Errorf("config alone: %+v", r)
	}
}
