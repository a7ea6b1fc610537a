// Package pods runs the pods bound to this node: one worker goroutine per
// pod makes containerd and the pod network match the pod's spec, runs the
// init containers one at a time to completion before the app containers,
// restarts containers under the restartPolicy with back-off, runs probes
// (startup, then readiness and liveness), reports status to the apiserver
// when it changes, and on deletion stops the containers gracefully, tears
// the sandbox down and removes the pod object.
//
// Every sync is level-based: it reads what containerd runs (labels carry the
// pod uid, container name and restart count) and acts on the difference, so
// a restarted kubelet adopts running pods instead of restarting them, and
// finds completed init containers completed. It must never keep state that
// containerd cannot give back, beyond back-off timers and probe verdicts
// that are fine to lose (a startup probe's success is taken back from the
// pod's status, so a restarted kubelet does not hold a started container's
// other probes back again).
package pods

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/events"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/kubelet/cni"
	"github.com/skiff-dev/skiff/kubelet/probe"
	"github.com/skiff-dev/skiff/kubelet/runtime"
	"github.com/skiff-dev/skiff/kubelet/status"
	"github.com/skiff-dev/skiff/kubelet/volumes"
	"github.com/skiff-dev/skiff/proto/api"
)

// PodAPI is what the workers need from the apiserver: it is satisfied by
// client.For[*api.Pod].
type PodAPI interface {
	Get(ctx context.Context, namespace, name string) (*api.Pod, error)
	UpdateStatus(ctx context.Context, pod *api.Pod) (*api.Pod, error)
	Delete(ctx context.Context, namespace, name string, opts client.DeleteOptions) (*api.Pod, error)
}

// Config configures the pod workers.
type Config struct {
	NodeName string
	// NodeIP is the pods' status.hostIP.
	NodeIP string
	// RootDir holds pods/<uid>/ with logs, hosts and resolv.conf.
	RootDir string
	// ClusterDNS is the nameserver of ClusterFirst pods; empty uses the
	// node's resolv.conf.
	ClusterDNS    string
	ClusterDomain string
	// Backoff applies to container restarts and image pulls.
	Backoff status.Backoff
	// VolumeBackoff spaces the set-ups of a pod's volumes that fail
	// (default status.VolumeBackoff).
	VolumeBackoff status.Backoff
	// RelistPeriod is how often containerd is compared with what the
	// workers last saw, to notice exits (the PLEG of Kubernetes).
	RelistPeriod time.Duration
	// OrphanGracePeriod is the grace period for pods found running that
	// the apiserver no longer has.
	OrphanGracePeriod time.Duration
	// Recorder receives the pods' Events (Pulling, Started, BackOff...);
	// nil records none.
	Recorder events.EventRecorder
	// Volumes sets up and tears down the pods' volumes; nil makes one on
	// RootDir without an apiserver client (configMap and secret volumes
	// then fail).
	Volumes *volumes.Manager
	// VolumeRefreshPeriod is the least time between two set-ups of a
	// pod's volumes (ConfigMap and Secret reads) while they succeed;
	// default 5s, under the 20s resync that brings updates.
	VolumeRefreshPeriod time.Duration
	Logger              *slog.Logger
}

// Manager owns the pod workers.
type Manager struct {
	cfg    Config
	rt     *runtime.Runtime
	net    *cni.Network
	api    PodAPI
	prober *probe.Prober
	vols   *volumes.Manager
	log    *slog.Logger

	mu      sync.Mutex
	workers map[string]*worker // by pod uid
	ctx     context.Context    // set by Run; workers live under it
	wg      sync.WaitGroup
	started chan struct{}
}

