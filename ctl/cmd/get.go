package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/ctl/printers"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
)

type getOptions struct {
	output         string
	labelSelector  string
	fieldSelector  string
	allNamespaces  bool
	watch          bool
	watchOnly      bool
	showLabels     bool
	noHeaders      bool
	sortBy         string
	ignoreNotFound bool
}

func newGetCmd(streams IOStreams, f *Factory) *cobra.Command {
	o := &getOptions{}
	c := &cobra.Command{
		Use:   "get [(-o|--output=)json|yaml|name|wide|jsonpath=...] (TYPE[.GROUP] [NAME | -l label] | TYPE[.GROUP]/NAME ...) [flags]",
		Short: "Display one or many resources",
		Long: `Display one or many resources.

Prints a table of the most important information about the specified resources.
You can filter the list using a label selector and the --selector flag. If the
desired resource type is namespaced you will only see results in the current
namespace unless you pass --all-namespaces.

Resource types: ` + strings.Join(resourceTypeList(), ", "),
		Example: `  # List all pods in ps output format
  ctl get pods

  # List all pods in ps output format with more information (such as node name)
  ctl get pods -o wide

  # List deployments and their replica sets in the default namespace
  ctl get deploy,rs

  # List a single deployment with specified NAME in YAML output format
  ctl get deployment web -o yaml

  # List pods with label app=web in every namespace
  ctl get pods -l app=web -A

  # Return only the phase value of the specified pod
  ctl get pod web-75f95db655-x2x7k -o jsonpath='{.status.phase}'

  # Watch pods change
  ctl get pods -w`,
		ValidArgsFunction: completeResources(f),
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf(c, "You must specify the type of resource to get. Use \"ctl api-resources\" for a complete list of supported resources.")
			}
			return runGet(c.Context(), streams, f, o, args)
		},
	}
	fl := c.Flags()
	fl.StringVarP(&o.output, "output", "o", "", "Output format. One of: (json, yaml, name, wide, jsonpath=...)")
	fl.StringVarP(&o.labelSelector, "selector", "l", "", "Selector (label query) to filter on, supports '=', '==', '!=', 'in', 'notin' (e.g. -l key1=value1,key2=value2)")
	fl.StringVar(&o.fieldSelector, "field-selector", "", "Selector (field query) to filter on, e.g. --field-selector status.phase=Running")
	fl.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "List the requested object(s) across all namespaces")
	fl.BoolVarP(&o.watch, "watch", "w", false, "After listing/getting the requested object, watch for changes")
	fl.BoolVar(&o.watchOnly, "watch-only", false, "Watch for changes to the requested object(s), without listing/getting first")
	fl.BoolVar(&o.showLabels, "show-labels", false, "When printing, show all labels as the last column")
	fl.BoolVar(&o.noHeaders, "no-headers", false, "When using the default or wide output format, don't print headers")
	fl.StringVar(&o.sortBy, "sort-by", "", "Sort list types using this JSONPath expression, e.g. '{.metadata.creationTimestamp}' to sort by age")
	fl.BoolVar(&o.ignoreNotFound, "ignore-not-found", false, "If the requested object does not exist the command will return exit code 0")
	return c
}

func resourceTypeList() []string {
	var out []string
	for _, info := range kinds.All() {
		out = append(out, info.Resource)
	}
	sort.Strings(out)
	return out
}

// fetched is what get found for one kind.
type fetched struct {
	info *kinds.Info
	objs []kinds.Object
	rv   string
}

