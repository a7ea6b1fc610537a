package schedtest

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/proto/api"
)

// RegisterNode creates a Node object with its status (no kubelet behind
// it): Create, then UpdateStatus when the apiserver kept status out.
func RegisterNode(t testing.TB, c *client.Client, node *api.Node) {
	t.Helper()
	ctx := context.Background()
	node = proto.Clone(node).(*api.Node)
	node.Metadata.Uid = ""
	created, err := c.Nodes().Create(ctx, node)
	if err != nil {
		t.Errorf("create node %s: %v", node.Metadata.Name, err)
		return
	}
	if !proto.Equal(created.GetStatus(), node.GetStatus()) {
		upd := proto.Clone(created).(*api.Node)
		upd.Status = node.Status
		if _, err := c.Nodes().UpdateStatus(ctx, upd); err != nil {
			t.Errorf("post node %s status: %v", node.Metadata.Name, err)
		}
	}
}

// CreatePod creates a pod (the apiserver assigns its uid).
func CreatePod(t testing.TB, c *client.Client, pod *api.Pod) {
	t.Helper()
	pod = proto.Clone(pod).(*api.Pod)
	pod.Metadata.Uid = ""
	if _, err := c.Pods().Create(context.Background(), pod); err != nil {
		t.Errorf("create pod %s: %v", pod.Metadata.Name, err)
	}
}
