package cmd

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/ctl/printers"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

func newDescribeCmd(streams IOStreams, f *Factory) *cobra.Command {
	var selector string
	var allNamespaces, showEvents bool
	c := &cobra.Command{
		Use:   "describe (-f FILENAME | TYPE [NAME_PREFIX | -l label] | TYPE/NAME)",
		Short: "Show details of a specific resource or group of resources",
		Long: `Show details of a specific resource or group of resources, with the events
that concern it.

A NAME_PREFIX describes every object whose name starts with it when no object
has exactly that name.`,
		Example: `  # Describe a node
  ctl describe nodes node-1

  # Describe a pod
  ctl describe pods/nginx

  # Describe all pods managed by the 'web' deployment (name prefix)
  ctl describe pods web

  # Describe pods by label
  ctl describe pods -l app=web`,
		ValidArgsFunction: completeResources(f),
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf(c, "You must specify the type of resource to describe. Use one of: %s", strings.Join(resourceTypeList(), ", "))
			}
			reqs, err := parseResourceArgs(args)
			if err != nil {
				return err
			}
			ctx := c.Context()
			cl, ns, err := f.clientInNamespace(ctx)
			if err != nil {
				return err
			}
			if allNamespaces {
				ns = ""
			}
			var objs []kinds.Object
			for _, r := range reqs {
				found, err := findForDescribe(ctx, cl, r, namespaceFor(r.info, ns), selector)
				if err != nil {
					return err
				}
				objs = append(objs, found...)
			}
			if len(objs) == 0 {
				fmt.Fprintln(streams.ErrOut, noResourcesMessage(reqs, ns, allNamespaces))
				return nil
			}
			for i, obj := range objs {
				d, err := gatherDescribed(ctx, cl, obj, showEvents)
				if err != nil {
					return err
				}
				if i > 0 {
					fmt.Fprint(streams.Out, "\n\n")
				}
				if err := printers.Describe(streams.Out, d, f.now()); err != nil {
					return err
				}
			}
			return nil
		},
	}
	c.Flags().StringVarP(&selector, "selector", "l", "", "Selector (label query) to filter on")
	c.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "If present, list the requested object(s) across all namespaces")
	c.Flags().BoolVar(&showEvents, "show-events", true, "If true, display events related to the described object.")
	return c
}

// findForDescribe finds the objects to describe: by exact name, else by
// name prefix, else every object matching the selector.
func findForDescribe(ctx context.Context, cl *client.Client, r resourceRequest, ns, selector string) ([]kinds.Object, error) {
	rc := client.ForKind(cl, r.info)
	if len(r.names) == 0 {
		objs, _, err := rc.List(ctx, ns, client.ListOptions{LabelSelector: selector})
		if err != nil {
			return nil, err
		}
		return objs, sortObjects(objs, "")
	}
	var out []kinds.Object
	for _, name := range r.names {
		obj, err := rc.Get(ctx, ns, name)
		if err == nil {
			out = append(out, obj)
			continue
		}
		if !client.IsNotFound(err) {
			return nil, withObject(err, r.info, name)
		}
		all, _, lerr := rc.List(ctx, ns, client.ListOptions{LabelSelector: selector})
		if lerr != nil {
			return nil, lerr
		}
		var matched []kinds.Object
		for _, o := range all {
			if strings.HasPrefix(o.GetMetadata().GetName(), name) {
				matched = append(matched, o)
			}
		}
		if len(matched) == 0 {
			return nil, withObject(err, r.info, name)
		}
		if err := sortObjects(matched, ""); err != nil {
			return nil, err
		}
		out = append(out, matched...)
	}
	return out, nil
}

// gatherDescribed fetches what describe shows next to obj: its events and
// related objects.
func gatherDescribed(ctx context.Context, cl *client.Client, obj kinds.Object, withEvents bool) (printers.Described, error) {
	d := printers.Described{Object: obj}
	m := obj.GetMetadata()
	if withEvents && m.GetUid() != "" {
		// Events of cluster-scoped objects live in "default", as in Kubernetes.
		evs, _, err := cl.Events().List(ctx, "", client.ListOptions{FieldSelector: "involvedObject.uid=" + m.GetUid()})
		if err != nil {
			return d, fmt.Errorf("list events of %s: %w", m.GetName(), err)
		}
		d.Events = evs
	}
	var err error
	switch o := obj.(type) {
	case *api.Deployment:
		d.ReplicaSets, err = ownedReplicaSets(ctx, cl, o)
	case *api.ReplicaSet:
		var pods []*api.Pod
		pods, _, err = cl.Pods().List(ctx, m.GetNamespace(), client.ListOptions{})
		for _, p := range pods {
			if ownedBy(p.GetMetadata(), m.GetUid()) {
				d.Pods = append(d.Pods, p)
			}
		}
	case *api.Service:
		d.Endpoints, err = cl.Endpoints().Get(ctx, m.GetNamespace(), m.GetName())
		if client.IsNotFound(err) {
			err = nil
		}
	case *api.Node:
		d.Pods, _, err = cl.Pods().List(ctx, "", client.ListOptions{FieldSelector: "spec.nodeName=" + m.GetName()})
	}
	return d, err
}

func ownedBy(m *api.ObjectMeta, uid string) bool {
	for _, o := range m.GetOwnerReferences() {
		if o.GetUid() == uid {
			return true
		}
	}
	return false
}

// ownedReplicaSets lists the ReplicaSets a Deployment owns.
func ownedReplicaSets(ctx context.Context, cl *client.Client, d *api.Deployment) ([]*api.ReplicaSet, error) {
	all, _, err := cl.ReplicaSets().List(ctx, d.GetMetadata().GetNamespace(), client.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []*api.ReplicaSet
	for _, rs := range all {
		if ownedBy(rs.GetMetadata(), d.GetMetadata().GetUid()) {
			out = append(out, rs)
		}
	}
	return out, nil
}
