package cmd

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
)

// completeResources completes a kind first, then the names of that kind's
// objects (asking the server; no suggestions when it cannot be reached).
func completeResources(f *Factory) cobra.CompletionFunc {
	return func(c *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) == 0 {
			var out []string
			for _, n := range kinds.Names() {
				if strings.HasPrefix(n, toComplete) {
					out = append(out, n)
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		}
		info, ok := kinds.Lookup(args[0])
		if !ok {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		cl, err := f.Client(c.Context())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ns, _ := f.DefaultNamespace()
		objs, _, err := client.ForKind(cl, info).List(c.Context(), namespaceFor(info, ns), client.ListOptions{})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, o := range objs {
			if n := o.GetMetadata().GetName(); strings.HasPrefix(n, toComplete) {
				out = append(out, n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completePods completes pod names.
func completePods(f *Factory) cobra.CompletionFunc {
	complete := completeResources(f)
	return func(c *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return complete(c, []string{"pods"}, toComplete)
	}
}
