// Command apiserver serves Skiff's API over gRPC and is the only process
// that talks to etcd.
package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/apiserver/app"
	"github.com/skiff-dev/skiff/internal/daemon"
)

func main() { daemon.Main(newCommand()) }

func newCommand() *cobra.Command {
	cfg := app.Defaults()
	cmd := daemon.Command{
		Name:  "apiserver",
		Short: "Serve the Skiff API on gRPC, backed by etcd",
		Flags: &daemon.Flags{HTTPAddr: "127.0.0.1:8080"},
		Serve: func(ctx context.Context, d *daemon.Daemon) error {
			srv, err := app.Start(ctx, cfg, d.Logger, d.Registry)
			if err != nil {
				return err
			}
			d.AddReadyCheck("api", func() error {
				select {
				case <-srv.Ready():
					return nil
				default:
					return fmt.Errorf("caches not synced")
				}
			})
			<-ctx.Done()
			return srv.Stop()
		},
	}.Cobra()
	fs := cmd.Flags()
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "gRPC address to serve the API on")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory of the embedded etcd's data")
	fs.StringSliceVar(&cfg.EtcdServers, "etcd-servers", nil, "external etcd endpoints (https://host:2379,...); empty runs an embedded etcd")
	fs.StringVar(&cfg.EtcdCAFile, "etcd-cafile", "", "CA of the external etcd cluster's serving certificates (TLS to etcd)")
	fs.StringVar(&cfg.EtcdCertFile, "etcd-certfile", "", "client certificate for the external etcd cluster")
	fs.StringVar(&cfg.EtcdKeyFile, "etcd-keyfile", "", "private key of --etcd-certfile")
	fs.StringVar(&cfg.EtcdListenClient, "etcd-listen-client", "", "client URL the embedded etcd listens on, for etcdctl and backups (plaintext; default: none, the apiserver reaches it in-process)")
	fs.StringVar(&cfg.EtcdPrefix, "etcd-prefix", cfg.EtcdPrefix, "key prefix of every object in etcd")
	fs.StringVar(&cfg.ServiceCIDR, "service-cluster-ip-range", cfg.ServiceCIDR, "CIDR Service ClusterIPs are allocated from")
	fs.StringVar(&cfg.NodePortRange, "service-node-port-range", cfg.NodePortRange, "range NodePorts are allocated from")
	sec := &cfg.Security
	fs.StringVar(&sec.TLSCertFile, "tls-cert-file", "", "the apiserver's serving certificate (PEM)")
	fs.StringVar(&sec.TLSKeyFile, "tls-private-key-file", "", "the serving certificate's private key (PEM)")
	fs.StringVar(&sec.ClientCAFile, "client-ca-file", "", "CA that signs client certificates (CN = user, O = groups) and kubelets' serving certificates")
	fs.StringVar(&sec.TokenAuthFile, "token-auth-file", "", "CSV file of bearer tokens: token,user,uid[,\"group1,group2\"]")
	fs.StringVar(&sec.AuditLogPath, "audit-log-path", "", "file receiving one JSON line per mutating request")
	fs.StringVar(&sec.KubeletClientCert, "kubelet-client-certificate", "", "client certificate the apiserver presents to kubelets for exec and logs")
	fs.StringVar(&sec.KubeletClientKey, "kubelet-client-key", "", "private key of --kubelet-client-certificate")
	fs.Float64Var(&sec.RequestsPerUserQPS, "max-requests-per-user-qps", 2000, "requests per second allowed to each user before ResourceExhausted (0: unlimited)")
	fs.IntVar(&sec.RequestsPerUserBurst, "max-requests-per-user-burst", 4000, "burst of requests allowed to each user")
	fs.BoolVar(&sec.Insecure, "insecure", false, "serve plaintext with no authentication or authorization (throwaway test servers only)")
	fs.DurationVar(&cfg.BookmarkInterval, "watch-bookmark-interval", cfg.BookmarkInterval, "how often watchers that allow bookmarks get one")
	return cmd
}