// NewManager makes a manager; call Run to start it.
func NewManager(cfg Config, rt *runtime.Runtime, network *cni.Network, podAPI PodAPI) *Manager {
	if cfg.Backoff == (status.Backoff{}) {
		cfg.Backoff = status.DefaultBackoff()
	}
	if cfg.VolumeBackoff == (status.Backoff{}) {
		cfg.VolumeBackoff = status.VolumeBackoff()
	}
	if cfg.RelistPeriod == 0 {
		cfg.RelistPeriod = time.Second
	}
	if cfg.OrphanGracePeriod == 0 {
		cfg.OrphanGracePeriod = 2 * time.Second
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = "cluster.local"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Recorder == nil {
		cfg.Recorder = discardEvents{}
	}
	if cfg.VolumeRefreshPeriod == 0 {
		cfg.VolumeRefreshPeriod = 5 * time.Second
	}
	if cfg.Volumes == nil {
		cfg.Volumes = volumes.New(volumes.Config{RootDir: cfg.RootDir, Logger: cfg.Logger})
	}
	m := &Manager{
		cfg: cfg, rt: rt, net: network, api: podAPI, vols: cfg.Volumes, log: cfg.Logger,
		workers: map[string]*worker{}, started: make(chan struct{}),
	}
	m.prober = &probe.Prober{
		Exec: func(ctx context.Context, id string, cmd []string, out io.Writer) (int, error) {
			return rt.Exec(ctx, id, runtime.ExecOptions{Command: cmd, Stdout: out, Stderr: out})
		},
		HTTP: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
	return m
}

// Run relists containerd every RelistPeriod, waking the workers of pods
// whose containers changed, until ctx ends; then it waits for the workers.
// Stopping the kubelet never stops containers.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	m.ctx = ctx
	m.mu.Unlock()
	close(m.started)
	defer m.wg.Wait()
	seen := map[string]string{}
	t := time.NewTicker(m.cfg.RelistPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now, err := m.rt.PodFingerprints(ctx)
		if err != nil {
			if ctx.Err() == nil {
				m.log.Warn("relist containers", "err", err)
			}
			continue
		}
		for uid, fp := range now {
			if seen[uid] != fp {
				m.wake(uid)
			}
		}
		for uid := range seen {
			if _, ok := now[uid]; !ok {
				m.wake(uid)
			}
		}
		seen = now
	}
}

func (m *Manager) wake(uid string) {
	m.mu.Lock()
	w := m.workers[uid]
	m.mu.Unlock()
	if w != nil {
		w.poke()
	}
}

// UpdatePod hands the latest version of a pod bound to this node to its
// worker, starting one when needed.
func (m *Manager) UpdatePod(pod *api.Pod) {
	if pod.GetSpec().GetNodeName() != m.cfg.NodeName {
		return
	}
	m.startOrUpdate(pod.GetMetadata().GetUid(), pod, false)
}

// DeletePod tells the worker the pod is gone from the apiserver: its
// containers are stopped and everything removed.
func (m *Manager) DeletePod(pod *api.Pod) {
	m.startOrUpdate(pod.GetMetadata().GetUid(), pod, true)
}

func (m *Manager) startOrUpdate(uid string, pod *api.Pod, gone bool) {
	<-m.started
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx.Err() != nil {
		return
	}
	w, ok := m.workers[uid]
	if !ok {
		w = newWorker(m, uid)
		m.workers[uid] = w
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			w.run(m.ctx)
		}()
	}
	w.update(pod, gone)
}

func (m *Manager) workerDone(uid string, w *worker) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.workers[uid] == w {
		delete(m.workers, uid)
	}
}

// CleanupOrphans finds pods that containerd runs but the apiserver no
// longer has (deleted while the kubelet was down) and removes them. exists
// reports whether a pod uid is known to the apiserver; call it only once
// the pod cache is synced.
func (m *Manager) CleanupOrphans(ctx context.Context, exists func(uid string) bool) error {
	sbs, err := m.rt.Sandboxes(ctx)
	if err != nil {
		return err
	}
	ctrs, err := m.rt.Containers(ctx)
	if err != nil {
		return err
	}
	refs := map[string]runtime.PodRef{}
	for _, sb := range sbs {
		refs[sb.Pod.UID] = sb.Pod
	}
	for _, c := range ctrs {
		refs[c.Pod.UID] = c.Pod
	}
	for uid, ref := range refs {
		m.mu.Lock()
		_, running := m.workers[uid]
		m.mu.Unlock()
		if running || exists(uid) {
			continue
		}
		m.log.Info("cleaning up orphaned pod", "pod", ref.Namespace+"/"+ref.Name, "uid", uid)
		m.DeletePod(&api.Pod{Metadata: &api.ObjectMeta{Uid: uid, Namespace: ref.Namespace, Name: ref.Name}})
	}
	return nil
}

