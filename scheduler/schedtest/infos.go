package schedtest

import (
	"testing"

	"github.com/skiff-dev/skiff/proto/api"
	"github.com/skiff-dev/skiff/scheduler/framework"
)

// PodInfo computes a PodInfo, failing the test on bad quantities.
func PodInfo(t testing.TB, pod *api.Pod) *framework.PodInfo {
	t.Helper()
	pi, err := framework.NewPodInfo(pod)
	if err != nil {
		t.Fatalf("NewPodInfo: %v", err)
	}
	return pi
}

// NodeInfo builds a NodeInfo for node with pods counted on it.
func NodeInfo(t testing.TB, node *api.Node, pods ...*api.Pod) *framework.NodeInfo {
	t.Helper()
	ni := &framework.NodeInfo{}
	if err := ni.SetNode(node); err != nil {
		t.Fatalf("SetNode: %v", err)
	}
	for _, p := range pods {
		ni.AddPod(PodInfo(t, p))
	}
	return ni
}
