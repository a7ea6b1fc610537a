package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap"

	"github.com/skiff-dev/skiff/internal/pki"
)

// etcdBackend is either an embedded etcd server, reached in-process through
// etcd's v3client (no gRPC connection, no encoding between the apiserver and
// its etcd), or a client of an external cluster.
type etcdBackend struct {
	client   *clientv3.Client
	embedded *embed.Etcd
	// untrustedProgress: some member's progress notifications may run
	// ahead of its events (etcd issue 15220).
	untrustedProgress bool
}

// progressNotifyTrusted says whether an etcd version sends progress
// notifications only after the events before them: 3.4.25+ and 3.5.8+.
func progressNotifyTrusted(version string) bool {
	var major, minor, patch int
	if _, err := fmt.Sscanf(version, "%d.%d.%d", &major, &minor, &patch); err != nil {
		return false
	}
	switch {
	case major != 3:
		return major > 3
	case minor == 4:
		return patch >= 25
	case minor == 5:
		return patch >= 8
	}
	return minor > 5
}

func (b *etcdBackend) Close() {
	if b.client != nil {
		_ = b.client.Close()
	}
	if b.embedded != nil {
		b.embedded.Close()
	}
}

// etcdTLS is the client TLS towards an external etcd cluster, if configured.
func (cfg Config) etcdTLS() (*tls.Config, error) {
	if cfg.EtcdCAFile == "" && cfg.EtcdCertFile == "" && cfg.EtcdKeyFile == "" {
		return nil, nil
	}
	if cfg.EtcdCAFile == "" || (cfg.EtcdCertFile == "") != (cfg.EtcdKeyFile == "") {
		return nil, fmt.Errorf("--etcd-cafile is required with TLS to etcd, and --etcd-certfile and --etcd-keyfile go together")
	}
	pool, err := readPool(cfg.EtcdCAFile)
	if err != nil {
		return nil, fmt.Errorf("--etcd-cafile: %w", err)
	}
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cfg.EtcdCertFile != "" {
		get, err := pki.ClientCertificate(cfg.EtcdCertFile, cfg.EtcdKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--etcd-certfile/--etcd-keyfile: %w", err)
		}
		tc.GetClientCertificate = get
	}
	return tc, nil
}

// startEtcd starts an embedded etcd in dataDir, or connects to servers.
func startEtcd(ctx context.Context, cfg Config, log *slog.Logger) (*etcdBackend, error) {
	if len(cfg.EtcdServers) > 0 {
		tlsConfig, err := cfg.etcdTLS()
		if err != nil {
			return nil, err
		}
		cli, err := clientv3.New(clientv3.Config{
			Endpoints: cfg.EtcdServers, DialTimeout: 5 * time.Second, Context: ctx,
			Logger: zap.NewNop(), AutoSyncInterval: 30 * time.Second, TLS: tlsConfig,
		})
		if err != nil {
			return nil, fmt.Errorf("connect to --etcd-servers %v: %w", cfg.EtcdServers, err)
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := cli.Get(sctx, "health"); err != nil {
			cli.Close()
			return nil, fmt.Errorf("etcd %v is not reachable: %w", cfg.EtcdServers, err)
		}
		b := &etcdBackend{client: cli}
		for _, ep := range cfg.EtcdServers {
			st, err := cli.Status(sctx, ep)
			if err != nil {
				continue
			}
			if !progressNotifyTrusted(st.Version) {
				b.untrustedProgress = true
			}
			log.Info("using external etcd", "endpoint", ep, "version", st.Version)
		}
		if b.untrustedProgress {
			log.Warn("etcd before 3.4.25/3.5.8 may report progress ahead of its events: reads of idle kinds go to etcd")
		}
		return b, nil
	}
	ecfg := embed.NewConfig()
	ecfg.Dir = cfg.DataDir
	ecfg.Name = "skiff"
	// etcd's own logs are noise at shutdown; errors reach us through the client.
	ecfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	// The apiserver reaches its etcd in-process, so by default etcd opens
	// no port at all: a plaintext client or peer port on loopback would let
	// any local user read and write every object past authentication.
	// --etcd-listen-client opens a client port for etcdctl and backups.
	ecfg.ListenClientUrls, ecfg.AdvertiseClientUrls = nil, nil
	if cfg.EtcdListenClient != "" {
		clientURL, err := url.Parse(cfg.EtcdListenClient)
		if err != nil || clientURL.Host == "" {
			return nil, fmt.Errorf("--etcd-listen-client %q: want a URL such as http://127.0.0.1:2379", cfg.EtcdListenClient)
		}
		ecfg.ListenClientUrls = []url.URL{*clientURL}
		ecfg.AdvertiseClientUrls = []url.URL{*clientURL}
	}
	// A one-member cluster talks to no peer: its peer URL names the member
	// and is never listened on.
	ecfg.ListenPeerUrls = nil
	ecfg.AdvertisePeerUrls = []url.URL{{Scheme: "http", Host: "localhost:2380"}}
	ecfg.InitialCluster = ecfg.InitialClusterFromName(ecfg.Name)
	ecfg.AutoCompactionMode = "periodic"
	ecfg.AutoCompactionRetention = "5m"
	ecfg.WatchProgressNotifyInterval = 5 * time.Second
	ecfg.QuotaBackendBytes = 8 << 30
	e, err := embed.StartEtcd(ecfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", cfg.DataDir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s did not become ready", cfg.DataDir)
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
	cli := v3client.New(e.Server)
	log.Info("embedded etcd ready", "dataDir", cfg.DataDir, "clientURL", cfg.EtcdListenClient)
	return &etcdBackend{client: cli, embedded: e}, nil
}