func runGet(ctx context.Context, streams IOStreams, f *Factory, o *getOptions, args []string) error {
	format, err := printers.ParseFormat(o.output)
	if err != nil {
		return err
	}
	reqs, err := parseResourceArgs(args)
	if err != nil {
		return err
	}
	named := false
	for _, r := range reqs {
		if len(r.names) > 0 {
			named = true
		}
	}
	if named && o.labelSelector != "" {
		return errors.New("name cannot be provided when a selector is specified")
	}
	c, err := f.Client(ctx)
	if err != nil {
		return err
	}
	ns, _ := f.DefaultNamespace()
	if o.allNamespaces {
		ns = ""
	}

	var results []fetched
	failed := false
	for _, r := range reqs {
		rc := client.ForKind(c, r.info)
		res := fetched{info: r.info}
		if o.watchOnly {
			results = append(results, res)
			continue
		}
		if len(r.names) == 0 {
			objs, rv, err := rc.List(ctx, namespaceFor(r.info, ns), client.ListOptions{LabelSelector: o.labelSelector, FieldSelector: o.fieldSelector})
			if err != nil {
				return err
			}
			res.objs, res.rv = objs, rv
		} else {
			for _, name := range r.names {
				obj, err := rc.Get(ctx, namespaceFor(r.info, ns), name)
				if err != nil {
					if client.IsNotFound(err) && o.ignoreNotFound {
						continue
					}
					if client.IsNotFound(err) {
						fmt.Fprintln(streams.ErrOut, FormatError(withObject(err, r.info, name)))
						failed = true
						continue
					}
					return withObject(err, r.info, name)
				}
				res.objs = append(res.objs, obj)
				// A watch of one named object resumes after the version printed.
				res.rv = obj.GetMetadata().GetResourceVersion()
			}
		}
		if err := sortObjects(res.objs, o.sortBy); err != nil {
			return err
		}
		results = append(results, res)
	}

	popts := printers.Options{
		Wide:          format.Kind == "wide",
		ShowLabels:    o.showLabels,
		WithNamespace: o.allNamespaces,
		WithKind:      len(reqs) > 1,
		NoHeaders:     o.noHeaders,
		Now:           f.now(),
	}
	tables := map[*kinds.Info]*printers.TablePrinter{}
	docs := &docStream{out: streams.Out, format: format}
	total := 0
	for _, r := range results {
		total += len(r.objs)
	}
	if format.IsTable() {
		first := true
		for _, r := range results {
			if len(r.objs) == 0 {
				continue
			}
			if !first {
				fmt.Fprintln(streams.Out)
			}
			first = false
			tp := printers.NewTablePrinter(streams.Out, r.info, popts)
			tables[r.info] = tp
			if err := tp.Print(r.objs...); err != nil {
				return err
			}
		}
	} else if !o.watchOnly && (total > 0 || !named) {
		var all []kinds.Object
		for _, r := range results {
			all = append(all, r.objs...)
		}
		single := named && len(reqs) == 1 && len(reqs[0].names) == 1
		if o.watch {
			// A watch prints objects one by one, as its later changes are.
			for _, obj := range all {
				if err := docs.print(obj); err != nil {
					return err
				}
			}
		} else if err := printers.PrintObjects(streams.Out, format, all, single); err != nil {
			return err
		}
	}
	if total == 0 && !named && !o.watch && !o.watchOnly && format.IsTable() {
		fmt.Fprintln(streams.ErrOut, noResourcesMessage(reqs, ns, o.allNamespaces))
	}
	if failed && !(o.watch || o.watchOnly) {
		return &ExitError{Code: 1}
	}
	if !(o.watch || o.watchOnly) {
		return nil
	}
	if len(results) != 1 {
		return errors.New("watch is only supported on individual resources and resource collections, but multiple resources were requested")
	}
	r := reqs[0]
	if len(r.names) > 1 {
		return errors.New("watch is only supported on individual resources and resource collections, but multiple resources were requested")
	}
	tp := tables[r.info]
	if tp == nil {
		tp = printers.NewTablePrinter(streams.Out, r.info, popts)
	}
	field := o.fieldSelector
	if len(r.names) == 1 {
		field = joinSelectors(field, "metadata.name="+r.names[0])
	}
	return watchAndPrint(ctx, f, client.ForKind(c, r.info), namespaceFor(r.info, ns),
		client.ListOptions{LabelSelector: o.labelSelector, FieldSelector: field, ResourceVersion: results[0].rv}, docs, tp)
}

func joinSelectors(a, b string) string {
	if a == "" {
		return b
	}
	return a + "," + b
}

