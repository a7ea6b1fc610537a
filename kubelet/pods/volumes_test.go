package pods

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/skiff-dev/skiff/kubelet/status"
	"github.com/skiff-dev/skiff/kubelet/volumes"
	"github.com/skiff-dev/skiff/proto/api"
)

// missingConfigMaps answers NotFound to every read and counts them.
type missingConfigMaps struct{ reads atomic.Int32 }

func (g *missingConfigMaps) Get(_ context.Context, _, name string) (*api.ConfigMap, error) {
	g.reads.Add(1)
	return nil, grpcstatus.Errorf(codes.NotFound, "configmaps %q not found", name)
}

func TestFailingVolumeSetUpWaitsOutItsBackoff(t *testing.T) {
	root := t.TempDir()
	cms := &missingConfigMaps{}
	m := NewManager(Config{
		RootDir:       root,
		VolumeBackoff: status.Backoff{Initial: time.Hour, Max: time.Hour},
		Volumes:       volumes.New(volumes.Config{RootDir: root, ConfigMaps: cms}),
	}, nil, nil, nil)
	w := newWorker(m, "0b9f3f7e-8d7a-4c55-9a4e-2f0c1d6b7a11")
	pod := &api.Pod{
		Metadata: &api.ObjectMeta{Name: "waits", Namespace: "default", Uid: w.uid},
		Spec:     &api.PodSpec{Volumes: []*api.Volume{{Name: "config", ConfigMap: &api.ConfigMapVolumeSource{Name: "not-yet"}}}},
	}
	// Syncs come in bursts (status writes, probe verdicts): only the
	// first of them reads the ConfigMap.
	for range 10 {
		w.setUpVolumes(context.Background(), pod)
	}
	if n := cms.reads.Load(); n != 1 {
		t.Fatalf("%d ConfigMap reads in one back-off, want 1", n)
	}
	waiting, next := w.volumesWaiting()
	if waiting == nil || waiting.Reason != status.ReasonCreateContainerConfigError {
		t.Fatalf("waiting = %v, want CreateContainerConfigError", waiting)
	}
	if d := time.Until(next); d < 59*time.Minute {
		t.Errorf("next attempt in %s, want the back-off (1h)", d)
	}
	// Once the back-off has passed, the next sync tries again.
	w.vol.next = time.Now().Add(-time.Millisecond)
	w.setUpVolumes(context.Background(), pod)
	if n := cms.reads.Load(); n != 2 {
		t.Errorf("%d ConfigMap reads after the back-off, want 2", n)
	}
}
