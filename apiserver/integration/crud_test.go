package integration

import (
	"context"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/testcluster"
	"github.com/skiff-dev/skiff/proto/api"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func nginxPod(name string) *api.Pod {
	return &api.Pod{
		Metadata: &api.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "nginx"}},
		Spec:     &api.PodSpec{Containers: []*api.Container{{Name: "nginx", Image: "nginx"}}},
	}
}

func TestSmokeCreateGetList(t *testing.T) {
	c := testcluster.Start(t)
	ctx := ctx(t)
	pods := c.Client.Pods()
	created, err := pods.Create(ctx, nginxPod("web"))
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if created.Metadata.Uid == "" || created.Metadata.ResourceVersion == "" {
		t.Fatalf("server fields not set: %v", created.Metadata)
	}
	got, err := pods.Get(ctx, "default", "web")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Metadata.ResourceVersion != created.Metadata.ResourceVersion {
		t.Fatalf("rv %s != %s", got.Metadata.ResourceVersion, created.Metadata.ResourceVersion)
	}
	list, _, err := pods.List(ctx, "default", client.ListOptions{})
	if err != nil || len(list) != 1 {
		t.Fatalf("list = %v, %v", list, err)
	}
}
