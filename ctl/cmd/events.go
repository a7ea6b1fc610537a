package cmd

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/ctl/printers"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

func newEventsCmd(streams IOStreams, f *Factory) *cobra.Command {
	var allNamespaces, watch, noHeaders bool
	var forObject, output string
	var types []string
	c := &cobra.Command{
		Use:   "events [(-o|--output=)json|yaml|name|wide] [--for TYPE/NAME] [--types=Normal,Warning] [-w]",
		Short: "List events",
		Long:  `List events, oldest first, optionally only those about one object or of some types.`,
		Example: `  # List recent events in the default namespace
  ctl events

  # List recent events in all namespaces
  ctl events --all-namespaces

  # List recent events for the specified pod, then wait for more events and list them as they arrive
  ctl events --for pod/web-pod-13je7 --watch

  # List only Warning events
  ctl events --types=Warning`,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf(c, "unexpected arguments: %s", strings.Join(args, " "))
			}
			format, err := printers.ParseFormat(output)
			if err != nil {
				return err
			}
			for _, t := range types {
				if t != "Normal" && t != "Warning" {
					return fmt.Errorf("valid --types are Normal or Warning, got %q", t)
				}
			}
			ctx := c.Context()
			cl, ns, err := f.clientInNamespace(ctx)
			if err != nil {
				return err
			}
			if allNamespaces {
				ns = ""
			}
			var field string
			if forObject != "" {
				kind, name, ok := strings.Cut(forObject, "/")
				if !ok {
					return fmt.Errorf("--for must be TYPE/NAME, got %q", forObject)
				}
				info, err := lookupKind(kind)
				if err != nil {
					return err
				}
				field = "involvedObject.kind=" + info.Kind + ",involvedObject.name=" + name
			}
			rc := client.ForKind(cl, eventInfo())
			evs, rv, err := rc.List(ctx, ns, client.ListOptions{FieldSelector: field})
			if err != nil {
				return err
			}
			evs = filterEventTypes(evs, types)
			sort.SliceStable(evs, func(i, j int) bool { return eventTime(evs[i]).Before(eventTime(evs[j])) })
			popts := printers.Options{Wide: format.Kind == "wide", WithNamespace: allNamespaces, NoHeaders: noHeaders, Now: f.now()}
			tp := printers.NewTablePrinter(streams.Out, eventInfo(), popts)
			if format.IsTable() {
				if len(evs) > 0 {
					if err := tp.Print(evs...); err != nil {
						return err
					}
				} else if !watch {
					fmt.Fprintln(streams.ErrOut, noResourcesMessage([]resourceRequest{{info: eventInfo()}}, ns, allNamespaces))
				}
			} else if err := printers.PrintObjects(streams.Out, format, evs, false); err != nil {
				return err
			}
			if !watch {
				return nil
			}
			return watchAndPrint(ctx, f, rc, ns, client.ListOptions{FieldSelector: field, ResourceVersion: rv}, &docStream{out: streams.Out, format: format, n: len(evs)}, tp)
		},
	}
	c.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "If present, list the requested object(s) across all namespaces.")
	c.Flags().BoolVarP(&watch, "watch", "w", false, "After listing the requested events, watch for more events.")
	c.Flags().BoolVar(&noHeaders, "no-headers", false, "When using the default output format, don't print headers.")
	c.Flags().StringVar(&forObject, "for", "", "Filter events to only those pertaining to the specified resource.")
	c.Flags().StringSliceVar(&types, "types", nil, "Output only events of given types.")
	c.Flags().StringVarP(&output, "output", "o", "", "Output format. One of: (json, yaml, name, wide, jsonpath=...)")
	return c
}

func eventInfo() *kinds.Info {
	info, _ := kinds.ByResource("events")
	return info
}

func filterEventTypes(evs []kinds.Object, types []string) []kinds.Object {
	if len(types) == 0 {
		return evs
	}
	var out []kinds.Object
	for _, e := range evs {
		for _, t := range types {
			if e.(*api.Event).GetType() == t {
				out = append(out, e)
			}
		}
	}
	return out
}

// eventTime is when an event was last seen, for sorting.
func eventTime(o kinds.Object) time.Time {
	e := o.(*api.Event)
	switch {
	case e.GetLastTimestamp() != nil:
		return e.GetLastTimestamp().AsTime()
	case e.GetFirstTimestamp() != nil:
		return e.GetFirstTimestamp().AsTime()
	}
	return e.GetMetadata().GetCreationTimestamp().AsTime()
}
