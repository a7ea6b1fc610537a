package cmd

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/ctl/manifest"
	"github.com/skiff-dev/skiff/ctl/printers"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
)

// applyRetries bounds how often apply re-reads an object that changed
// under it.
const applyRetries = 5

func newApplyCmd(streams IOStreams, f *Factory) *cobra.Command {
	o := &fileOptions{}
	var output string
	c := &cobra.Command{
		Use:   "apply (-f FILENAME | -R -f DIRECTORY)",
		Short: "Apply a configuration to a resource by file name or stdin",
		Long: `Apply a configuration to a resource by file name or stdin.

The resource is created if it doesn't exist yet. An existing one is changed to
match the file: fields the file sets replace the live ones, fields a previous
apply set but the file no longer does are removed, and fields the cluster set
(uid, clusterIP, status, defaults) are kept. JSON and YAML formats are accepted;
every document is checked before anything changes.`,
		Example: `  # Apply the configuration in web.yaml
  ctl apply -f ./web.yaml

  # Apply every manifest in a directory tree
  ctl apply -R -f ./manifests/

  # Apply the JSON passed into stdin
  cat pod.json | ctl apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(o.filenames) == 0 {
				return usageErrorf(c, "must specify one of -f and -k")
			}
			format, err := printers.ParseFormat(output)
			if err != nil {
				return err
			}
			docs, err := manifest.Read(o.filenames, streams.In, o.recursive)
			if err != nil {
				return err
			}
			for i := range docs {
				if err := documentNamespace(f, &docs[i]); err != nil {
					return err
				}
			}
			cl, err := f.Client(c.Context())
			if err != nil {
				return err
			}
			failed := false
			for _, d := range docs {
				obj, verb, err := applyDocument(c.Context(), cl, d)
				if err != nil {
					oe := &objectError{err: err, info: d.Info, name: d.Object.GetMetadata().GetName(),
						action: fmt.Sprintf("error when applying %q: ", d.Source)}
					if _, ok := serverErrorMessage(oe); !ok {
						return fmt.Errorf("apply %s: %w", d.Where(), err)
					}
					fmt.Fprintln(streams.ErrOut, FormatError(oe))
					failed = true
					continue
				}
				if err := printResult(streams.Out, format, obj, verb); err != nil {
					return err
				}
			}
			if failed {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
	o.addFlags(c, "that contains the configuration to apply")
	c.Flags().StringVarP(&output, "output", "o", "", "Output format. One of: (json, yaml, name)")
	return c
}

// applyDocument creates the document's object or brings the live one in
// line with it, retrying when the object changes in between. It returns the
// object as stored and "created", "configured" or "unchanged".
func applyDocument(ctx context.Context, cl *client.Client, d manifest.Document) (kinds.Object, string, error) {
	rc := client.ForKind(cl, d.Info)
	meta := d.Object.GetMetadata()
	desired := manifest.ApplyInput(d.Raw, meta.GetNamespace())
	lastApplied, err := json.Marshal(desired)
	if err != nil {
		return nil, "", fmt.Errorf("encode last-applied configuration: %w", err)
	}
	var lastErr error
	for range applyRetries {
		live, err := rc.Get(ctx, meta.GetNamespace(), meta.GetName())
		if client.IsNotFound(err) {
			obj := d.Object
			m := kinds.Meta(obj)
			if m.Annotations == nil {
				m.Annotations = map[string]string{}
			}
			m.Annotations[manifest.LastAppliedAnnotation] = string(lastApplied)
			created, err := rc.Create(ctx, obj)
			if client.IsAlreadyExists(err) {
				lastErr = err
				continue // someone else created it: apply to theirs
			}
			if err != nil {
				return nil, "", err
			}
			return created, "created", nil
		}
		if err != nil {
			return nil, "", err
		}
		liveTree, err := printers.ToUnstructured(live)
		if err != nil {
			return nil, "", err
		}
		var previous map[string]any
		if s := live.GetMetadata().GetAnnotations()[manifest.LastAppliedAnnotation]; s != "" {
			if err := json.Unmarshal([]byte(s), &previous); err != nil {
				previous = nil // a damaged annotation only loses removals
			}
		}
		merged := manifest.ThreeWayMerge(liveTree, desired, previous)
		setAnnotation(merged, manifest.LastAppliedAnnotation, string(lastApplied))
		next := d.Info.New()
		if err := manifest.FromUnstructured(merged, next); err != nil {
			return nil, "", fmt.Errorf("merged object: %w", err)
		}
		// Compare canonical forms: "paused: false" in a file equals an
		// absent field on the server.
		nextTree, err := printers.ToUnstructured(next)
		if err != nil {
			return nil, "", err
		}
		if manifest.Equal(nextTree, liveTree) {
			return live, "unchanged", nil
		}
		updated, err := rc.Update(ctx, next)
		if client.IsConflict(err) {
			lastErr = err
			continue
		}
		if err != nil {
			return nil, "", err
		}
		return updated, "configured", nil
	}
	return nil, "", lastErr
}

func setAnnotation(tree map[string]any, key, value string) {
	meta, _ := tree["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		tree["metadata"] = meta
	}
	ann, _ := meta["annotations"].(map[string]any)
	if ann == nil {
		ann = map[string]any{}
		meta["annotations"] = ann
	}
	ann[key] = value
}
