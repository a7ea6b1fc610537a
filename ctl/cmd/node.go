package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

func nodeInfo() *kinds.Info {
	info, _ := kinds.ByResource("nodes")
	return info
}

// setUnschedulable cordons or uncordons a node and prints what happened.
func setUnschedulable(ctx context.Context, streams IOStreams, cl *client.Client, name string, cordon bool) error {
	_, changed, err := updateObject(ctx, client.ForKind(cl, nodeInfo()), "", name, func(obj kinds.Object) error {
		n := obj.(*api.Node)
		if n.Spec == nil {
			n.Spec = &api.NodeSpec{}
		}
		n.Spec.Unschedulable = cordon
		return nil
	})
	if err != nil {
		return err
	}
	verb := "cordoned"
	if !cordon {
		verb = "uncordoned"
	}
	if !changed {
		verb = "already " + verb
	}
	fmt.Fprintf(streams.Out, "node/%s %s\n", name, verb)
	return nil
}

func newCordonCmd(streams IOStreams, f *Factory, cordon bool) *cobra.Command {
	verb, short := "cordon", "Mark node as unschedulable"
	if !cordon {
		verb, short = "uncordon", "Mark node as schedulable"
	}
	return &cobra.Command{
		Use:               verb + " NODE",
		Short:             short,
		Example:           fmt.Sprintf("  # Mark node \"node-1\" as %sschedulable\n  ctl %s node-1", map[bool]string{true: "un", false: ""}[cordon], verb),
		ValidArgsFunction: completeNodes(f),
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf(c, "at least one NODE is required")
			}
			cl, err := f.Client(c.Context())
			if err != nil {
				return err
			}
			for _, n := range args {
				if err := setUnschedulable(c.Context(), streams, cl, n, cordon); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func completeNodes(f *Factory) cobra.CompletionFunc {
	complete := completeResources(f)
	return func(c *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return complete(c, []string{"nodes"}, toComplete)
	}
}

type drainOptions struct {
	force              bool
	gracePeriod        int
	timeout            time.Duration
	deleteEmptyDirData bool
	ignoreDaemonSets   bool
	selector           string
}

func newDrainCmd(streams IOStreams, f *Factory) *cobra.Command {
	o := &drainOptions{}
	c := &cobra.Command{
		Use:   "drain NODE",
		Short: "Drain node in preparation for maintenance",
		Long: `Drain node in preparation for maintenance.

The node is cordoned, then its pods are deleted gracefully and ctl waits for
them to be gone; their controllers start replacements on other nodes. Pods not
managed by a controller would be lost, so drain refuses unless --force is
given; pods with emptyDir data need --delete-emptydir-data.`,
		Example: `  # Drain node "node-1", even if there are pods not managed by a controller on it
  ctl drain node-1 --force

  # As above, but give each pod 15 seconds to terminate
  ctl drain node-1 --grace-period=15`,
		ValidArgsFunction: completeNodes(f),
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf(c, "exactly one NODE is required")
			}
			return runDrain(c.Context(), streams, f, o, args[0])
		},
	}
	c.Flags().BoolVar(&o.force, "force", false, "Continue even if there are pods that do not declare a controller.")
	c.Flags().IntVar(&o.gracePeriod, "grace-period", -1, "Period of time in seconds given to each pod to terminate gracefully. If negative, the default value specified in the pod will be used.")
	c.Flags().DurationVar(&o.timeout, "timeout", 0, "The length of time to wait before giving up, zero means infinite")
	c.Flags().BoolVar(&o.deleteEmptyDirData, "delete-emptydir-data", false, "Continue even if there are pods using emptyDir (local data that will be deleted when the node is drained).")
	c.Flags().BoolVar(&o.ignoreDaemonSets, "ignore-daemonsets", false, "Accepted for kubectl compatibility; Skiff has no DaemonSets.")
	c.Flags().StringVar(&o.selector, "pod-selector", "", "Label selector to filter pods on the node")
	return c
}

func runDrain(ctx context.Context, streams IOStreams, f *Factory, o *drainOptions, node string) error {
	cl, err := f.Client(ctx)
	if err != nil {
		return err
	}
	if err := setUnschedulable(ctx, streams, cl, node, true); err != nil {
		return err
	}
	pods, _, err := cl.Pods().List(ctx, "", client.ListOptions{FieldSelector: "spec.nodeName=" + node, LabelSelector: o.selector})
	if err != nil {
		return err
	}
	var unmanaged, localData, toDelete []*api.Pod
	for _, p := range pods {
		if ph := p.GetStatus().GetPhase(); ph == "Succeeded" || ph == "Failed" {
			toDelete = append(toDelete, p)
			continue
		}
		if controlledByAnything(p) == "" {
			unmanaged = append(unmanaged, p)
		}
		for _, v := range p.GetSpec().GetVolumes() {
			if v.GetEmptyDir() != nil {
				localData = append(localData, p)
				break
			}
		}
		toDelete = append(toDelete, p)
	}
	var problems []string
	if len(unmanaged) > 0 && !o.force {
		problems = append(problems, "cannot delete Pods that declare no controller (use --force to override): "+podList(unmanaged))
	}
	if len(localData) > 0 && !o.deleteEmptyDirData {
		problems = append(problems, "cannot delete Pods with local storage (use --delete-emptydir-data to override): "+podList(localData))
	}
	if len(problems) > 0 {
		return fmt.Errorf("unable to drain node %q due to error: [%s], continuing command...\nThere are pending nodes to be drained:\n %s", node, strings.Join(problems, ", "), node)
	}
	if len(unmanaged) > 0 {
		fmt.Fprintf(streams.ErrOut, "Warning: deleting Pods that declare no controller: %s\n", podList(unmanaged))
	}
	opts := client.DeleteOptions{}
	if o.gracePeriod >= 0 {
		g := int64(o.gracePeriod)
		opts.GracePeriodSeconds = &g
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	info := podInfo()
	for _, p := range toDelete {
		m := p.GetMetadata()
		fmt.Fprintf(streams.ErrOut, "evicting pod %s/%s\n", m.GetNamespace(), m.GetName())
		if _, err := cl.Pods().Delete(ctx, m.GetNamespace(), m.GetName(), opts); err != nil && !client.IsNotFound(err) {
			return withObject(err, info, m.GetName())
		}
	}
	for _, p := range toDelete {
		m := p.GetMetadata()
		err := waitGone(ctx, IOStreams{ErrOut: io.Discard}, cl, objectRef{info: info, namespace: m.GetNamespace(), name: m.GetName(), uid: m.GetUid()})
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("drain did not complete within %s", o.timeout)
			}
			return err
		}
		fmt.Fprintf(streams.Out, "pod/%s evicted\n", m.GetName())
	}
	fmt.Fprintf(streams.Out, "node/%s drained\n", node)
	return nil
}

func controlledByAnything(p *api.Pod) string {
	for _, o := range p.GetMetadata().GetOwnerReferences() {
		if o.GetController() {
			return o.GetKind()
		}
	}
	return ""
}

func podList(pods []*api.Pod) string {
	var names []string
	for _, p := range pods {
		names = append(names, p.GetMetadata().GetNamespace()+"/"+p.GetMetadata().GetName())
	}
	return strings.Join(names, ", ")
}
