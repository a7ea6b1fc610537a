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

func newCompletionCmd(streams IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "completion SHELL",
		Short: "Output shell completion code for the specified shell (bash, zsh or fish)",
		Long: `Output shell completion code for the specified shell (bash, zsh or fish).
The code completes commands, flags, resource types and the names of objects
in the cluster.`,
		Example: `  # Load completion into the current bash shell
  source <(ctl completion bash)

  # Install it for every new bash shell
  ctl completion bash > /etc/bash_completion.d/ctl

  # zsh
  ctl completion zsh > "${fpath[1]}/_ctl"

  # fish
  ctl completion fish > ~/.config/fish/completions/ctl.fish`,
		ValidArgs: []string{"bash", "zsh", "fish"},
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf(c, "Shell not specified.")
			}
			root := c.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(streams.Out, true)
			case "zsh":
				return root.GenZshCompletion(streams.Out)
			case "fish":
				return root.GenFishCompletion(streams.Out, true)
			}
			return usageErrorf(c, "Unsupported shell type %q.", args[0])
		},
	}
}
