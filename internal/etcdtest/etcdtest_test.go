package etcdtest

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// TestLeaderKilledOthersElectAndItRejoins protects what fault tests rely
// on: killing the leader leaves a working majority with a new leader, and
// the killed member restarts on its data and serves the writes it missed.
func TestLeaderKilledOthersElectAndItRejoins(t *testing.T) {
	c := StartT(t, Options{})
	if len(c.Members) != 3 {
		t.Fatalf("%d members, want 3", len(c.Members))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, "before", "1"); err != nil {
		t.Fatal(err)
	}
	old, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Kill(); err != nil {
		t.Fatal(err)
	}
	if old.Alive() {
		t.Fatalf("%s runs after Kill", old.Name)
	}
	next, err := c.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if next == old {
		t.Fatalf("the killed member %s is still reported leader", old.Name)
	}
	if _, err := cli.Put(ctx, "after", "2"); err != nil {
		t.Fatalf("put with %s dead: %v", old.Name, err)
	}

	if err := old.Restart(); err != nil {
		t.Fatal(err)
	}
	// The restarted member answers a serializable (local) read with the
	// write it missed once it has caught up from the leader.
	one, err := clientv3.New(clientv3.Config{Endpoints: []string{old.ClientURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	for {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := one.Get(rctx, "after", clientv3.WithSerializable())
		rcancel()
		if err == nil && len(resp.Kvs) == 1 && string(resp.Kvs[0].Value) == "2" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("restarted %s never served the missed write: %v", old.Name, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func TestStartNeedsADir(t *testing.T) {
	if _, err := Start(context.Background(), Options{}); err == nil {
		t.Fatal("Start without Dir succeeded")
	}
}
