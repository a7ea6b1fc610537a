package cmd

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/skiff-dev/skiff/ctl/manifest"
	"github.com/skiff-dev/skiff/ctl/printers"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
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
				if docs[i].Object.GetMetadata().GetName() == "" {
					return fmt.Errorf("error when retrieving current configuration of %s: resource name may not be empty", docs[i].Where())
				}
			}
			cl, err := f.Client(c.Context())
			if err != nil {
				return err
			}
			// Plan and dry-run every document first: a document the server
			// would refuse stops the apply before anything changed.
			plans := make([]applyPlan, len(docs))
			for i, d := range docs {
				plan, err := planApply(c.Context(), cl, d)
				if err == nil {
					err = plan.dryRun(c.Context(), cl)
				}
				if err != nil {
					return applyError(d, err)
				}
				plans[i] = plan
			}
			failed := false
			for i, d := range docs {
				obj, verb, err := applyDocument(c.Context(), cl, d, plans[i])
				if err != nil {
					oe := applyError(d, err)
					if _, ok := serverErrorMessage(oe); !ok {
						return oe
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

// applyAction is what apply will do to one object.
type applyAction int

const (
	applyCreate applyAction = iota
	applyUpdate
	applyUnchanged
)

// applyPlan is the object apply will send for one document, computed from
// the live object it read.
type applyPlan struct {
	action applyAction
	obj    kinds.Object // what to create or update; the live object if unchanged
}

// planApply reads the live object and works out what applying d means:
// create it, update it to the three-way merge, or leave it.
func planApply(ctx context.Context, cl *client.Client, d manifest.Document) (applyPlan, error) {
	rc := client.ForKind(cl, d.Info)
	meta := d.Object.GetMetadata()
	desired := manifest.ApplyInput(d.Raw, meta.GetNamespace())
	lastApplied, err := json.Marshal(desired)
	if err != nil {
		return applyPlan{}, fmt.Errorf("encode last-applied configuration: %w", err)
	}
	live, err := rc.Get(ctx, meta.GetNamespace(), meta.GetName())
	if client.IsNotFound(err) {
		obj := proto.Clone(d.Object).(kinds.Object)
		m := kinds.Meta(obj)
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		m.Annotations[manifest.LastAppliedAnnotation] = string(lastApplied)
		return applyPlan{action: applyCreate, obj: obj}, nil
	}
	if err != nil {
		return applyPlan{}, err
	}
	liveTree, err := printers.ToUnstructured(live)
	if err != nil {
		return applyPlan{}, err
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
		return applyPlan{}, fmt.Errorf("merged object: %w", err)
	}
	// Compare canonical forms: "paused: false" in a file equals an absent
	// field on the server.
	nextTree, err := printers.ToUnstructured(next)
	if err != nil {
		return applyPlan{}, err
	}
	if manifest.Equal(nextTree, liveTree) {
		return applyPlan{action: applyUnchanged, obj: live}, nil
	}
	return applyPlan{action: applyUpdate, obj: next}, nil
}

// dryRun asks the server to admit a create or update without storing it,
// so every document is known to be valid before any is sent.
func (p applyPlan) dryRun(ctx context.Context, cl *client.Client) error {
	if p.action == applyUnchanged {
		return nil
	}
	a, err := anypb.New(p.obj)
	if err != nil {
		return fmt.Errorf("encode %s: %w", p.obj.ProtoReflect().Descriptor().Name(), err)
	}
	if p.action == applyCreate {
		_, err = cl.API.Create(ctx, &api.CreateRequest{Object: a, DryRun: true})
	} else {
		_, err = cl.API.Update(ctx, &api.UpdateRequest{Object: a, DryRun: true})
	}
	if client.IsConflict(err) || client.IsAlreadyExists(err) || client.IsNotFound(err) {
		return nil // a race with another writer: the real apply re-plans
	}
	return err
}

// applyDocument carries out a plan, re-planning when the object changes in
// between. It returns the object as stored and "created", "configured" or
// "unchanged".
func applyDocument(ctx context.Context, cl *client.Client, d manifest.Document, plan applyPlan) (kinds.Object, string, error) {
	rc := client.ForKind(cl, d.Info)
	var lastErr error
	for range applyRetries {
		switch plan.action {
		case applyUnchanged:
			return plan.obj, "unchanged", nil
		case applyCreate:
			created, err := rc.Create(ctx, plan.obj)
			if err == nil {
				return created, "created", nil
			}
			if !client.IsAlreadyExists(err) {
				return nil, "", err
			}
			lastErr = err // someone else created it: apply to theirs
		case applyUpdate:
			updated, err := rc.Update(ctx, plan.obj)
			if err == nil {
				return updated, "configured", nil
			}
			if !client.IsConflict(err) {
				return nil, "", err
			}
			lastErr = err
		}
		var err error
		if plan, err = planApply(ctx, cl, d); err != nil {
			return nil, "", err
		}
	}
	return nil, "", lastErr
}

// applyError names the document a failure belongs to.
func applyError(d manifest.Document, err error) error {
	if _, ok := serverErrorMessage(err); ok {
		return &objectError{err: err, info: d.Info, name: d.Object.GetMetadata().GetName(),
			action: fmt.Sprintf("error when applying %q: ", d.Source)}
	}
	return fmt.Errorf("apply %s: %w", d.Where(), err)
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