func noResourcesMessage(reqs []resourceRequest, ns string, all bool) string {
	for _, r := range reqs {
		if r.info.Namespaced && !all {
			return fmt.Sprintf("No resources found in %s namespace.", ns)
		}
	}
	return "No resources found"
}

// watchAndPrint prints every change as a row (or a document) until ctx
// ends. A watch that expires is re-listed and resumed without a gap.
func watchAndPrint(ctx context.Context, f *Factory, rc *client.ResourceClient[kinds.Object], ns string,
	opts client.ListOptions, docs *docStream, tp *printers.TablePrinter) error {
	for {
		w, err := rc.Watch(ctx, ns, opts)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for {
			ev, err := w.Next()
			if err != nil {
				if ctx.Err() != nil {
					return nil // interrupted: the watch ends quietly, as kubectl's does
				}
				if client.IsExpired(err) {
					_, rv, lerr := rc.List(ctx, ns, client.ListOptions{LabelSelector: opts.LabelSelector, FieldSelector: opts.FieldSelector})
					if lerr != nil {
						return lerr
					}
					opts.ResourceVersion = rv
					break
				}
				if client.IsStreamEnd(err) || isResourceExhausted(err) {
					break // re-watch from the last version seen
				}
				return err
			}
			if ev.ResourceVersion != "" {
				opts.ResourceVersion = ev.ResourceVersion
			}
			if ev.Type == client.Bookmark || ev.Object == nil {
				continue
			}
			if docs.format.IsTable() {
				tp.SetNow(f.now())
				if err := tp.Print(ev.Object); err != nil {
					return err
				}
				continue
			}
			if err := docs.print(ev.Object); err != nil {
				return err
			}
		}
	}
}

// docStream prints objects one at a time in a document format, as a watch
// does: YAML documents are separated by "---" like kubectl's, and
// custom-columns print their header once.
type docStream struct {
	out    io.Writer
	format printers.Format
	n      int
}

func (d *docStream) print(obj kinds.Object) error {
	defer func() { d.n++ }()
	switch {
	case d.format.Kind == "yaml" && d.n > 0:
		if _, err := io.WriteString(d.out, "---\n"); err != nil {
			return err
		}
	case d.format.Kind == "custom-columns":
		return printers.PrintCustomColumns(d.out, d.format.Template, []kinds.Object{obj}, d.n == 0)
	}
	return printers.PrintObjects(d.out, d.format, []kinds.Object{obj}, true)
}

// sortObjects orders objects by namespace and name (the API's order), or by
// a JSONPath field with --sort-by.
func sortObjects(objs []kinds.Object, sortBy string) error {
	if sortBy == "" {
		sort.SliceStable(objs, func(i, j int) bool {
			a, b := objs[i].GetMetadata(), objs[j].GetMetadata()
			if a.GetNamespace() != b.GetNamespace() {
				return a.GetNamespace() < b.GetNamespace()
			}
			return a.GetName() < b.GetName()
		})
		return nil
	}
	keys := make([]string, len(objs))
	for i, o := range objs {
		u, err := printers.ToUnstructured(o)
		if err != nil {
			return err
		}
		var b strings.Builder
		if err := printers.PrintJSONPath(&b, sortBy, u); err != nil {
			return fmt.Errorf("couldn't find any field with path %q in the list of objects: %w", sortBy, err)
		}
		keys[i] = b.String()
	}
	idx := make([]int, len(objs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return lessValue(keys[idx[a]], keys[idx[b]]) })
	sorted := make([]kinds.Object, len(objs))
	for i, k := range idx {
		sorted[i] = objs[k]
	}
	copy(objs, sorted)
	return nil
}

// lessValue compares numbers numerically and everything else as text
// (RFC 3339 timestamps sort correctly as text).
func lessValue(a, b string) bool {
	x, errA := strconv.ParseFloat(a, 64)
	y, errB := strconv.ParseFloat(b, 64)
	if errA == nil && errB == nil {
		return x < y
	}
	return a < b
}
