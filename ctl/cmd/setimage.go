package cmd

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/ctl/printers"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

func newSetCmd(streams IOStreams, f *Factory) *cobra.Command {
	c := &cobra.Command{
		Use:   "set SUBCOMMAND",
		Short: "Set specific features on objects",
		Example: `  # Set the nginx container's image of deployment web
  ctl set image deployment/web nginx=nginx:1.26`,
		RunE: func(c *cobra.Command, args []string) error {
			return subcommandRequired(c, args)
		},
	}
	c.AddCommand(newSetImageCmd(streams, f))
	return c
}

// podTemplateOf returns the pod spec a workload runs (a pod's own spec).
func podTemplateOf(obj kinds.Object) (*api.PodSpec, error) {
	switch o := obj.(type) {
	case *api.Deployment:
		return o.GetSpec().GetTemplate().GetSpec(), nil
	case *api.ReplicaSet:
		return o.GetSpec().GetTemplate().GetSpec(), nil
	case *api.Pod:
		return o.GetSpec(), nil
	}
	info, _ := kinds.For(obj)
	return nil, fmt.Errorf("%s have no pod template", info.Resource)
}

func newSetImageCmd(streams IOStreams, f *Factory) *cobra.Command {
	c := &cobra.Command{
		Use:   "image (TYPE NAME | TYPE/NAME) CONTAINER_NAME_1=CONTAINER_IMAGE_1 ... CONTAINER_NAME_N=CONTAINER_IMAGE_N",
		Short: "Update the image of a pod template",
		Long: `Update the container images of a deployment, replica set or pod.

"*=IMAGE" sets every container's image. Changing a deployment's image starts a
rollout; follow it with 'ctl rollout status'.`,
		Example: `  # Set a deployment's nginx container image to 'nginx:1.26'
  ctl set image deployment/web nginx=nginx:1.26

  # Update the image of all containers of deployment web to 'nginx:1.26'
  ctl set image deployment web *=nginx:1.26`,
		RunE: func(c *cobra.Command, args []string) error {
			var targets, images []string
			for _, a := range args {
				if strings.Contains(a, "=") {
					images = append(images, a)
				} else {
					targets = append(targets, a)
				}
			}
			if len(images) == 0 {
				return usageErrorf(c, "at least one image update is required")
			}
			target, err := singleTarget(targets)
			if err != nil {
				return usageErrorf(c, "%v", err)
			}
			updates := map[string]string{}
			for _, kv := range images {
				k, v, _ := strings.Cut(kv, "=")
				if k == "" || v == "" {
					return usageErrorf(c, "invalid image update %q: want CONTAINER=IMAGE", kv)
				}
				updates[k] = v
			}
			ctx := c.Context()
			cl, ns, err := f.clientInNamespace(ctx)
			if err != nil {
				return err
			}
			name := target.names[0]
			_, changed, err := updateObject(ctx, client.ForKind(cl, target.info), namespaceFor(target.info, ns), name, func(obj kinds.Object) error {
				spec, err := podTemplateOf(obj)
				if err != nil {
					return err
				}
				for cname, img := range updates {
					found := false
					for _, ctr := range append(append([]*api.Container{}, spec.GetContainers()...), spec.GetInitContainers()...) {
						if cname == "*" || ctr.GetName() == cname {
							ctr.Image = img
							found = true
						}
					}
					if !found {
						return fmt.Errorf("unable to find container named %q", cname)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			if changed {
				fmt.Fprintf(streams.Out, "%s/%s image updated\n", printers.QualifiedKind(target.info), name)
			}
			return nil
		},
	}
	return c
}
