package cmd

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/ctl/printers"
	"github.com/skiff-dev/skiff/internal/client"
)

type deleteOptions struct {
	objectSelection
	cascade        string
	gracePeriod    int
	now            bool
	force          bool
	wait           bool
	timeout        time.Duration
	ignoreNotFound bool
	output         string
}

// waitPoll is how often delete --wait checks whether objects are gone.
const waitPoll = 200 * time.Millisecond

func newDeleteCmd(streams IOStreams, f *Factory) *cobra.Command {
	o := &deleteOptions{}
	c := &cobra.Command{
		Use:   "delete ([-f FILENAME] | TYPE [(NAME | -l label | --all)])",
		Short: "Delete resources by file names, stdin, resources and names, or by resources and label selector",
		Long: `Delete resources by file names, stdin, resources and names, or by resources and label selector.

By default delete waits until every object is gone (pods finish their graceful
termination, foreground deletion removes dependents first); --wait=false returns
at once. --cascade chooses what happens to dependents: background (default)
lets the garbage collector delete them, foreground deletes them before the
owner, orphan leaves them running.`,
		Example: `  # Delete a pod using the type and name specified in pod.json
  ctl delete -f ./pod.json

  # Delete pods and services with same names "baz" and "foo"
  ctl delete pod,service baz foo

  # Delete pods and services with label name=myLabel
  ctl delete pods,services -l name=myLabel

  # Delete a pod with minimal delay
  ctl delete pod foo --now

  # Force delete a pod on a dead node
  ctl delete pod foo --force --grace-period=0

  # Delete a deployment but keep its replica sets and pods
  ctl delete deployment web --cascade=orphan

  # Delete all pods
  ctl delete pods --all`,
		ValidArgsFunction: completeResources(f),
		RunE: func(c *cobra.Command, args []string) error {
			return runDelete(c, streams, f, o, args)
		},
	}
	o.objectSelection.addFlags(c, "containing the resource to delete", "Delete all resources, in the namespace of the specified resource types.")
	fl := c.Flags()
	fl.StringVar(&o.cascade, "cascade", "background", `Must be "background", "orphan", or "foreground". Selects the deletion cascading strategy for the dependents (e.g. Pods created by a ReplicationController).`)
	fl.Lookup("cascade").NoOptDefVal = "background"
	fl.IntVar(&o.gracePeriod, "grace-period", -1, "Period of time in seconds given to the resource to terminate gracefully. Ignored if negative. Set to 1 for immediate shutdown. Can only be set to 0 when --force is true (force deletion).")
	fl.BoolVar(&o.now, "now", false, "If true, resources are signaled for immediate shutdown (same as --grace-period=1).")
	fl.BoolVar(&o.force, "force", false, "If true, immediately remove resources from API and bypass graceful deletion.")
	fl.BoolVar(&o.wait, "wait", true, "If true, wait for resources to be gone before returning. This waits for finalizers.")
	fl.DurationVar(&o.timeout, "timeout", 0, "The length of time to wait before giving up on a delete, zero means determine a timeout from the size of the object")
	fl.BoolVar(&o.ignoreNotFound, "ignore-not-found", false, "Treat \"resource not found\" as a successful delete.")
	fl.StringVarP(&o.output, "output", "o", "", "Output mode. Use \"-o name\" for shorter output (resource/name).")
	return c
}

func propagationPolicy(cascade string) (string, error) {
	switch strings.ToLower(cascade) {
	case "background", "true":
		return "Background", nil
	case "foreground":
		return "Foreground", nil
	case "orphan", "false":
		return "Orphan", nil
	}
	return "", fmt.Errorf("invalid cascade value (%s). Must be \"background\", \"foreground\", or \"orphan\"", cascade)
}

