package integration

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/skiff-dev/skiff/apiserver/app"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/etcdtest"
	"github.com/skiff-dev/skiff/internal/pki"
	"github.com/skiff-dev/skiff/internal/testcluster"
	"github.com/skiff-dev/skiff/proto/api"
)

// TestAPIServerOnTLSEtcdWithClientCertificates runs the apiserver as
// deploy/install.sh configures it against its own etcd cluster: a
// 3-member etcd serving https with client certificate auth, and the
// apiserver's --etcd-cafile, --etcd-certfile and --etcd-keyfile from that
// cluster's CA. Objects go through the API, land in etcd, and no client
// without a certificate of that CA reads them from etcd directly.
func TestAPIServerOnTLSEtcdWithClientCertificates(t *testing.T) {
	etcd := etcdtest.StartT(t, etcdtest.Options{Members: 3, TLS: true})
	for _, ep := range etcd.Endpoints() {
		if !strings.HasPrefix(ep, "https://") {
			t.Fatalf("etcd endpoint %s, want https", ep)
		}
	}
	apiClient, err := pki.IssueClient(etcd.TLS.PKIDir, pki.FileAPIServerEtcdClient, pki.UserAPIServerEtcdClient, nil, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	withEtcdTLS := func(cfg *app.Config) {
		cfg.EtcdServers = etcd.Endpoints()
		cfg.EtcdCAFile = etcd.TLS.CAFile
		cfg.EtcdCertFile, cfg.EtcdKeyFile = apiClient.CertFile, apiClient.KeyFile
	}
	c := testcluster.Start(t, withEtcdTLS)
	ctx := ctx(t)

	pods := c.Client.Pods()
	for _, name := range []string{"web-0", "web-1"} {
		if _, err := pods.Create(ctx, nginxPod(name)); err != nil {
			t.Fatalf("create pod %s: %v", name, err)
		}
	}
	secrets := client.For[*api.Secret](c.Client)
	if _, err := secrets.Create(ctx, &api.Secret{Metadata: meta("db", "default"), Data: map[string][]byte{"password": []byte("s3cret")}}); err != nil {
		t.Fatal(err)
	}
	got, err := secrets.Get(ctx, "default", "db")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.GetData()["password"]) != "s3cret" {
		t.Errorf("secret read back %q", got.GetData()["password"])
	}
	list, _, err := pods.List(ctx, "default", clientListAll())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Errorf("%d pods listed, want 2", len(list))
	}

	// The objects are in that etcd: a client with a certificate of its CA
	// sees them.
	prefix := c.Config.EtcdPrefix + "/"
	good, err := etcd.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := etcdGet(ctx, etcd.Endpoints(), good, prefix)
	if err != nil {
		t.Fatalf("read %s with a certificate of the etcd CA: %v", prefix, err)
	}
	if resp.Count < 3 {
		t.Fatalf("%d keys under %s, want the 2 pods and the secret at least", resp.Count, prefix)
	}

	// Nobody else reads them.
	noCert, err := pki.ClientTLS(etcd.TLS.CAFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	// The cluster CA's identities (an admin's, made by pki.ControlPlane) are not
	// etcd's.
	adminDir := filepath.Join(t.TempDir(), "pki")
	if err := pki.ControlPlane(adminDir, []string{"localhost"}, nil, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	admin, err := pki.ClientTLS(etcd.TLS.CAFile, filepath.Join(adminDir, pki.FileAdmin+".crt"), filepath.Join(adminDir, pki.FileAdmin+".key"))
	if err != nil {
		t.Fatal(err)
	}
	plain := strings.Replace(etcd.Endpoints()[0], "https://", "http://", 1)
	refused := []struct {
		name      string
		endpoints []string
		tls       *tls.Config
	}{
		{"TLS without a client certificate", etcd.Endpoints(), noCert},
		{"an admin certificate of the cluster CA", etcd.Endpoints(), admin},
		{"plaintext", []string{plain}, nil},
	}
	for _, tt := range refused {
		t.Run("etcd refuses "+tt.name, func(t *testing.T) {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if resp, err := etcdGet(rctx, tt.endpoints, tt.tls, prefix); err == nil {
				t.Fatalf("read %d keys under %s", resp.Count, prefix)
			}
		})
	}

	// An apiserver given the CA but no client certificate does not come
	// up: the flags are what lets it in.
	t.Run("apiserver without --etcd-certfile does not start", func(t *testing.T) {
		cfg := app.Defaults()
		cfg.Listen = "127.0.0.1:0"
		cfg.DataDir = t.TempDir()
		cfg.Security.Insecure = true
		withEtcdTLS(&cfg)
		cfg.EtcdCertFile, cfg.EtcdKeyFile = "", ""
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		srv, err := app.Start(sctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
		if err == nil {
			_ = srv.Stop()
			t.Fatal("the apiserver started on etcd without a client certificate")
		}
		if !strings.Contains(err.Error(), "etcd") {
			t.Errorf("error does not name etcd: %v", err)
		}
	})
}

// etcdGet reads every key under prefix through a new client of endpoints.
func etcdGet(ctx context.Context, endpoints []string, tc *tls.Config, prefix string) (*clientv3.GetResponse, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second, TLS: tc, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return cli.Get(rctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
}
