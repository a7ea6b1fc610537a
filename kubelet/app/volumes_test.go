package app

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/mounts"
	"github.com/skiff-dev/skiff/kubelet/volumes"
	"github.com/skiff-dev/skiff/proto/api"
)

// idle keeps a container running and lets it exit at once on SIGTERM.
const idle = `trap 'exit 0' TERM; while true; do sleep 1; done`

func (e *env) createVolumePod(t *testing.T, name string, vols []*api.Volume, containers ...*api.Container) *api.Pod {
	t.Helper()
	grace := int64(5)
	p, err := e.pods().Create(context.Background(), &api.Pod{
		Metadata: &api.ObjectMeta{Name: name, Namespace: "default"},
		Spec:     &api.PodSpec{NodeName: e.cfg.NodeName, Volumes: vols, Containers: containers, TerminationGracePeriodSeconds: &grace},
	})
	if err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
	return p
}

// waitExec runs cmd in a container until it prints want, for what the
// kubelet brings about asynchronously (a ConfigMap update).
func waitExec(t *testing.T, e *env, pod, container, want string, timeout time.Duration, cmd ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, errOut, code := execInContainer(t, e, pod, container, cmd...)
		if code == 0 && out == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s: %v printed %q (stderr %q, exit %d), want %q", pod, container, cmd, out, errOut, code, want)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (e *env) deleteAndWaitGone(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.pods().Delete(ctx, "default", name, client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := e.pods().Get(ctx, "default", name)
		if client.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s still present 60s after delete: %v", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mountsUnder lists what is mounted at or below dir in the test's (the
// kubelet's) mount namespace.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	out, err := mounts.Under(dir)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPodVolumesSharedUpdatedReadOnlyAndRemoved(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "hello"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cms := client.For[*api.ConfigMap](e.cluster.Client)
	if _, err := cms.Create(ctx, &api.ConfigMap{Metadata: &api.ObjectMeta{Name: "app-config", Namespace: "default"}, Data: map[string]string{"greeting": "hello v1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.For[*api.Secret](e.cluster.Client).Create(ctx, &api.Secret{Metadata: &api.ObjectMeta{Name: "db-creds", Namespace: "default"}, Data: map[string][]byte{"password": []byte("s3cret")}}); err != nil {
		t.Fatal(err)
	}
	writer := busybox("writer", `echo from-writer > /shared/msg; mkdir -p /shared/sub; echo in-sub > /shared/sub/file; `+idle)
	writer.VolumeMounts = []*api.VolumeMount{{Name: "shared", MountPath: "/shared"}, {Name: "host", MountPath: "/host", ReadOnly: true}}
	reader := busybox("reader", idle)
	reader.VolumeMounts = []*api.VolumeMount{
		{Name: "shared", MountPath: "/data"},
		{Name: "shared", MountPath: "/sub", SubPath: "sub"},
		{Name: "config", MountPath: "/etc/config"},
		{Name: "creds", MountPath: "/etc/creds"},
		{Name: "cache", MountPath: "/cache"},
	}
	pod := e.createVolumePod(t, "vols", []*api.Volume{
		{Name: "shared", EmptyDir: &api.EmptyDirVolumeSource{}},
		{Name: "cache", EmptyDir: &api.EmptyDirVolumeSource{Medium: "Memory", SizeLimit: "8Mi"}},
		{Name: "config", ConfigMap: &api.ConfigMapVolumeSource{Name: "app-config"}},
		{Name: "creds", Secret: &api.SecretVolumeSource{SecretName: "db-creds"}},
		{Name: "host", HostPath: &api.HostPathVolumeSource{Path: host, Type: "Directory"}},
	}, writer, reader)
	uid := pod.GetMetadata().GetUid()
	e.waitPod(t, "vols", 90*time.Second, "Running", running)

	t.Run("containers share an emptyDir", func(t *testing.T) {
		waitExec(t, e, "vols", "reader", "from-writer\n", 20*time.Second, "cat", "/data/msg")
		// The subPath was made by the kubelet before the writer wrote into
		// it, and shows the same directory.
		waitExec(t, e, "vols", "reader", "in-sub\n", 20*time.Second, "cat", "/sub/file")
		if _, _, code := execInContainer(t, e, "vols", "reader", "sh", "-c", "echo back > /data/reply"); code != 0 {
			t.Fatal("reader cannot write the emptyDir")
		}
		waitExec(t, e, "vols", "writer", "back\n", 5*time.Second, "cat", "/shared/reply")
	})

	t.Run("a memory emptyDir is a tmpfs of its size limit", func(t *testing.T) {
		out, _, code := execInContainer(t, e, "vols", "reader", "sh", "-c", "grep ' /cache ' /proc/mounts; df -k /cache | tail -1")
		if code != 0 || !strings.Contains(out, "tmpfs /cache tmpfs") || !strings.Contains(out, " 8192 ") {
			t.Errorf("/cache: %q, want an 8Mi tmpfs", out)
		}
	})

	t.Run("secret and configMap volumes show their keys read-only", func(t *testing.T) {
		waitExec(t, e, "vols", "reader", "s3cret", 5*time.Second, "cat", "/etc/creds/password")
		waitExec(t, e, "vols", "reader", "hello v1", 5*time.Second, "cat", "/etc/config/greeting")
		for _, f := range []string{"/etc/creds/x", "/etc/config/x"} {
			if _, _, code := execInContainer(t, e, "vols", "reader", "sh", "-c", "echo x > "+f); code == 0 {
				t.Errorf("container wrote %s", f)
			}
		}
		// On the node the Secret lives in memory only.
		var st unix.Statfs_t
		dir := filepath.Join(e.cfg.RootDir, "pods", uid, "volumes", volumes.PluginSecret, "creds")
		if err := unix.Statfs(dir, &st); err != nil || st.Type != unix.TMPFS_MAGIC {
			t.Errorf("secret volume %s: filesystem %x (%v), want tmpfs", dir, st.Type, err)
		}
	})

	t.Run("a read-only hostPath cannot be written", func(t *testing.T) {
		waitExec(t, e, "vols", "writer", "from the host\n", 5*time.Second, "cat", "/host/hello")
		_, errOut, code := execInContainer(t, e, "vols", "writer", "sh", "-c", "echo x > /host/new")
		if code == 0 || !strings.Contains(errOut, "Read-only file system") {
			t.Errorf("write to the read-only hostPath: exit %d, stderr %q", code, errOut)
		}
		if _, err := os.Stat(filepath.Join(host, "new")); err == nil {
			t.Error("the container created a file in the read-only host directory")
		}
	})

	t.Run("a restarted kubelet adopts the pod and its volumes", func(t *testing.T) {
		before := e.containers(t)
		e.stop()
		e.start()
		time.Sleep(3 * time.Second) // a relist and a sync of the pod
		after := e.containers(t)
		if len(before) != 2 || len(after) != 2 || before[0].Pid != after[0].Pid || before[1].Pid != after[1].Pid {
			t.Fatalf("containers before the restart %+v, after %+v", before, after)
		}
		secretDir := filepath.Join(e.cfg.RootDir, "pods", uid, "volumes", volumes.PluginSecret, "creds")
		if n := len(mountsUnder(t, secretDir)); n != 1 {
			t.Errorf("%d mounts on the secret volume after the restart, want 1", n)
		}
		waitExec(t, e, "vols", "reader", "from-writer\n", 5*time.Second, "cat", "/data/msg")
	})

	t.Run("a ConfigMap update reaches the running container", func(t *testing.T) {
		cm, err := cms.Get(ctx, "default", "app-config")
		if err != nil {
			t.Fatal(err)
		}
		cm.Data = map[string]string{"greeting": "hello v2", "added": "yes"}
		if _, err := cms.Update(ctx, cm); err != nil {
			t.Fatal(err)
		}
		// Within a resync (5s here, 20s by default) and the kubelet's sync.
		waitExec(t, e, "vols", "reader", "hello v2 yes", 30*time.Second, "sh", "-c", "echo -n $(cat /etc/config/greeting) $(cat /etc/config/added)")
	})

	t.Run("deleting the pod removes its volumes and keeps the host's files", func(t *testing.T) {
		e.deleteAndWaitGone(t, "vols")
		if _, err := os.Stat(filepath.Join(e.cfg.RootDir, "pods", uid)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("pod dir left: %v", err)
		}
		if left := mountsUnder(t, e.cfg.RootDir); len(left) != 0 {
			t.Errorf("mounts left under the kubelet's root: %v", left)
		}
		if b, err := os.ReadFile(filepath.Join(host, "hello")); err != nil || string(b) != "from the host\n" {
			t.Errorf("host file after delete: %q %v", b, err)
		}
	})
}

func TestPodVolumesWaitForTheirObjectsAndOrphansAreCleanedUp(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	// A pod that finished gives its volumes back (a memory emptyDir's
	// tmpfs) while its object and logs stay.
	grace := int64(1)
	job, err := e.pods().Create(ctx, &api.Pod{
		Metadata: &api.ObjectMeta{Name: "job", Namespace: "default"},
		Spec: &api.PodSpec{NodeName: e.cfg.NodeName, RestartPolicy: "Never", TerminationGracePeriodSeconds: &grace,
			Volumes: []*api.Volume{{Name: "mem", EmptyDir: &api.EmptyDirVolumeSource{Medium: "Memory"}}},
			Containers: []*api.Container{func() *api.Container {
				c := busybox("main", "echo done > /mem/out && cat /mem/out")
				c.VolumeMounts = []*api.VolumeMount{{Name: "mem", MountPath: "/mem"}}
				return c
			}()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.waitPod(t, "job", 60*time.Second, "Succeeded", func(p *api.Pod) bool { return p.GetStatus().GetPhase() == "Succeeded" })
	jobVolumes := filepath.Join(e.cfg.RootDir, "pods", job.GetMetadata().GetUid(), "volumes")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(jobVolumes); errors.Is(err, fs.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the finished pod's volumes are still there: %v", mountsUnder(t, jobVolumes))
		}
	}
	if logs := logsOf(t, e, "job", false); logs != "done\n" {
		t.Errorf("finished pod's logs %q", logs)
	}

	// A missing ConfigMap keeps the pod from starting, says why, and the
	// pod starts once the ConfigMap exists.
	c := busybox("main", idle)
	c.VolumeMounts = []*api.VolumeMount{{Name: "config", MountPath: "/config"}}
	e.createVolumePod(t, "waits", []*api.Volume{{Name: "config", ConfigMap: &api.ConfigMapVolumeSource{Name: "not-yet"}}}, c)
	p := e.waitPod(t, "waits", 60*time.Second, "CreateContainerConfigError", func(p *api.Pod) bool {
		return waitingReason(p) == "CreateContainerConfigError"
	})
	if msg := p.GetStatus().GetContainerStatuses()[0].GetState().GetWaiting().GetMessage(); !strings.Contains(msg, `configmap "not-yet" not found`) || !strings.Contains(msg, `volume "config"`) {
		t.Errorf("waiting message %q does not name the volume and the ConfigMap", msg)
	}
	if p.GetStatus().GetPhase() != "Pending" {
		t.Errorf("phase %s, want Pending", p.GetStatus().GetPhase())
	}

	// A hostPath of the wrong type is refused the same way.
	hc := busybox("main", idle)
	hc.VolumeMounts = []*api.VolumeMount{{Name: "h", MountPath: "/h"}}
	e.createVolumePod(t, "badhost", []*api.Volume{{Name: "h", HostPath: &api.HostPathVolumeSource{Path: t.TempDir(), Type: "File"}}}, hc)
	p = e.waitPod(t, "badhost", 60*time.Second, "CreateContainerConfigError", func(p *api.Pod) bool {
		return waitingReason(p) == "CreateContainerConfigError"
	})
	if msg := p.GetStatus().GetContainerStatuses()[0].GetState().GetWaiting().GetMessage(); !strings.Contains(msg, "hostPath type check failed") || !strings.Contains(msg, "is not a file") {
		t.Errorf("waiting message %q does not explain the hostPath check", msg)
	}
	evs, _, err := e.cluster.Client.Events().List(ctx, "default", client.ListOptions{FieldSelector: "involvedObject.name=waits"})
	if err != nil {
		t.Fatal(err)
	}
	var sawFailedMount bool
	for _, ev := range evs {
		sawFailedMount = sawFailedMount || (ev.GetReason() == "FailedMount" && strings.Contains(ev.GetMessage(), "not-yet"))
	}
	if !sawFailedMount {
		t.Errorf("no FailedMount event naming the ConfigMap among %d events", len(evs))
	}

	if _, err := client.For[*api.ConfigMap](e.cluster.Client).Create(ctx, &api.ConfigMap{Metadata: &api.ObjectMeta{Name: "not-yet", Namespace: "default"}, Data: map[string]string{"k": "now"}}); err != nil {
		t.Fatal(err)
	}
	waiting := e.waitPod(t, "waits", 60*time.Second, "Running", running)
	waitExec(t, e, "waits", "", "now", 5*time.Second, "cat", "/config/k")
	zero := int64(0)
	if _, err := e.pods().Delete(ctx, "default", "badhost", client.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}

	// A pod removed while the kubelet is down, and a pod directory with a
	// volume still mounted that nothing in containerd accounts for (a
	// teardown cut short): the restarted kubelet removes both, unmounting
	// first.
	uid := waiting.GetMetadata().GetUid()
	e.stop()
	if _, err := e.pods().Delete(ctx, "default", "waits", client.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(e.cfg.RootDir, "pods", "orphaned-uid")
	mem := filepath.Join(leftover, "volumes", volumes.PluginEmptyDir, "mem")
	if err := os.MkdirAll(mem, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mem, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "keep"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	bound := filepath.Join(leftover, "volume-subpaths", "h", "main", "0")
	if err := os.MkdirAll(bound, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(host, bound, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	e.start()
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, errA := os.Stat(filepath.Join(e.cfg.RootDir, "pods", uid))
		_, errB := os.Stat(leftover)
		if errors.Is(errA, fs.ErrNotExist) && errors.Is(errB, fs.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod dirs left after the kubelet restarted: deleted pod %v, leftover %v", errA, errB)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if left := mountsUnder(t, e.cfg.RootDir); len(left) != 0 {
		t.Errorf("mounts left under the kubelet's root: %v", left)
	}
	if b, err := os.ReadFile(filepath.Join(host, "keep")); err != nil || string(b) != "keep" {
		t.Errorf("the orphan's bound host directory lost its file: %q %v", b, err)
	}
}
