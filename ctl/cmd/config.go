package cmd

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/skiff-dev/skiff/ctl/printers"
	"github.com/skiff-dev/skiff/internal/clientconfig"
)

func newConfigCmd(streams IOStreams, f *Factory) *cobra.Command {
	c := &cobra.Command{
		Use:   "config SUBCOMMAND",
		Short: "Modify the client config file",
		Long: `Modify the client config file (--client-config, else $SKIFF_CONFIG, else
~/.skiff/config): contexts name apiservers, credentials and a default namespace.`,
		Example: `  # Show the config
  ctl config view

  # Switch to another context
  ctl config use-context prod

  # Make "team-a" the default namespace of the current context
  ctl config set-context --current --namespace=team-a`,
		RunE: func(c *cobra.Command, args []string) error {
			return subcommandRequired(c, args)
		},
	}
	c.AddCommand(newConfigViewCmd(streams, f), newConfigGetContextsCmd(streams, f), newConfigCurrentContextCmd(streams, f),
		newConfigUseContextCmd(streams, f), newConfigSetContextCmd(streams, f))
	return c
}

func newConfigViewCmd(streams IOStreams, f *Factory) *cobra.Command {
	var raw, minify bool
	var output string
	c := &cobra.Command{
		Use:   "view",
		Short: "Display the client config",
		Example: `  # Show the config with tokens hidden
  ctl config view

  # Show only the current context, tokens included
  ctl config view --minify --raw`,
		RunE: func(c *cobra.Command, args []string) error {
			cfg, err := clientconfig.Load(f.ConfigPath)
			if err != nil {
				return err
			}
			if minify {
				cur, err := cfg.Current()
				if err != nil {
					return err
				}
				cfg = &clientconfig.Config{CurrentContext: cur.Name, Contexts: []clientconfig.Context{*cur}}
			}
			if !raw {
				for i := range cfg.Contexts {
					if cfg.Contexts[i].Token != "" {
						cfg.Contexts[i].Token = "REDACTED"
					}
				}
			}
			data, err := yaml.Marshal(cfg)
			if err != nil {
				return fmt.Errorf("encode config: %w", err)
			}
			if output == "" || output == "yaml" {
				_, err = streams.Out.Write(data)
				return err
			}
			var doc map[string]any
			if err := yaml.Unmarshal(data, &doc); err != nil {
				return fmt.Errorf("encode config: %w", err)
			}
			format, err := printers.ParseFormat(output)
			if err != nil {
				return err
			}
			return printers.PrintDocument(streams.Out, format, doc)
		},
	}
	c.Flags().BoolVar(&raw, "raw", false, "Display raw byte data and sensitive data")
	c.Flags().BoolVar(&minify, "minify", false, "Remove all information not used by current-context from the output")
	c.Flags().StringVarP(&output, "output", "o", "", "Output format. One of: (yaml, json, jsonpath=...)")
	return c
}

func newConfigGetContextsCmd(streams IOStreams, f *Factory) *cobra.Command {
	var noHeaders bool
	var output string
	c := &cobra.Command{
		Use:   "get-contexts [(-o|--output=)name)]",
		Short: "Describe one or many contexts",
		Example: `  # List all the contexts in your config file
  ctl config get-contexts`,
		RunE: func(c *cobra.Command, args []string) error {
			cfg, err := clientconfig.Load(f.ConfigPath)
			if err != nil {
				return err
			}
			current := ""
			if cur, err := cfg.Current(); err == nil {
				current = cur.Name
			}
			if output == "name" {
				for _, ctx := range cfg.Contexts {
					fmt.Fprintln(streams.Out, ctx.Name)
				}
				return nil
			}
			w := printers.NewColumnWriter(streams.Out)
			var rows [][]string
			if !noHeaders {
				rows = append(rows, []string{"CURRENT", "NAME", "SERVERS", "NAMESPACE"})
			}
			for _, ctx := range cfg.Contexts {
				mark := ""
				if ctx.Name == current {
					mark = "*"
				}
				if len(args) > 0 && !containsString(args, ctx.Name) {
					continue
				}
				rows = append(rows, []string{mark, ctx.Name, strings.Join(ctx.Servers, ","), ctx.Namespace})
			}
			return w.Write(rows...)
		},
	}
	c.Flags().BoolVar(&noHeaders, "no-headers", false, "When using the default output format, don't print headers.")
	c.Flags().StringVarP(&output, "output", "o", "", "Output format. One of: (name).")
	return c
}

