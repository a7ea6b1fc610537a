package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/containerd/containerd/api/services/tasks/v1"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// PodRef names the pod a containerd object belongs to.
type PodRef struct {
	UID, Namespace, Name string
}

func (p PodRef) labels(kind string) map[string]string {
	return map[string]string{LabelKind: kind, LabelPodUID: p.UID, LabelPodNamespace: p.Namespace, LabelPodName: p.Name}
}

// ContainerSpec is what CreateContainer needs to run one container of a pod.
type ContainerSpec struct {
	Pod          PodRef
	Name         string
	RestartCount int
	// Image is the image as the pod names it; ImageRef the pulled image.
	Image string
	Img   containerd.Image
	// Command and Args follow Kubernetes: Command replaces the image's
	// entrypoint, Args its cmd.
	Command, Args []string
	Env           []string
	WorkingDir    string
	Hostname      string
	// NetNSPath is the pod's network namespace; HostNetwork runs in the
	// node's instead.
	NetNSPath   string
	HostNetwork bool
	Mounts      []specs.Mount
	// LogPath receives the container's stdout and stderr.
	LogPath string
	// MemoryLimit is in bytes; CPUMilli in millicores. Zero: unlimited.
	MemoryLimit int64
	CPUMilli    int64
}

// ContainerID is the containerd id of one run of a pod's container: stable
// for (pod, name, restart), so a retried create finds its earlier attempt.
func ContainerID(podUID, name string, restart int) string {
	sum := sha256.Sum256([]byte(podUID + "/" + name + "/" + strconv.Itoa(restart)))
	return hex.EncodeToString(sum[:])
}

// Status of a container as containerd reports it.
type Status string

const (
	StatusCreated Status = "created" // no task yet, or a task not started
	StatusRunning Status = "running"
	StatusExited  Status = "exited"
	StatusUnknown Status = "unknown"
)

// Container is one run of a pod's container, read back from containerd.
type Container struct {
	ID           string
	Pod          PodRef
	Name         string
	RestartCount int
	Image        string
	ImageRef     string
	LogPath      string
	Status       Status
	ExitCode     int
	StartedAt    time.Time
	FinishedAt   time.Time
	Pid          uint32
}

// createTimeout bounds a container create, which its caller cannot cancel.
const createTimeout = 2 * time.Minute

