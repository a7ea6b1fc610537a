package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/apiserver/app"
	"github.com/skiff-dev/skiff/internal/etcdtest"
	"github.com/skiff-dev/skiff/internal/testcluster"
)

func TestExternalEtcdClusterSurvivesLosingItsLeader(t *testing.T) {
	etcd := etcdtest.StartT(t, etcdtest.Options{Members: 3})
	ctx := ctx(t)
	leader, err := etcd.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}

	c := testcluster.Start(t, func(cfg *app.Config) { cfg.EtcdServers = etcd.Endpoints() })
	pods := c.Client.Pods()
	for i := 0; i < 5; i++ {
		if _, err := pods.Create(ctx, nginxPod(fmt.Sprintf("before-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	// Writes and reads go on once the other two elect a new leader.
	for i := 0; i < 5; i++ {
		name := fmt.Sprintf("after-%d", i)
		var err error
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if _, err = pods.Create(ctx, nginxPod(name)); err == nil || strings.Contains(err.Error(), "already exists") {
				err = nil
				break
			}
		}
		if err != nil {
			t.Fatalf("create %s after killing the etcd leader %s: %v", name, leader.Name, err)
		}
	}
	list, _, err := pods.List(ctx, "default", clientListAll())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 10 {
		t.Fatalf("%d pods after the leader died, want 10", len(list))
	}
}
