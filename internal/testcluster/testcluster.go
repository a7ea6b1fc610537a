// Package testcluster starts an in-process apiserver on an embedded etcd in
// a test's temporary directory, for integration tests of every component.
//
// It must only be imported from tests.
package testcluster

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/skiff-dev/skiff/apiserver/app"
	"github.com/skiff-dev/skiff/apiserver/storage"
	"github.com/skiff-dev/skiff/internal/client"
)

// Cluster is an apiserver running inside the test process.
type Cluster struct {
	// Client talks to the apiserver; it survives Restart.
	Client *client.Client
	// Addr is the gRPC address, stable across Restart.
	Addr   string
	Config app.Config
	server *app.APIServer
	conn   *grpc.ClientConn
}

// Option adjusts the apiserver's configuration.
type Option func(*app.Config)

// Start runs an apiserver with embedded etcd until the test ends.
func Start(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	cfg := app.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.BookmarkInterval = time.Second
	// Tests that exercise security set Security themselves.
	cfg.Security.Insecure = true
	for _, o := range opts {
		o(&cfg)
	}
	c := &Cluster{Config: cfg}
	c.start(t)
	c.Config.Listen = c.Addr
	conn, err := grpc.NewClient(c.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
	if err != nil {
		t.Fatalf("dial apiserver: %v", err)
	}
	c.conn = conn
	c.Client = client.New(conn)
	t.Cleanup(func() {
		conn.Close()
		c.stop(t)
	})
	return c
}

func logger() *slog.Logger {
	if os.Getenv("SKIFF_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (c *Cluster) start(t testing.TB) {
	t.Helper()
	var srv *app.APIServer
	var err error
	// The port of a restarted server may still be held for a moment.
	for attempt := 0; attempt < 50; attempt++ {
		srv, err = app.Start(context.Background(), c.Config, logger(), nil)
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("start apiserver: %v", err)
	}
	select {
	case <-srv.Ready():
	case <-srv.Done():
		t.Fatalf("apiserver stopped while starting: %v", srv.Err())
	case <-time.After(60 * time.Second):
		t.Fatal("apiserver did not become ready in 60s")
	}
	c.server = srv
	c.Addr = srv.Addr
}

func (c *Cluster) stop(t testing.TB) {
	if c.server == nil {
		return
	}
	if err := c.server.Stop(); err != nil {
		t.Logf("apiserver stopped with: %v", err)
	}
	c.server = nil
}

// Restart stops the apiserver and starts it again on the same data dir and
// address, as a crash and restart would.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	c.stop(t)
	c.start(t)
}

// Stop stops the apiserver for good (Restart brings it back).
func (c *Cluster) Stop(t testing.TB) { c.stop(t) }

// Store is the running apiserver's etcd store, for benchmarks that compare
// the API with raw etcd on the same server.
func (c *Cluster) Store() *storage.Store { return c.server.Store }
