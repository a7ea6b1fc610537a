// Command skiff-pki makes a cluster's certificates with internal/pki: the
// CA and control-plane certificates (init), a node's kubelet certificates
// (node), and any client certificate (client). init also makes the etcd CA
// in <dir>/etcd with the apiserver's etcd client certificate; an etcd
// member's certificate is a serving certificate issued there. Every
// subcommand is idempotent: files that exist and fit are kept.
//
//	skiff-pki init --dir /etc/skiff/pki --apiserver-name cp1 --apiserver-ip 10.0.0.11
//	skiff-pki node node-1 --dir /etc/skiff/pki --ip 10.0.0.21
//	skiff-pki serving etcd-cp1 --dns cp1,localhost --ip 10.0.0.11,127.0.0.1 --dir /etc/skiff/pki/etcd
//	skiff-pki client alice --user alice --group system:viewers --dir /etc/skiff/pki
package main

import (
	"fmt"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/pki"
)

func main() {
	if err := newCommand().Execute(); err != nil {
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	var (
		dir  string
		opts pki.Options
	)
	root := &cobra.Command{
		Use:          "skiff-pki",
		Short:        "Make a Skiff cluster's CA and certificates",
		SilenceUsage: true,
	}
	root.PersistentFlags().StringVar(&dir, "dir", "/etc/skiff/pki", "directory holding ca.crt, ca.key and the issued <name>.crt/.key (<dir>/etcd for the etcd CA's)")
	root.PersistentFlags().DurationVar(&opts.CAValidity, "ca-validity", pki.DefaultCAValidity, "lifetime of a new CA")
	root.PersistentFlags().DurationVar(&opts.Validity, "validity", pki.DefaultLeafValidity, "lifetime of a new leaf certificate")

	var names []string
	var ips []net.IP
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Make the CA and the etcd CA (if missing), the apiserver's serving certificate and the control-plane client certificates",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pki.ControlPlane(dir, names, ips, opts); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "control-plane certificates ready in %s\n", dir)
			return nil
		},
	}
	initCmd.Flags().StringSliceVar(&names, "apiserver-name", []string{"localhost", "skiff-apiserver"}, "DNS names of the apiserver (repeat or comma-separate)")
	initCmd.Flags().IPSliceVar(&ips, "apiserver-ip", []net.IP{net.ParseIP("127.0.0.1")}, "IP addresses of the apiserver")

	var nodeIPs []net.IP
	nodeCmd := &cobra.Command{
		Use:   "node NAME",
		Short: "Make a node's kubelet client (system:node:NAME) and serving certificates",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := pki.Node(dir, args[0], nodeIPs, opts); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node %s certificates ready in %s\n", args[0], dir)
			return nil
		},
	}
	nodeCmd.Flags().IPSliceVar(&nodeIPs, "ip", nil, "IP addresses of the node (its InternalIP)")

	var servingNames []string
	var servingIPs []net.IP
	servingCmd := &cobra.Command{
		Use:   "serving NAME",
		Short: "Make a serving certificate NAME.crt (server and client auth, e.g. an etcd member) for --dns and --ip",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pair, err := pki.IssueServing(dir, args[0], servingNames, servingIPs, opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s (names %v, IPs %v, expires %s)\n", pair.CertFile, servingNames, servingIPs, pair.Cert.NotAfter.Format(time.RFC3339))
			return nil
		},
	}
	servingCmd.Flags().StringSliceVar(&servingNames, "dns", nil, "DNS names")
	servingCmd.Flags().IPSliceVar(&servingIPs, "ip", nil, "IP addresses")

	var user string
	var groups []string
	clientCmd := &cobra.Command{
		Use:   "client NAME",
		Short: "Make a client certificate NAME.crt for --user in --group",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if user == "" {
				user = args[0]
			}
			pair, err := pki.IssueClient(dir, args[0], user, groups, opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s (user %q, groups %v, expires %s)\n", pair.CertFile, user, groups, pair.Cert.NotAfter.Format(time.RFC3339))
			return nil
		},
	}
	clientCmd.Flags().StringVar(&user, "user", "", "user name (certificate CN); default NAME")
	clientCmd.Flags().StringSliceVar(&groups, "group", nil, "groups (certificate O)")

	root.AddCommand(initCmd, nodeCmd, servingCmd, clientCmd)
	return root
}
