// Package cmd holds ctl's commands: one small file per command, each built
// by a constructor that takes the streams and the Factory, so tests run
// commands in-process against an in-process apiserver.
//
// Commands reach the cluster only through internal/client; they must never
// write to os.Stdout/os.Stderr or call os.Exit themselves: main does.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// IOStreams are the command's standard streams.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// NewRootCmd builds the ctl command tree.
func NewRootCmd(streams IOStreams, f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "ctl",
		Short: "ctl controls the Skiff cluster manager",
		Long: `ctl controls the Skiff cluster manager. It works like kubectl: the same
commands, flags, short names and output.

Find more information at docs/architecture.md.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		// Suggestions for mistyped commands, as kubectl prints them.
		SuggestionsMinimumDistance: 2,
	}
	f.AddFlags(root.PersistentFlags())
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{err: err, cmd: c.CommandPath()}
	})

	groups := []struct {
		title string
		cmds  []*cobra.Command
	}{
		{"Basic Commands (Beginner):", []*cobra.Command{
			newCreateCmd(streams, f), newExposeCmd(streams, f), newSetCmd(streams, f),
		}},
		{"Basic Commands (Intermediate):", []*cobra.Command{
			newGetCmd(streams, f), newEditCmd(streams, f), newDeleteCmd(streams, f),
		}},
		{"Deploy Commands:", []*cobra.Command{
			newRolloutCmd(streams, f), newScaleCmd(streams, f),
		}},
		{"Cluster Management Commands:", []*cobra.Command{
			newClusterInfoCmd(streams, f), newCordonCmd(streams, f, true), newCordonCmd(streams, f, false), newDrainCmd(streams, f),
		}},
		{"Troubleshooting and Debugging Commands:", []*cobra.Command{
			newDescribeCmd(streams, f), newLogsCmd(streams, f), newExecCmd(streams, f), newPortForwardCmd(streams, f), newCpCmd(streams, f), newEventsCmd(streams, f),
		}},
		{"Advanced Commands:", []*cobra.Command{
			newApplyCmd(streams, f), newWaitCmd(streams, f),
		}},
		{"Settings Commands:", []*cobra.Command{
			newLabelCmd(streams, f, labelTarget()), newLabelCmd(streams, f, annotationTarget()), newCompletionCmd(streams),
		}},
		{"Other Commands:", []*cobra.Command{
			newAPIResourcesCmd(streams), newConfigCmd(streams, f), newVersionCmd(streams, f),
		}},
	}
	for i, g := range groups {
		id := fmt.Sprintf("g%d", i)
		root.AddGroup(&cobra.Group{ID: id, Title: g.title})
		for _, c := range g.cmds {
			c.GroupID = id
			root.AddCommand(c)
		}
	}
	root.SetHelpCommandGroupID("g7")
	root.SetCompletionCommandGroupID("g6")
	return root
}

// usageError is a bad flag or argument: kubectl adds a pointer to --help.
type usageError struct {
	err error
	cmd string
}

func (e *usageError) Error() string {
	return fmt.Sprintf("%v\nSee '%s --help' for usage.", e.err, e.cmd)
}

func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(c *cobra.Command, format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...), cmd: c.CommandPath()}
}

// ExitError ends ctl with a given code without printing anything more
// (exec passes the remote command's code through; errors already printed
// one by one end with code 1).
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Execute runs ctl with args and returns the process exit code; every
// failure is printed to errOut the way kubectl prints it.
func Execute(ctx context.Context, args []string, streams IOStreams, f *Factory) int {
	root := NewRootCmd(streams, f)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var exit *ExitError
	if errors.As(err, &exit) {
		return exit.Code
	}
	fmt.Fprintln(streams.ErrOut, FormatError(err))
	return 1
}

// FormatError renders an error as kubectl does: server errors as
// "Error from server (Reason): message", everything else as "error: ...".
func FormatError(err error) string {
	if msg, ok := serverErrorMessage(err); ok {
		return msg
	}
	return "error: " + strings.TrimRight(err.Error(), "\n")
}

// subcommandRequired is the error of a command group run without a known
// subcommand: like cobra's for the root, with "did you mean" suggestions.
func subcommandRequired(c *cobra.Command, args []string) error {
	var names []string
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	if len(args) == 0 {
		return usageErrorf(c, "a subcommand is required: %s", strings.Join(names, ", "))
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2
	}
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return errors.New(msg)
}