// CreateContainer creates and starts a container. Its stdout and stderr go
// to spec.LogPath through the shim, so logging survives kubelet restarts.
//
// ctx's cancellation does not cut the create short (only createTimeout
// does): containerd finishes a task create whose caller gave up, and the
// runc create behind it then makes the container's cgroups (and the pod
// cgroup above them) after the caller has cleaned up, leaving them to
// nobody. A caller that no longer wants the container removes it after.
func (r *Runtime) CreateContainer(ctx context.Context, spec ContainerSpec) (*Container, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
	defer cancel()
	id := ContainerID(spec.Pod.UID, spec.Name, spec.RestartCount)
	imgCfg, err := spec.Img.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("container %s: image config: %w", spec.Name, err)
	}
	args := processArgs(imgCfg.Config.Entrypoint, imgCfg.Config.Cmd, spec.Command, spec.Args)
	if len(args) == 0 {
		return nil, fmt.Errorf("container %s: no command: the image has none and the pod sets none", spec.Name)
	}
	opts := []oci.SpecOpts{
		oci.WithImageConfig(spec.Img),
		oci.WithProcessArgs(args...),
		oci.WithHostname(spec.Hostname),
		oci.WithMounts(spec.Mounts),
		oci.WithCgroup(r.PodCgroup(spec.Pod.UID) + "/" + id),
	}
	switch {
	case spec.HostNetwork:
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace))
	case spec.NetNSPath != "":
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: spec.NetNSPath}))
	}
	if len(spec.Env) > 0 {
		opts = append(opts, oci.WithEnv(spec.Env))
	}
	if spec.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(spec.WorkingDir))
	}
	if spec.MemoryLimit > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(spec.MemoryLimit)))
	}
	if spec.CPUMilli > 0 {
		opts = append(opts, oci.WithCPUCFS(spec.CPUMilli*cfsPeriod/1000, cfsPeriod))
	}
	labels := spec.Pod.labels(KindContainer)
	labels[LabelContainerName] = spec.Name
	labels[LabelRestartCount] = strconv.Itoa(spec.RestartCount)
	labels[LabelImage] = spec.Image
	labels[LabelLogPath] = spec.LogPath

	if err := os.MkdirAll(filepath.Dir(spec.LogPath), 0o755); err != nil {
		return nil, fmt.Errorf("container %s: log dir: %w", spec.Name, err)
	}
	ctr, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		newContainer := func() (containerd.Container, error) {
			return r.client.NewContainer(ctx, id,
				containerd.WithImage(spec.Img),
				containerd.WithNewSnapshot(id, spec.Img),
				containerd.WithContainerLabels(labels),
				containerd.WithNewSpec(opts...),
			)
		}
		ctr, err = newContainer()
		if errdefs.IsAlreadyExists(err) {
			// No container, yet its snapshot: a create cut short between
			// the two (the kubelet killed). The snapshot is nobody's; the
			// same id would otherwise fail forever.
			if rerr := r.client.SnapshotService(defaults.DefaultSnapshotter).Remove(ctx, id); rerr != nil && !errdefs.IsNotFound(rerr) {
				return nil, fmt.Errorf("create container %s: remove orphaned snapshot: %w", spec.Name, rerr)
			}
			r.log.Warn("removed an orphaned snapshot of an unfinished create", "container", spec.Name, "snapshot", id)
			ctr, err = newContainer()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create container %s: %w", spec.Name, err)
	}
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		task, err = ctr.NewTask(ctx, cio.LogFile(spec.LogPath))
	}
	if err != nil {
		return nil, fmt.Errorf("create task of %s: %w", spec.Name, err)
	}
	if err := task.Start(ctx); err != nil {
		cctx, cancel := CleanupContext(ctx)
		defer cancel()
		if _, derr := task.Delete(cctx, containerd.WithProcessKill); derr != nil {
			r.log.Warn("delete failed task", "container", spec.Name, "err", derr)
		}
		return nil, fmt.Errorf("start container %s: %w", spec.Name, err)
	}
	labels[LabelStartedAt] = time.Now().UTC().Format(time.RFC3339Nano)
	if _, err := ctr.SetLabels(ctx, map[string]string{LabelStartedAt: labels[LabelStartedAt]}); err != nil {
		return nil, fmt.Errorf("label container %s: %w", spec.Name, err)
	}
	return r.inspect(ctx, ctr)
}

// processArgs applies Kubernetes' rules for command and args over the
// image's entrypoint and cmd.
func processArgs(entrypoint, cmd, command, args []string) []string {
	switch {
	case len(command) > 0:
		return append(append([]string{}, command...), args...)
	case len(args) > 0:
		return append(append([]string{}, entrypoint...), args...)
	default:
		return append(append([]string{}, entrypoint...), cmd...)
	}
}

// Containers lists every pod container the kubelet made, running or not,
// ordered by pod, name and restart count.
func (r *Runtime) Containers(ctx context.Context) ([]*Container, error) {
	return r.list(ctx, fmt.Sprintf("labels.%q==%s", LabelKind, KindContainer))
}

// PodContainers lists the container runs of one pod, ordered by name and
// restart count.
func (r *Runtime) PodContainers(ctx context.Context, podUID string) ([]*Container, error) {
	return r.list(ctx, fmt.Sprintf("labels.%q==%s,labels.%q==%q", LabelKind, KindContainer, LabelPodUID, podUID))
}

