package cmd

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/skiff-dev/skiff/ctl/manifest"
	"github.com/skiff-dev/skiff/ctl/printers"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

type fileOptions struct {
	filenames []string
	recursive bool
}

func (o *fileOptions) addFlags(c *cobra.Command, verb string) {
	c.Flags().StringSliceVarP(&o.filenames, "filename", "f", nil, "Filename, directory, or URL to files "+verb+" the resource ('-' reads stdin)")
	c.Flags().BoolVarP(&o.recursive, "recursive", "R", false, "Process the directory used in -f, --filename recursively")
}

func newCreateCmd(streams IOStreams, f *Factory) *cobra.Command {
	o := &fileOptions{}
	var output string
	c := &cobra.Command{
		Use:   "create -f FILENAME",
		Short: "Create a resource from a file or from stdin",
		Long: `Create a resource from a file or from stdin.

JSON and YAML formats are accepted; a file may hold several documents.
Every document is checked before anything is created.`,
		Example: `  # Create the objects in web.yaml
  ctl create -f web.yaml

  # Create the objects of every manifest in a directory
  ctl create -f ./manifests/

  # Create a pod from JSON passed into stdin
  cat pod.json | ctl create -f -`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(o.filenames) == 0 {
				return usageErrorf(c, "must specify one of -f and -k")
			}
			docs, err := manifest.Read(o.filenames, streams.In, o.recursive)
			if err != nil {
				return err
			}
			return createDocuments(c.Context(), streams, f, docs, output)
		},
	}
	o.addFlags(c, "to use to create")
	c.Flags().StringVarP(&output, "output", "o", "", "Output format. One of: (json, yaml, name)")
	c.AddCommand(newCreateConfigMapCmd(streams, f), newCreateDeploymentCmd(streams, f), newCreateNamespaceCmd(streams, f),
		newCreateSecretCmd(streams, f), newCreateServiceCmd(streams, f))
	return c
}

// documentNamespace places a manifest's object: its own namespace, which
// must agree with an explicit -n, else the default one.
func documentNamespace(f *Factory, d *manifest.Document) error {
	meta := kinds.Meta(d.Object)
	if !d.Info.Namespaced {
		meta.Namespace = ""
		return nil
	}
	ns, explicit := f.DefaultNamespace()
	switch {
	case meta.GetNamespace() == "":
		meta.Namespace = ns
	case explicit && meta.GetNamespace() != ns:
		//lint:ignore ST1005 kubectl's exact wording, shown to users as is
		return fmt.Errorf("the namespace from the provided object %q does not match the namespace %q. You must pass '--namespace=%s' to perform this operation.", meta.GetNamespace(), ns, meta.GetNamespace())
	}
	return nil
}

func createDocuments(ctx context.Context, streams IOStreams, f *Factory, docs []manifest.Document, output string) error {
	for i := range docs {
		if err := documentNamespace(f, &docs[i]); err != nil {
			return err
		}
	}
	format, err := printers.ParseFormat(output)
	if err != nil {
		return err
	}
	c, err := f.Client(ctx)
	if err != nil {
		return err
	}
	// Every document passes the server's admission (dry run) before any
	// is created, so a bad one changes nothing.
	for _, d := range docs {
		if err := (applyPlan{action: applyCreate, obj: d.Object}).dryRun(ctx, c); err != nil {
			return createError(d, err)
		}
	}
	failed := false
	for _, d := range docs {
		created, err := client.ForKind(c, d.Info).Create(ctx, d.Object)
		if err != nil {
			oe := createError(d, err)
			if _, ok := serverErrorMessage(oe); !ok {
				return oe
			}
			fmt.Fprintln(streams.ErrOut, FormatError(oe))
			failed = true
			continue
		}
		if err := printResult(streams.Out, format, created, "created"); err != nil {
			return err
		}
	}
	if failed {
		return &ExitError{Code: 1}
	}
	return nil
}

// createError names the document a failure belongs to.
func createError(d manifest.Document, err error) error {
	if _, ok := serverErrorMessage(err); ok {
		return &objectError{err: err, info: d.Info, name: d.Object.GetMetadata().GetName(),
			action: fmt.Sprintf("error when creating %q: ", d.Source)}
	}
	return fmt.Errorf("create %s: %w", d.Where(), err)
}

// printResult prints "deployment.apps/web created", or the object in the
// -o format.
func printResult(out io.Writer, format printers.Format, obj kinds.Object, verb string) error {
	info, err := kinds.For(obj)
	if err != nil {
		return err
	}
	switch format.Kind {
	case "":
		_, err = fmt.Fprintf(out, "%s/%s %s\n", printers.QualifiedKind(info), obj.GetMetadata().GetName(), verb)
		return err
	case "wide":
		return fmt.Errorf("output format %q is not supported here", format.Kind)
	}
	return printers.PrintObjects(out, format, []kinds.Object{obj}, true)
}

// generatedOptions are the flags of the create subcommands that build an
// object from flags: --dry-run=client with -o shows it without sending.
type generatedOptions struct {
	dryRun string
	output string
}

func (o *generatedOptions) addFlags(c *cobra.Command) {
	c.Flags().StringVar(&o.dryRun, "dry-run", "none", `Must be "none", "server", or "client". If client strategy, only print the object that would be sent, without sending it. If server strategy, submit server-side request without persisting the resource.`)
	c.Flags().Lookup("dry-run").NoOptDefVal = "client"
	c.Flags().StringVarP(&o.output, "output", "o", "", "Output format. One of: (json, yaml, name)")
}

