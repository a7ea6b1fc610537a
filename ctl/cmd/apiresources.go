package cmd

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/ctl/printers"
	"github.com/skiff-dev/skiff/internal/kinds"
)

func newAPIResourcesCmd(streams IOStreams) *cobra.Command {
	var output string
	var namespaced string
	c := &cobra.Command{
		Use:   "api-resources",
		Short: "Print the supported API resources on the server",
		Long:  `Print the kinds Skiff serves, with the short names every command accepts.`,
		Example: `  # Print the supported API resources
  ctl api-resources

  # Print only the names, e.g. for scripts
  ctl api-resources -o name

  # Print the namespaced resources
  ctl api-resources --namespaced=true`,
		RunE: func(c *cobra.Command, args []string) error {
			infos := kinds.All()
			sort.SliceStable(infos, func(i, j int) bool { return infos[i].Resource < infos[j].Resource })
			var rows [][]string
			if output == "" {
				rows = append(rows, []string{"NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"})
			}
			for _, info := range infos {
				if namespaced != "" && fmt.Sprint(info.Namespaced) != namespaced {
					continue
				}
				switch output {
				case "name":
					name := info.Resource
					if info.Group != "" {
						name += "." + info.Group
					}
					fmt.Fprintln(streams.Out, name)
				case "":
					rows = append(rows, []string{info.Resource, strings.Join(info.ShortNames, ","), info.APIVersion, fmt.Sprint(info.Namespaced), info.Kind})
				default:
					return usageErrorf(c, "--output %q is not supported: use name or leave it empty", output)
				}
			}
			if output == "" {
				return printers.NewColumnWriter(streams.Out).Write(rows...)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "", "Output format. One of: (name).")
	c.Flags().StringVar(&namespaced, "namespaced", "", "If false, non-namespaced resources will be returned, otherwise returning namespaced resources by default.")
	return c
}
