package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/skiff-dev/skiff/ctl/manifest"
	"github.com/skiff-dev/skiff/ctl/printers"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
)

// editHeader opens every file edit hands to the editor, as kubectl's does.
const editHeader = `# Please edit the object below. Lines beginning with a '#' will be ignored,
# and an empty file will abort the edit. If an error occurs while saving this file will be
# reopened with the relevant failures.
#
`

func newEditCmd(streams IOStreams, f *Factory) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "edit (RESOURCE/NAME | RESOURCE NAME)",
		Short: "Edit a resource on the server",
		Long: `Edit a resource from the default editor.

Opens the object as YAML (or JSON with -o json) in $KUBE_EDITOR or $EDITOR
(default vi). When you save and quit, the object is updated. If the update
fails, the file is reopened with the error at the top; quit without changes to
give up.`,
		Example: `  # Edit the service named 'registry'
  ctl edit svc/registry

  # Use an alternative editor
  KUBE_EDITOR="nano" ctl edit deployment web

  # Edit the deployment 'web' in JSON
  ctl edit deployment/web -o json`,
		ValidArgsFunction: completeResources(f),
		RunE: func(c *cobra.Command, args []string) error {
			target, err := singleTarget(args)
			if err != nil {
				return usageErrorf(c, "%v", err)
			}
			if output != "" && output != "yaml" && output != "json" {
				return usageErrorf(c, "the edit format must be yaml or json")
			}
			return runEdit(c.Context(), streams, f, target, output == "json")
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "yaml", "Output format. One of: (yaml, json).")
	return c
}

func (f *Factory) getenv(k string) string {
	if f.Getenv != nil {
		return f.Getenv(k)
	}
	return os.Getenv(k)
}

func (f *Factory) editor() string {
	for _, k := range []string{"KUBE_EDITOR", "EDITOR"} {
		if e := f.getenv(k); e != "" {
			return e
		}
	}
	return "vi"
}

func runEdit(ctx context.Context, streams IOStreams, f *Factory, target resourceRequest, asJSON bool) error {
	cl, ns, err := f.clientInNamespace(ctx)
	if err != nil {
		return err
	}
	name := target.names[0]
	rc := client.ForKind(cl, target.info)
	obj, err := rc.Get(ctx, namespaceFor(target.info, ns), name)
	if err != nil {
		return withObject(err, target.info, name)
	}
	doc, err := printers.ToUnstructured(obj)
	if err != nil {
		return err
	}
	original, err := encodeForEdit(doc, asJSON)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "ctl-edit-")
	if err != nil {
		return fmt.Errorf("edit: %w", err)
	}
	defer os.RemoveAll(dir)
	ext := ".yaml"
	if asJSON {
		ext = ".json"
	}
	path := filepath.Join(dir, strings.ToLower(target.info.Kind)+"-"+name+ext)
	content := []byte(editHeader + string(original))
	var lastEdit []byte
	for {
		if err := os.WriteFile(path, content, 0o600); err != nil {
			return fmt.Errorf("edit: %w", err)
		}
		if err := runEditor(ctx, streams, f.editor(), path); err != nil {
			return err
		}
		edited, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("edit: %w", err)
		}
		body := stripCommentLines(edited)
		if len(bytes.TrimSpace(body)) == 0 {
			//lint:ignore ST1005 kubectl's exact wording, shown to users as is
			return errors.New("Edit cancelled, saved file was empty.")
		}
		if bytes.Equal(body, stripCommentLines(original)) {
			fmt.Fprintln(streams.ErrOut, "Edit cancelled, no changes made.")
			return nil
		}
		if lastEdit != nil && bytes.Equal(body, lastEdit) {
			// Reopened after an error and saved unchanged: give up, keeping
			// the file's contents for the user.
			kept, kerr := os.CreateTemp("", "ctl-edit-*"+ext)
			if kerr == nil {
				_, _ = kept.Write(edited)
				kept.Close()
				//lint:ignore ST1005 kubectl's exact wording, shown to users as is
				return fmt.Errorf("Edit cancelled, no valid changes were saved.\nA copy of your changes has been stored to %q", kept.Name())
			}
			//lint:ignore ST1005 kubectl's exact wording, shown to users as is
			return errors.New("Edit cancelled, no valid changes were saved.")
		}
		lastEdit = body
		updated, err := applyEdit(ctx, rc, target.info, obj, body)
		if err == nil {
			if updated == nil {
				fmt.Fprintln(streams.ErrOut, "Edit cancelled, no changes made.")
				return nil
			}
			fmt.Fprintf(streams.Out, "%s/%s edited\n", printers.QualifiedKind(target.info), name)
			return nil
		}
		msg := FormatError(err)
		var b strings.Builder
		b.WriteString(editHeader)
		b.WriteString("# " + target.info.Resource + " \"" + name + "\" was not valid:\n")
		for _, line := range strings.Split(msg, "\n") {
			b.WriteString("# * " + line + "\n")
		}
		b.WriteString("#\n")
		content = append([]byte(b.String()), body...)
	}
}

func encodeForEdit(doc map[string]any, asJSON bool) ([]byte, error) {
	if asJSON {
		return manifest.MarshalJSON(doc)
	}
	return manifest.MarshalYAML(doc)
}

// applyEdit decodes the edited text and updates the object; a nil object
// and no error means nothing changed.
func applyEdit(ctx context.Context, rc *client.ResourceClient[kinds.Object], info *kinds.Info, live kinds.Object, body []byte) (kinds.Object, error) {
	js, err := yaml.YAMLToJSON(body)
	if err != nil {
		return nil, fmt.Errorf("the edited file is not valid YAML or JSON: %w", err)
	}
	docs, err := manifest.Decode("edited file", js)
	if err != nil {
		return nil, err
	}
	if len(docs) != 1 {
		return nil, fmt.Errorf("the edited file must hold exactly one object, found %d", len(docs))
	}
	d := docs[0]
	m := d.Object.GetMetadata()
	if d.Info != info || m.GetName() != live.GetMetadata().GetName() || m.GetNamespace() != live.GetMetadata().GetNamespace() {
		return nil, errors.New("the kind, name and namespace of the object cannot be changed")
	}
	updated, err := rc.Update(ctx, d.Object)
	if err != nil {
		return nil, withObject(err, info, m.GetName())
	}
	return updated, nil
}

func stripCommentLines(b []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			continue
		}
		out.Write(line)
	}
	return out.Bytes()
}

// runEditor runs the editor on path with the terminal attached; the editor
// string may carry arguments ("code --wait").
func runEditor(ctx context.Context, streams IOStreams, editor, path string) error {
	cmd := exec.CommandContext(ctx, "sh", "-c", editor+` "$1"`, "editor", path)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = streams.In, streams.Out, streams.ErrOut
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("there was a problem with the editor %q: %w", editor, err)
	}
	return nil
}
