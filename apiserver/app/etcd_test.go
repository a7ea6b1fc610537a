package app

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestProgressNotifyTrustedByVersion(t *testing.T) {
	tests := []struct {
		version string
		want    bool
	}{
		{"3.4.23", false}, {"3.4.25", true}, {"3.5.7", false}, {"3.5.8", true},
		{"3.6.0", true}, {"3.7.3", true}, {"4.0.0", true}, {"garbage", false},
	}
	for _, tt := range tests {
		if got := progressNotifyTrusted(tt.version); got != tt.want {
			t.Errorf("progressNotifyTrusted(%q) = %v, want %v", tt.version, got, tt.want)
		}
	}
}

// The watch cache of an idle kind proves it is fresh by asking its watch
// for a progress notification: the in-process client to the embedded etcd
// must carry the request to the watch's stream and the answer back.
func TestEmbeddedEtcdClientReportsProgressOnIdleWatch(t *testing.T) {
	cfg := Defaults()
	cfg.DataDir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	b, err := startEtcd(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if b.embedded == nil {
		t.Fatal("no embedded etcd")
	}

	wctx := clientv3.WithRequireLeader(ctx)
	wch := b.client.Watch(wctx, "/registry/pods/", clientv3.WithPrefix(), clientv3.WithProgressNotify())
	// A write elsewhere moves etcd's revision, not this watch's events.
	put, err := b.client.Put(ctx, "/registry/nodes/a", "x")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.client.RequestProgress(clientv3.WithRequireLeader(ctx)); err != nil {
		t.Fatal(err)
	}
	for resp := range wch {
		if err := resp.Err(); err != nil {
			t.Fatal(err)
		}
		if len(resp.Events) > 0 {
			t.Fatalf("events %v on an idle prefix", resp.Events)
		}
		if resp.IsProgressNotify() && resp.Header.Revision >= put.Header.Revision {
			return
		}
	}
	t.Fatal("watch ended without a progress notification")
}

// The embedded etcd opens a port only when asked: a plaintext client or
// peer port would let any local user past authentication.
func TestEmbeddedEtcdListensOnlyWhenAsked(t *testing.T) {
	tests := []struct {
		name        string
		listen      string
		wantClients int
		wantErr     string
	}{
		{name: "default: no port", wantClients: 0},
		{name: "client port for etcdctl", listen: "http://127.0.0.1:0", wantClients: 1},
		{name: "not a URL", listen: "127.0.0.1:2379", wantErr: "--etcd-listen-client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Defaults()
			cfg.DataDir = t.TempDir()
			cfg.EtcdListenClient = tt.listen
			b, err := startEtcd(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("startEtcd: err %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(b.Close)
			if got := len(b.embedded.Clients); got != tt.wantClients {
				t.Errorf("client listeners: %d, want %d", got, tt.wantClients)
			}
			if got := len(b.embedded.Peers); got != 0 {
				t.Errorf("peer listeners: %d, want none", got)
			}
			if _, err := b.client.Put(t.Context(), "/registry/nodes/a", "x"); err != nil {
				t.Fatalf("put through the in-process client: %v", err)
			}
		})
	}
}