// Workers lists the uids of the pods with a worker, sorted.
func (m *Manager) Workers() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.workers))
	for uid := range m.workers {
		out = append(out, uid)
	}
	sort.Strings(out)
	return out
}

// PodDir is where a pod's files live on the node.
func (m *Manager) PodDir(uid string) string { return filepath.Join(m.cfg.RootDir, "pods", uid) }

// LogPath is the log file of one run of a container.
func (m *Manager) LogPath(uid, container string, restart int) string {
	return filepath.Join(m.PodDir(uid), container, fmt.Sprintf("%d.log", restart))
}

// FindContainer returns the current run (previous false) or the one before
// (previous true) of a pod's container, for exec and logs. An empty
// container name means the pod's only app container (init containers are
// asked for by name, as in Kubernetes).
func (m *Manager) FindContainer(ctx context.Context, namespace, pod, container string, previous bool) (*runtime.Container, error) {
	ctrs, err := m.rt.Containers(ctx)
	if err != nil {
		return nil, err
	}
	var runs []*runtime.Container
	names := map[string]bool{}
	initializing := false
	for _, c := range ctrs {
		if c.Pod.Namespace == namespace && c.Pod.Name == pod {
			if container == "" && m.isInitContainer(c.Pod.UID, c.Name) {
				initializing = true
				continue
			}
			names[c.Name] = true
			if container == "" || c.Name == container {
				runs = append(runs, c)
			}
		}
	}
	if len(names) == 0 && initializing {
		return nil, fmt.Errorf("pod %s/%s is initializing, its containers have not started; name an init container: %w", namespace, pod, ErrNoContainers)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("pod %s/%s: %w", namespace, pod, ErrNoContainers)
	}
	if container == "" && len(names) > 1 {
		var list []string
		for n := range names {
			list = append(list, n)
		}
		sort.Strings(list)
		return nil, fmt.Errorf("pod %s/%s has containers [%s]: %w", namespace, pod, strings.Join(list, " "), ErrContainerNameRequired)
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("container %s in pod %s/%s: %w", container, namespace, pod, ErrNoContainers)
	}
	// Containers are sorted by restart count; a pod recreated under the
	// same name has a newer uid, so prefer the newest sandbox's runs.
	cur := runs[len(runs)-1]
	if !previous {
		return cur, nil
	}
	for i := len(runs) - 2; i >= 0; i-- {
		if runs[i].Pod.UID == cur.Pod.UID && runs[i].Name == cur.Name {
			return runs[i], nil
		}
	}
	return nil, fmt.Errorf("previous terminated container %q in pod %s/%s: %w", cur.Name, namespace, pod, ErrNoContainers)
}

// isInitContainer reports whether name is an init container of the pod
// with uid, as its worker knows the pod.
func (m *Manager) isInitContainer(uid, name string) bool {
	for _, c := range m.workerPod(uid).GetSpec().GetInitContainers() {
		if c.GetName() == name {
			return true
		}
	}
	return false
}

type discardEvents struct{}

func (discardEvents) Eventf(kinds.Object, string, string, string, ...any) {}

// workerPod is the pod object the worker of uid holds; nil when no worker
// runs it or it knows no object.
func (m *Manager) workerPod(uid string) *api.Pod {
	m.mu.Lock()
	w := m.workers[uid]
	m.mu.Unlock()
	if w == nil {
		return nil
	}
	pod, _ := w.snapshot()
	return pod
}