func (r *Runtime) list(ctx context.Context, filter string) ([]*Container, error) {
	ctrs, err := r.client.Containers(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]*Container, 0, len(ctrs))
	for _, ctr := range ctrs {
		c, err := r.inspect(ctx, ctr)
		if errdefs.IsNotFound(err) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Pod.UID != b.Pod.UID {
			return a.Pod.UID < b.Pod.UID
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.RestartCount < b.RestartCount
	})
	return out, nil
}

func (r *Runtime) inspect(ctx context.Context, ctr containerd.Container) (*Container, error) {
	info, err := ctr.Info(ctx)
	if err != nil {
		return nil, err
	}
	l := info.Labels
	restarts, _ := strconv.Atoi(l[LabelRestartCount])
	c := &Container{
		ID:   ctr.ID(),
		Pod:  PodRef{UID: l[LabelPodUID], Namespace: l[LabelPodNamespace], Name: l[LabelPodName]},
		Name: l[LabelContainerName], RestartCount: restarts, Image: l[LabelImage], ImageRef: info.Image,
		LogPath: l[LabelLogPath], Status: StatusCreated,
	}
	if t, err := time.Parse(time.RFC3339Nano, l[LabelStartedAt]); err == nil {
		c.StartedAt = t
	}
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("task of %s: %w", c.ID, err)
	}
	c.Pid = task.Pid()
	st, err := task.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", c.ID, err)
	}
	switch st.Status {
	case containerd.Running, containerd.Paused, containerd.Pausing:
		c.Status = StatusRunning
	case containerd.Stopped:
		c.Status = StatusExited
		c.ExitCode = int(st.ExitStatus)
		c.FinishedAt = st.ExitTime
	case containerd.Created:
		c.Status = StatusCreated
	default:
		c.Status = StatusUnknown
	}
	return c, nil
}

// StopContainer sends SIGTERM, waits up to grace for the container to exit,
// then kills it with SIGKILL. A container already gone or stopped is fine.
func (r *Runtime) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	ctr, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	if st.Status == containerd.Stopped {
		return nil
	}
	exited, err := task.Wait(ctx)
	if err != nil {
		return fmt.Errorf("stop %s: wait: %w", id, err)
	}
	if grace > 0 {
		if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("stop %s: SIGTERM: %w", id, err)
		}
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-exited:
			return nil
		case <-timer.C:
			r.log.Info("grace period over, killing", "container", id, "grace", grace)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("stop %s: SIGKILL: %w", id, err)
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RemoveContainer deletes a container's task, the container and its
// snapshot. Its log file stays for `logs --previous` until the pod goes.
func (r *Runtime) RemoveContainer(ctx context.Context, id string) error {
	ctr, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	if task, err := ctr.Task(ctx, nil); err == nil {
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove %s: delete task: %w", id, err)
		}
	} else if !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	if err := ctr.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	return nil
}

// ErrNotRunning is returned when exec targets a container without a
// running task.
var ErrNotRunning = errors.New("container is not running")

// PodFingerprints returns, for each pod uid with containers, a string that
// changes whenever one of its containers is created, removed, starts or
// exits. It costs two calls to containerd however many containers run, so
// it can be polled every second.
func (r *Runtime) PodFingerprints(ctx context.Context) (map[string]string, error) {
	recs, err := r.client.ContainerService().List(ctx, fmt.Sprintf("labels.%q==%s", LabelKind, KindContainer))
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	resp, err := r.client.TaskService().List(ctx, &tasks.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	state := map[string]string{}
	for _, t := range resp.GetTasks() {
		// A task's id is its container's (containerd 1.6 leaves
		// container_id empty).
		id := t.GetContainerID()
		if id == "" {
			id = t.GetID()
		}
		state[id] = fmt.Sprintf("%s/%d", t.GetStatus(), t.GetExitStatus())
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].ID < recs[j].ID })
	out := map[string]string{}
	for _, c := range recs {
		uid := c.Labels[LabelPodUID]
		out[uid] += c.ID + ":" + state[c.ID] + ";"
	}
	return out, nil
}
