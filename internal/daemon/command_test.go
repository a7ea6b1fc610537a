package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// A daemon's command applies its --config file before Prepare, serves
// only when Prepare lets it, and refuses arguments.
func TestCommand(t *testing.T) {
	configFile := filepath.Join(t.TempDir(), "testd.yaml")
	if err := os.WriteFile(configFile, []byte("name: from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	errPrepare, errServe := errors.New("bad --name"), errors.New("serve failed")
	tests := []struct {
		name        string
		args        []string
		prepareErr  error
		wantName    string // --name as Prepare saw it
		wantServed  bool
		wantErr     error
		wantErrText string
	}{
		{name: "serves with the config file applied", args: []string{"--config", configFile}, wantName: "from-file", wantServed: true, wantErr: errServe},
		{name: "the command line wins", args: []string{"--config", configFile, "--name", "flag"}, wantName: "flag", wantServed: true, wantErr: errServe},
		{name: "ErrDone ends without serving", args: []string{"--name", "x"}, prepareErr: ErrDone, wantName: "x"},
		{name: "a Prepare error is returned", prepareErr: errPrepare, wantErr: errPrepare},
		{name: "arguments are refused", args: []string{"extra"}, wantErrText: `unknown command "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var name, prepared string
			served := false
			cmd := Command{
				Name:  "testd",
				Short: "test daemon",
				Flags: &Flags{HTTPAddr: "127.0.0.1:0", LogLevel: "error"},
				Prepare: func(*cobra.Command) error {
					prepared = name
					return tt.prepareErr
				},
				Serve: func(context.Context, *Daemon) error {
					served = true
					return errServe
				},
			}.Cobra()
			cmd.Flags().StringVar(&name, "name", "default", "a daemon flag")
			cmd.SetArgs(tt.args)
			cmd.SetContext(t.Context())
			err := cmd.Execute()
			switch {
			case tt.wantErrText != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErrText) {
					t.Fatalf("Execute = %v, want an error containing %q", err, tt.wantErrText)
				}
				return
			case !errors.Is(err, tt.wantErr):
				t.Fatalf("Execute = %v, want %v", err, tt.wantErr)
			}
			if tt.wantName != "" && prepared != tt.wantName {
				t.Errorf("Prepare saw --name %q, want %q", prepared, tt.wantName)
			}
			if served != tt.wantServed {
				t.Errorf("served = %v, want %v", served, tt.wantServed)
			}
		})
	}
}
