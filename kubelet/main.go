// Command kubelet is Skiff's node agent: it registers the node, runs the
// pods bound to it on containerd with CNI networking, reports their status,
// and serves exec and logs to the apiserver.
package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/clientconfig"
	"github.com/skiff-dev/skiff/internal/daemon"
	"github.com/skiff-dev/skiff/kubelet/app"
)

const component = "kubelet"

func main() { daemon.Main(newCommand()) }

func newCommand() *cobra.Command {
	cfg := app.Defaults()
	var clientConfig string
	var cc *clientconfig.Config
	cmd := daemon.Command{
		Name:  component,
		Short: "Run the pods bound to this node on containerd, with CNI networking",
		Flags: &daemon.Flags{HTTPAddr: "127.0.0.1:10248"},
		Prepare: func(*cobra.Command) error {
			if err := cfg.Validate(); err != nil {
				return err
			}
			var err error
			cc, err = clientconfig.Load(clientConfig)
			return err
		},
		Serve: func(ctx context.Context, d *daemon.Daemon) error {
			c, err := cc.Dial(ctx)
			if err != nil {
				return fmt.Errorf("connect to the apiserver: %w", err)
			}
			cfg.Logger = d.Logger
			k, err := app.New(cfg, c)
			if err != nil {
				return err
			}
			d.AddReadyCheck("pods", k.Ready)
			return k.Run(ctx)
		},
	}.Cobra()
	fs := cmd.Flags()
	clientconfig.AddFlag(fs, &clientConfig)
	fs.StringVar(&cfg.NodeName, "node-name", cfg.NodeName, "name of the Node this kubelet registers")
	fs.StringVar(&cfg.NodeIP, "node-ip", cfg.NodeIP, "the node's InternalIP (default: the address of the default route's interface)")
	fs.StringVar(&cfg.ContainerdAddress, "containerd-address", cfg.ContainerdAddress, "containerd's socket")
	fs.StringVar(&cfg.ContainerdNamespace, "containerd-namespace", cfg.ContainerdNamespace, "containerd namespace of the kubelet's containers")
	fs.StringVar(&cfg.RootDir, "root-dir", cfg.RootDir, "kubelet state: pod logs, hosts and resolv.conf files, network namespaces, IP leases")
	fs.StringVar(&cfg.CNIBinDir, "cni-bin-dir", cfg.CNIBinDir, "directory of the CNI plugin binaries")
	fs.StringVar(&cfg.CNIConfDir, "cni-conf-dir", cfg.CNIConfDir, "directory the kubelet writes its CNI conflist to")
	fs.StringVar(&cfg.NetworkName, "cni-network", cfg.NetworkName, "name of the CNI network")
	fs.StringVar(&cfg.Bridge, "bridge", cfg.Bridge, "Linux bridge the pods attach to")
	fs.StringVar(&cfg.PodCIDR, "pod-cidr", cfg.PodCIDR, "pod subnet of this node (default: the Node's spec.podCIDR from the controller-manager)")
	fs.StringVar(&cfg.ClusterDNS, "cluster-dns", cfg.ClusterDNS, "cluster DNS service IP written to pods' resolv.conf (empty: the node's resolv.conf)")
	fs.StringVar(&cfg.ClusterDomain, "cluster-domain", cfg.ClusterDomain, "cluster domain of pods' DNS search path")
	fs.DurationVar(&cfg.SyncFrequency, "sync-frequency", cfg.SyncFrequency, "how often every pod is compared again with what containerd runs")
	fs.StringVar(&cfg.ImagePreloadDir, "image-preload-dir", cfg.ImagePreloadDir, "directory of image tarballs (*.tar) imported at start")
	fs.StringSliceVar(&cfg.InsecureRegistries, "insecure-registry", cfg.InsecureRegistries, "registry host:port pulled from over plain HTTP (repeatable)")
	fs.IntVar(&cfg.Port, "port", cfg.Port, "port of the exec and logs server")
	fs.StringVar(&cfg.Address, "address", cfg.Address, "address of the exec and logs server (empty: all interfaces)")
	fs.StringVar(&cfg.TLSCertFile, "tls-cert-file", cfg.TLSCertFile, "serving certificate of the exec and logs server (PEM): the node's, for its name and InternalIP")
	fs.StringVar(&cfg.TLSPrivateKeyFile, "tls-private-key-file", cfg.TLSPrivateKeyFile, "private key of --tls-cert-file (PEM)")
	fs.StringVar(&cfg.ClientCAFile, "client-ca-file", cfg.ClientCAFile, "CA that must sign callers' client certificates; callers without one are refused")
	fs.StringSliceVar(&cfg.AuthorizedClientNames, "authorized-client-names", cfg.AuthorizedClientNames, "users (client certificate CN) allowed to call exec and logs; anyone else gets PermissionDenied")
	fs.BoolVar(&cfg.Insecure, "insecure", cfg.Insecure, "serve exec and logs in plaintext to any caller, without TLS (tests against an --insecure apiserver only)")
	fs.IntVar(&cfg.CPU, "cpu", cfg.CPU, "cpu capacity to report (0: the number of CPUs)")
	return cmd
}
