package cmd

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/ctl/printers"
	"github.com/skiff-dev/skiff/internal/version"
	"github.com/skiff-dev/skiff/proto/api"
)

func newVersionCmd(streams IOStreams, f *Factory) *cobra.Command {
	var clientOnly bool
	var output string
	c := &cobra.Command{
		Use:   "version",
		Short: "Print the client and server version information",
		Example: `  # Print the client and server versions for the current context
  ctl version

  # Print only the client version, as JSON
  ctl version --client -o json`,
		RunE: func(c *cobra.Command, args []string) error {
			if output != "" && output != "json" && output != "yaml" {
				return usageErrorf(c, "--output must be 'yaml' or 'json'")
			}
			info := map[string]any{"clientVersion": map[string]any{
				"gitVersion": version.GitVersion, "goVersion": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH,
			}}
			var server *api.VersionInfo
			var serverErr error
			if !clientOnly {
				cl, err := f.Client(c.Context())
				if err == nil {
					server, err = cl.API.Version(c.Context(), &api.VersionRequest{})
				}
				serverErr = err
				if server != nil {
					info["serverVersion"] = map[string]any{"gitVersion": server.GetGitVersion(), "goVersion": server.GetGoVersion(), "platform": server.GetPlatform()}
				}
			}
			if output != "" {
				if err := printers.PrintDocument(streams.Out, printers.Format{Kind: output}, info); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(streams.Out, "Client Version: %s\n", version.GitVersion)
				if server != nil {
					fmt.Fprintf(streams.Out, "Server Version: %s\n", server.GetGitVersion())
				}
			}
			return serverErr
		},
	}
	c.Flags().BoolVar(&clientOnly, "client", false, "If true, shows client version only (no server required).")
	c.Flags().StringVarP(&output, "output", "o", "", "One of 'yaml' or 'json'.")
	return c
}

func newClusterInfoCmd(streams IOStreams, f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "cluster-info",
		Short: "Display cluster information",
		Long:  `Display the addresses of the control plane, after checking that it answers.`,
		Example: `  # Print the address of the control plane
  ctl cluster-info`,
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := f.Client(c.Context())
			if err != nil {
				return err
			}
			if _, err := cl.API.Version(c.Context(), &api.VersionRequest{}); err != nil {
				return err
			}
			servers, err := f.servers()
			if err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "Skiff control plane is running at %s\n", strings.Join(servers, ", "))
			return nil
		},
	}
}

// servers are the apiserver addresses ctl talks to.
func (f *Factory) servers() ([]string, error) {
	if f.Dial != nil {
		return []string{"in-process"}, nil
	}
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	cur, err := cfg.Current()
	if err != nil {
		return nil, err
	}
	return cur.Servers, nil
}
