package app

import (
	"context"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/proto/api"
)

func TestInitContainerPreparesAnEmptyDirForTheApp(t *testing.T) {
	e := newEnv(t)
	mount := []*api.VolumeMount{{Name: "work", MountPath: "/work"}}
	first := busybox("fetch", "echo fetched > /work/data")
	first.VolumeMounts = mount
	second := busybox("check", "test -f /work/data && echo checked >> /work/data")
	second.VolumeMounts = mount
	app := busybox("app", "cat /work/data; sleep 1000")
	app.VolumeMounts = mount
	grace := int64(1)
	if _, err := e.pods().Create(context.Background(), &api.Pod{
		Metadata: &api.ObjectMeta{Name: "prepared", Namespace: "default"},
		Spec: &api.PodSpec{NodeName: e.cfg.NodeName, TerminationGracePeriodSeconds: &grace,
			Volumes:        []*api.Volume{{Name: "work", EmptyDir: &api.EmptyDirVolumeSource{}}},
			InitContainers: []*api.Container{first, second}, Containers: []*api.Container{app}},
	}); err != nil {
		t.Fatal(err)
	}
	e.waitPod(t, "prepared", 60*time.Second, "Running", running)
	if logs := e.waitContainerLogs(t, "prepared", "app", "fetched\nchecked\n", 30*time.Second); logs != "fetched\nchecked\n" {
		t.Errorf("app saw %q, want what the init containers wrote in order", logs)
	}
}
