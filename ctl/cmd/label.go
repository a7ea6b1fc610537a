package cmd

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/skiff-dev/skiff/ctl/printers"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
)

// metadataMap is what label and annotate change.
type metadataMap struct {
	verb, past, noun string
	get              func(kinds.Object) map[string]string
	set              func(kinds.Object, map[string]string)
	validate         bool
}

func labelTarget() metadataMap {
	return metadataMap{verb: "label", past: "labeled", noun: "labels", validate: true,
		get: func(o kinds.Object) map[string]string { return o.GetMetadata().GetLabels() },
		set: func(o kinds.Object, m map[string]string) { kinds.Meta(o).Labels = m }}
}

func annotationTarget() metadataMap {
	return metadataMap{verb: "annotate", past: "annotated", noun: "annotations",
		get: func(o kinds.Object) map[string]string { return o.GetMetadata().GetAnnotations() },
		set: func(o kinds.Object, m map[string]string) { kinds.Meta(o).Annotations = m }}
}

// parseMetadataChanges reads "k=v" and "k-" arguments.
func parseMetadataChanges(args []string, validate bool) (set map[string]string, remove []string, err error) {
	set = map[string]string{}
	for _, a := range args {
		if k, ok := strings.CutSuffix(a, "-"); ok && !strings.Contains(a, "=") {
			remove = append(remove, k)
			continue
		}
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, nil, fmt.Errorf("invalid argument %q: want KEY=VALUE or KEY-", a)
		}
		if validate {
			if errs := validation.IsQualifiedName(k); len(errs) > 0 {
				return nil, nil, fmt.Errorf("invalid label key %q: %s", k, strings.Join(errs, "; "))
			}
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				return nil, nil, fmt.Errorf("invalid label value: %q: %s", a, strings.Join(errs, "; "))
			}
		}
		set[k] = v
	}
	return set, remove, nil
}

func newLabelCmd(streams IOStreams, f *Factory, t metadataMap) *cobra.Command {
	var overwrite, all bool
	var selector string
	example := `  # Update pod 'foo' with the label 'unhealthy' and the value 'true'
  ctl label pods foo unhealthy=true

  # Update pod 'foo' with the label 'status' and the value 'unhealthy', overwriting any existing value
  ctl label --overwrite pods foo status=unhealthy

  # Update all pods in the namespace
  ctl label pods --all status=unhealthy

  # Remove the label named 'bar' from pod 'foo'
  ctl label pods foo bar-`
	if t.verb == "annotate" {
		example = `  # Update pod 'foo' with the annotation 'description' and the value 'my frontend'
  ctl annotate pods foo description='my frontend'

  # Overwrite an existing value
  ctl annotate --overwrite pods foo description='my frontend running nginx'

  # Annotate every pod labeled app=web
  ctl annotate pods -l app=web owner=team-a

  # Remove the annotation named 'description' from pod 'foo'
  ctl annotate pods foo description-`
	}
	c := &cobra.Command{
		Use:     t.verb + " [--overwrite] (TYPE NAME | TYPE/NAME | TYPE -l SELECTOR | TYPE --all) KEY_1=VAL_1 ... KEY_N=VAL_N",
		Short:   "Update the " + t.noun + " on a resource",
		Example: example,
		RunE: func(c *cobra.Command, args []string) error {
			var targets, changes []string
			for _, a := range args {
				if strings.Contains(a, "=") || (strings.HasSuffix(a, "-") && len(targets) > 0) {
					changes = append(changes, a)
				} else {
					targets = append(targets, a)
				}
			}
			if len(changes) == 0 {
				return usageErrorf(c, "at least one %s update is required", strings.TrimSuffix(t.noun, "s"))
			}
			set, remove, err := parseMetadataChanges(changes, t.validate)
			if err != nil {
				return err
			}
			reqs, err := parseResourceArgs(targets)
			if err != nil {
				return usageErrorf(c, "%v", err)
			}
			ctx := c.Context()
			cl, err := f.Client(ctx)
			if err != nil {
				return err
			}
			sel := objectSelection{labelSelector: selector, all: all}
			objs, err := sel.fromArgs(c, f, cl, reqs)
			if err != nil {
				return err
			}
			for _, o := range objs {
				_, changed, err := updateObject(ctx, client.ForKind(cl, o.info), o.namespace, o.name, func(obj kinds.Object) error {
					m := map[string]string{}
					for k, v := range t.get(obj) {
						m[k] = v
					}
					for k, v := range set {
						if old, ok := m[k]; ok && old != v && !overwrite {
							return fmt.Errorf("'%s' already has a value (%s), and --overwrite is false", k, old)
						}
						m[k] = v
					}
					for _, k := range remove {
						delete(m, k)
					}
					t.set(obj, m)
					return nil
				})
				if err != nil {
					return err
				}
				verb := t.past
				if !changed {
					verb = "not " + t.past
				}
				fmt.Fprintf(streams.Out, "%s/%s %s\n", printers.QualifiedKind(o.info), o.name, verb)
			}
			if len(objs) == 0 {
				return errors.New("no objects passed to " + t.verb)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&overwrite, "overwrite", false, "If true, allow "+t.noun+" to be overwritten, otherwise reject updates that overwrite existing "+t.noun+".")
	c.Flags().BoolVar(&all, "all", false, "Select all resources, in the namespace of the specified resource types")
	c.Flags().StringVarP(&selector, "selector", "l", "", "Selector (label query) to filter on")
	return c
}
