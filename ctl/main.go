// Command ctl is Skiff's kubectl: it parses the command line and hands it
// to ctl/cmd, which does the work.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/skiff-dev/skiff/ctl/cmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cmd.Execute(ctx, os.Args[1:], cmd.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}, &cmd.Factory{})
	stop()
	os.Exit(code)
}