func runDelete(c *cobra.Command, streams IOStreams, f *Factory, o *deleteOptions, args []string) error {
	ctx := c.Context()
	policy, err := propagationPolicy(o.cascade)
	if err != nil {
		return err
	}
	if o.output != "" && o.output != "name" {
		return usageErrorf(c, "unexpected -o output mode: %q. We only support '-o name'", o.output)
	}
	grace := o.gracePeriod
	if o.now {
		if grace >= 0 {
			return usageErrorf(c, "--now and --grace-period cannot be specified together")
		}
		grace = 1
	}
	if grace == 0 && !o.force {
		// kubectl turns a plain --grace-period=0 into the shortest graceful delete.
		grace = 1
	}
	if o.force && grace < 0 {
		grace = 0
	}
	if o.force && grace == 0 {
		fmt.Fprintln(streams.ErrOut, "Warning: Immediate deletion does not wait for confirmation that the running resource has been terminated. The resource may continue to run on the cluster indefinitely.")
	}

	if err := o.check(c, args); err != nil {
		return err
	}
	cl, err := f.Client(ctx)
	if err != nil {
		return err
	}
	targets, reqs, err := o.resolve(c, streams, f, cl, args)
	if err != nil {
		return err
	}
	if len(targets) == 0 && reqs != nil {
		ns, _ := f.DefaultNamespace()
		fmt.Fprintln(streams.ErrOut, noResourcesMessage(reqs, ns, o.allNamespaces))
		return nil
	}

	opts := client.DeleteOptions{PropagationPolicy: policy}
	if grace >= 0 {
		g := int64(grace)
		opts.GracePeriodSeconds = &g
	}
	failed := false
	var pending []objectRef
	for _, t := range targets {
		obj, err := client.ForKind(cl, t.info).Delete(ctx, t.namespace, t.name, opts)
		if err != nil {
			if client.IsNotFound(err) && o.ignoreNotFound {
				continue
			}
			if _, ok := serverErrorMessage(err); ok {
				fmt.Fprintln(streams.ErrOut, FormatError(withObject(err, t.info, t.name)))
				failed = true
				continue
			}
			return err
		}
		if o.output == "name" {
			fmt.Fprintf(streams.Out, "%s/%s\n", printers.QualifiedKind(t.info), t.name)
		} else {
			fmt.Fprintf(streams.Out, "%s %q deleted\n", printers.QualifiedKind(t.info), t.name)
		}
		t.uid = obj.GetMetadata().GetUid()
		pending = append(pending, t)
	}
	if o.wait && len(pending) > 0 {
		timeout := o.timeout
		if timeout == 0 {
			timeout = defaultDeleteTimeout(grace)
		}
		wctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		for _, p := range pending {
			err := waitGone(wctx, streams, cl, p)
			if err != nil {
				if timedOut(ctx, wctx, err) {
					return fmt.Errorf("timed out waiting for the condition on %s", p.resourcePath())
				}
				return err
			}
		}
	}
	if failed {
		return &ExitError{Code: 1}
	}
	return nil
}

// defaultDeleteTimeout gives graceful termination its time plus a minute
// for controllers and the garbage collector.
func defaultDeleteTimeout(grace int) time.Duration {
	g := 30
	if grace >= 0 {
		g = grace
	}
	return time.Duration(g)*time.Second + time.Minute
}

// waitGone polls until the object with uid is gone, printing progress to
// stderr once a second has passed.
func waitGone(ctx context.Context, streams IOStreams, cl *client.Client, d objectRef) error {
	rc := client.ForKind(cl, d.info)
	start := time.Now()
	announced := false
	t := time.NewTicker(waitPoll)
	defer t.Stop()
	for {
		obj, err := rc.Get(ctx, d.namespace, d.name)
		switch {
		case client.IsNotFound(err):
			return nil
		case err != nil:
			return err
		case obj.GetMetadata().GetUid() != d.uid:
			return nil // gone, and something new took its name
		}
		if !announced && time.Since(start) > time.Second {
			announced = true
			fmt.Fprintf(streams.ErrOut, "waiting for %s %q to be deleted...\n", printers.QualifiedKind(d.info), d.name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
