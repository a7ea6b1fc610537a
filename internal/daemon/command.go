package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/version"
)

// Command is a daemon's command line: every daemon takes the shared Flags,
// --version and no arguments, applies its --config file, then serves under
// Run.
type Command struct {
	// Name is the binary's name and the component in logs and metrics.
	Name string
	// Short is the one-line help.
	Short string
	// Flags are the shared flags, holding this daemon's defaults.
	Flags *Flags
	// Prepare, when set, runs once the command line and the --config file
	// are applied: it completes and checks the daemon's own flags. It
	// returns ErrDone when the command did its job without serving (a
	// one-shot mode such as the proxy's --cleanup).
	Prepare func(cmd *cobra.Command) error
	// Serve is the daemon's work, run by Run.
	Serve func(ctx context.Context, d *Daemon) error
}

// ErrDone, from Prepare, ends the command successfully without serving.
var ErrDone = errors.New("done without serving")

// Cobra is the cobra command with the shared flags registered; the daemon
// adds its own flags to its Flags().
func (c Command) Cobra() *cobra.Command {
	cmd := &cobra.Command{
		Use:           c.Name,
		Short:         c.Short,
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.Flags.ApplyConfigFile(cmd.Flags()); err != nil {
				return err
			}
			if c.Prepare != nil {
				if err := c.Prepare(cmd); errors.Is(err, ErrDone) {
					return nil
				} else if err != nil {
					return err
				}
			}
			return Run(cmd.Context(), c.Name, *c.Flags, c.Serve)
		},
	}
	c.Flags.Register(cmd.Flags())
	return cmd
}

// Main executes cmd and exits 1 with its error on stderr.
func Main(cmd *cobra.Command) {
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