func (o *generatedOptions) send(ctx context.Context, streams IOStreams, f *Factory, obj kinds.Object, verb string) error {
	format, err := printers.ParseFormat(o.output)
	if err != nil {
		return err
	}
	info, err := kinds.For(obj)
	if err != nil {
		return err
	}
	switch o.dryRun {
	case "none", "", "server":
	case "client":
		if format.Kind == "" {
			return printResult(streams.Out, format, obj, verb+" (dry run)")
		}
		return printResult(streams.Out, format, obj, "")
	default:
		return fmt.Errorf(`invalid dry-run value (%s). Must be "none", "server", or "client"`, o.dryRun)
	}
	c, err := f.Client(ctx)
	if err != nil {
		return err
	}
	if o.dryRun == "server" {
		admitted, err := createDryRun(ctx, c, info, obj)
		if err != nil {
			return withObject(err, info, obj.GetMetadata().GetName())
		}
		return printResult(streams.Out, format, admitted, verb+" (server dry run)")
	}
	created, err := client.ForKind(c, info).Create(ctx, obj)
	if err != nil {
		return withObject(err, info, obj.GetMetadata().GetName())
	}
	return printResult(streams.Out, format, created, verb)
}

// createDryRun has the server default and validate obj as a create would,
// without storing it, and returns the object it would have stored.
func createDryRun(ctx context.Context, cl *client.Client, info *kinds.Info, obj kinds.Object) (kinds.Object, error) {
	a, err := anypb.New(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", info.Kind, err)
	}
	out, err := cl.API.Create(ctx, &api.CreateRequest{Object: a, DryRun: true})
	if err != nil {
		return nil, err
	}
	admitted := info.New()
	if err := out.UnmarshalTo(admitted); err != nil {
		return nil, fmt.Errorf("decode %s: %w", info.Kind, err)
	}
	return admitted, nil
}

func newCreateDeploymentCmd(streams IOStreams, f *Factory) *cobra.Command {
	var images []string
	var replicas int32
	var port int32
	o := &generatedOptions{}
	c := &cobra.Command{
		Use:     "deployment NAME --image=image [--replicas=N] [--port=P] [-- [COMMAND] [args...]]",
		Aliases: []string{"deploy"},
		Short:   "Create a deployment with the specified name",
		Example: `  # Create a deployment named k8s-nginx that runs the nginx image with 3 replicas
  ctl create deployment k8s-nginx --image=nginx -r 3

  # Create a deployment named web that runs busybox with a command
  ctl create deployment web --image=busybox -- httpd -f -p 8080

  # Create a deployment named my-dep that runs the nginx image and expose port 80
  ctl create deployment my-dep --image=nginx --port=80`,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 0 || c.ArgsLenAtDash() == 0 {
				return usageErrorf(c, "NAME is required")
			}
			if len(images) == 0 {
				return usageErrorf(c, "required flag(s) \"image\" not set")
			}
			var command []string
			if d := c.ArgsLenAtDash(); d > 0 {
				command = args[d:]
				args = args[:d]
			}
			if len(args) != 1 {
				return usageErrorf(c, "exactly one NAME is required, got %d", len(args))
			}
			ns, _ := f.DefaultNamespace()
			d := newDeployment(args[0], ns, images, replicas, port, command)
			return o.send(c.Context(), streams, f, d, "created")
		},
	}
	c.Flags().StringSliceVar(&images, "image", nil, "Image names to run. A deployment can have multiple images set for multi-container pod.")
	c.Flags().Int32VarP(&replicas, "replicas", "r", 1, "Number of replicas to create. Default is 1.")
	c.Flags().Int32Var(&port, "port", -1, "The containerPort that this deployment exposes.")
	o.addFlags(c)
	return c
}

// newDeployment builds the Deployment kubectl's create deployment builds:
// labels and selector app=NAME, containers named after their images.
func newDeployment(name, ns string, images []string, replicas, port int32, command []string) *api.Deployment {
	labels := map[string]string{"app": name}
	var containers []*api.Container
	for _, img := range images {
		containers = append(containers, &api.Container{Name: containerName(img), Image: img, Command: command})
	}
	if port >= 0 && len(containers) > 0 {
		containers[0].Ports = []*api.ContainerPort{{ContainerPort: port}}
	}
	d := &api.Deployment{
		Metadata: &api.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: &api.DeploymentSpec{
			Replicas: &replicas,
			Selector: &api.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: &api.PodTemplateSpec{
				Metadata: &api.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:     &api.PodSpec{Containers: containers},
			},
		},
	}
	kinds.SetTypeMeta(d)
	return d
}

// containerName is kubectl's: the image's base name without tag or
// digest; names with "." or "_" are made DNS-safe and given a random
// suffix.
func containerName(image string) string {
	name := image[strings.LastIndex(image, "/")+1:]
	name, _, _ = strings.Cut(name, "@")
	name, _, _ = strings.Cut(name, ":")
	if strings.ContainsAny(name, "_.") {
		name = strings.NewReplacer("_", "-", ".", "-").Replace(name)
		name = name + "-" + randomSuffix(5)
	}
	return name
}

func randomSuffix(n int) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return string(b)
}

func newCreateNamespaceCmd(streams IOStreams, f *Factory) *cobra.Command {
	o := &generatedOptions{}
	c := &cobra.Command{
		Use:     "namespace NAME",
		Aliases: []string{"ns"},
		Short:   "Create a namespace with the specified name",
		Example: `  # Create a new namespace named my-namespace
  ctl create namespace my-namespace`,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf(c, "exactly one NAME is required, got %d", len(args))
			}
			n := &api.Namespace{Metadata: &api.ObjectMeta{Name: args[0]}}
			kinds.SetTypeMeta(n)
			return o.send(c.Context(), streams, f, n, "created")
		},
	}
	o.addFlags(c)
	return c
}
