package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestApplyConfigFile(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		args    []string
		wantErr string
		check   func(t *testing.T, f *Flags, extra *extraFlags)
	}{
		{
			name: "file sets flags not on the command line",
			file: "log-level: debug\nhttp-addr: 127.0.0.1:9999\nsync-frequency: 1000000\n",
			check: func(t *testing.T, f *Flags, e *extraFlags) {
				eq(t, "log-level", f.LogLevel, "debug")
				eq(t, "http-addr", f.HTTPAddr, "127.0.0.1:9999")
				if e.number != 1000000 {
					t.Errorf("sync-frequency = %d, want 1000000", e.number)
				}
			},
		},
		{
			name: "command line wins over the file",
			file: "log-level: debug\nlog-format: json\n",
			args: []string{"--log-level=warn"},
			check: func(t *testing.T, f *Flags, _ *extraFlags) {
				eq(t, "log-level", f.LogLevel, "warn")
				eq(t, "log-format", f.LogFormat, "json")
			},
		},
		{
			name: "a list fills a slice flag, replacing its default",
			file: "node-labels:\n- a=b\n- c=d\nregister: true\n",
			check: func(t *testing.T, _ *Flags, e *extraFlags) {
				eq(t, "node-labels", strings.Join(e.labels, ","), "a=b,c=d")
				if !e.register {
					t.Error("register = false, want true")
				}
			},
		},
		{
			name: "a slice flag on the command line is not appended to",
			file: "node-labels: [a=b]\n",
			args: []string{"--node-labels=x=y"},
			check: func(t *testing.T, _ *Flags, e *extraFlags) {
				eq(t, "node-labels", strings.Join(e.labels, ","), "x=y")
			},
		},
		{
			name: "empty file changes nothing",
			file: "",
			check: func(t *testing.T, f *Flags, _ *extraFlags) {
				eq(t, "log-level", f.LogLevel, "info")
			},
		},
		{name: "unknown key names the key", file: "log-level: debug\nhttp-adr: :1\n", wantErr: `unknown key "http-adr"`},
		{name: "config may not name another config", file: "config: other.yaml\n", wantErr: `unknown key "config"`},
		{name: "bad value names the key", file: "sync-frequency: often\n", wantErr: `key "sync-frequency"`},
		{name: "maps are refused", file: "log-level: {a: b}\n", wantErr: `key "log-level": value must be a scalar`},
		{name: "not a map", file: "- a\n- b\n", wantErr: "must be a map"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			f := &Flags{}
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			f.Register(fs)
			e := &extraFlags{}
			fs.IntVar(&e.number, "sync-frequency", 20, "")
			fs.StringSliceVar(&e.labels, "node-labels", []string{"default=1"}, "")
			fs.BoolVar(&e.register, "register", false, "")
			if err := fs.Parse(append([]string{"--config", path}, tt.args...)); err != nil {
				t.Fatal(err)
			}
			err := f.ApplyConfigFile(fs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("err %q does not name the file", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, f, e)
		})
	}
}

func TestApplyConfigFileMissingFile(t *testing.T) {
	f := &Flags{ConfigFile: filepath.Join(t.TempDir(), "absent.yaml")}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.Register(fs)
	if err := f.ApplyConfigFile(fs); err == nil || !strings.Contains(err.Error(), "absent.yaml") {
		t.Fatalf("err = %v, want one naming the missing file", err)
	}
}

func TestRegisterKeepsDaemonDefaults(t *testing.T) {
	f := &Flags{HTTPAddr: ":10257"}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.Register(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	eq(t, "http-addr", f.HTTPAddr, ":10257")
	eq(t, "log-level", f.LogLevel, "info")
	eq(t, "log-format", f.LogFormat, "text")
	if err := f.ApplyConfigFile(fs); err != nil {
		t.Fatalf("no --config: %v", err)
	}
}

type extraFlags struct {
	number   int
	labels   []string
	register bool
}

func eq(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}