func containsString(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func newConfigCurrentContextCmd(streams IOStreams, f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:     "current-context",
		Short:   "Display the current-context",
		Example: "  # Display the current-context\n  ctl config current-context",
		RunE: func(c *cobra.Command, args []string) error {
			cfg, err := clientconfig.Load(f.ConfigPath)
			if err != nil {
				return err
			}
			if cfg.CurrentContext == "" {
				return errors.New("current-context is not set")
			}
			fmt.Fprintln(streams.Out, cfg.CurrentContext)
			return nil
		},
	}
}

func newConfigUseContextCmd(streams IOStreams, f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:     "use-context CONTEXT_NAME",
		Aliases: []string{"use"},
		Short:   "Set the current-context in the client config file",
		Example: "  # Use the context for the prod cluster\n  ctl config use-context prod",
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf(c, "exactly one CONTEXT_NAME is required")
			}
			cfg, err := clientconfig.Load(f.ConfigPath)
			if err != nil {
				return err
			}
			found := false
			for _, ctx := range cfg.Contexts {
				found = found || ctx.Name == args[0]
			}
			if !found {
				return fmt.Errorf("no context exists with the name: %q", args[0])
			}
			cfg.CurrentContext = args[0]
			if err := cfg.Save(f.ConfigPath); err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "Switched to context %q.\n", args[0])
			return nil
		},
	}
}

func newConfigSetContextCmd(streams IOStreams, f *Factory) *cobra.Command {
	var current bool
	var namespace, ca, cert, key, token string
	var servers []string
	c := &cobra.Command{
		Use:   "set-context [NAME | --current] [--servers=host:port,...] [--namespace=namespace] [--certificate-authority=path] [--client-certificate=path] [--client-key=path] [--token=token]",
		Short: "Set a context entry in the client config file",
		Long: `Set a context entry in the client config file. Fields given replace the
context's; a new context needs --servers. The file is created if missing.`,
		Example: `  # Set the namespace of the current context
  ctl config set-context --current --namespace=team-a

  # Add a context for a local cluster
  ctl config set-context local --servers=127.0.0.1:6443`,
		RunE: func(c *cobra.Command, args []string) error {
			cfg, err := clientconfig.Load(f.ConfigPath)
			if errors.Is(err, fs.ErrNotExist) {
				cfg, err = &clientconfig.Config{}, nil
			}
			if err != nil {
				return err
			}
			var name string
			switch {
			case current && len(args) == 0:
				cur, err := cfg.Current()
				if err != nil {
					return err
				}
				name = cur.Name
			case !current && len(args) == 1:
				name = args[0]
			default:
				return usageErrorf(c, "give either a context NAME or --current")
			}
			idx := -1
			for i := range cfg.Contexts {
				if cfg.Contexts[i].Name == name {
					idx = i
				}
			}
			verb := "modified"
			if idx < 0 {
				cfg.Contexts = append(cfg.Contexts, clientconfig.Context{Name: name})
				idx = len(cfg.Contexts) - 1
				verb = "created"
				if len(cfg.Contexts) == 1 && cfg.CurrentContext == "" {
					cfg.CurrentContext = name
				}
			}
			ctx := &cfg.Contexts[idx]
			fl := c.Flags()
			if fl.Changed("servers") {
				ctx.Servers = servers
			}
			if fl.Changed("namespace") {
				ctx.Namespace = namespace
			}
			if fl.Changed("certificate-authority") {
				ctx.CertificateAuthority = ca
			}
			if fl.Changed("client-certificate") {
				ctx.ClientCertificate = cert
			}
			if fl.Changed("client-key") {
				ctx.ClientKey = key
			}
			if fl.Changed("token") {
				ctx.Token = token
			}
			if err := cfg.Save(f.ConfigPath); err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "Context %q %s.\n", name, verb)
			return nil
		},
	}
	fl := c.Flags()
	fl.BoolVar(&current, "current", false, "Modify the current context")
	fl.StringSliceVar(&servers, "servers", nil, "apiserver addresses (host:port) for the context")
	// The global -n/--namespace flag would shadow this one; kubectl's
	// set-context uses its own --namespace, so it is redefined locally.
	fl.StringVar(&namespace, "namespace", "", "default namespace for the context")
	fl.StringVar(&ca, "certificate-authority", "", "path to the cluster CA certificate")
	fl.StringVar(&cert, "client-certificate", "", "path to the client certificate")
	fl.StringVar(&key, "client-key", "", "path to the client key")
	fl.StringVar(&token, "token", "", "bearer token")
	return c
}
