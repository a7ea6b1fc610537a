package cmd

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/ctl/printers"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

func newScaleCmd(streams IOStreams, f *Factory) *cobra.Command {
	var replicas, current int32
	c := &cobra.Command{
		Use:   "scale [--current-replicas=count] --replicas=COUNT (TYPE NAME | TYPE/NAME)",
		Short: "Set a new size for a deployment or replica set",
		Long: `Set a new size for a deployment or replica set.

With --current-replicas the size changes only if it is currently that number,
so two people scaling at once cannot overwrite each other unknowingly.`,
		Example: `  # Scale a deployment named 'web' to 3 replicas
  ctl scale --replicas=3 deployment/web

  # If deployment web's current size is 2, scale it to 3
  ctl scale --current-replicas=2 --replicas=3 deployment web`,
		ValidArgsFunction: completeResources(f),
		RunE: func(c *cobra.Command, args []string) error {
			if !c.Flags().Changed("replicas") {
				return usageErrorf(c, "required flag(s) \"replicas\" not set")
			}
			if replicas < 0 {
				return usageErrorf(c, "The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
			}
			target, err := singleTarget(args)
			if err != nil {
				return usageErrorf(c, "%v", err)
			}
			ctx := c.Context()
			cl, ns, err := f.clientInNamespace(ctx)
			if err != nil {
				return err
			}
			name := target.names[0]
			_, _, err = updateObject(ctx, client.ForKind(cl, target.info), namespaceFor(target.info, ns), name, func(obj kinds.Object) error {
				var spec *int32
				switch o := obj.(type) {
				case *api.Deployment:
					spec = o.GetSpec().Replicas
					o.Spec.Replicas = &replicas
				case *api.ReplicaSet:
					spec = o.GetSpec().Replicas
					o.Spec.Replicas = &replicas
				default:
					return fmt.Errorf("cannot scale %s: only deployments and replicasets can be scaled", target.info.Resource)
				}
				if current >= 0 && (spec == nil || *spec != current) {
					have := int32(1)
					if spec != nil {
						have = *spec
					}
					//lint:ignore ST1005 kubectl's exact wording, shown to users as is
					return fmt.Errorf("Expected replicas to be %d, was %d", current, have)
				}
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "%s/%s scaled\n", printers.QualifiedKind(target.info), name)
			return nil
		},
	}
	c.Flags().Int32Var(&replicas, "replicas", 0, "The new desired number of replicas. Required.")
	c.Flags().Int32Var(&current, "current-replicas", -1, "Precondition for current size. Requires that the current size of the resource match this value in order to scale. -1 (default) for no condition.")
	return c
}
