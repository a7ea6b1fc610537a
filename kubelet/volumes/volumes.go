// Package volumes prepares and tears down a pod's volumes on the node and
// turns a container's volumeMounts into OCI bind mounts, as the Kubernetes
// kubelet's volume manager does for the in-tree emptyDir, hostPath,
// configMap and secret plugins.
//
// A pod's volumes live under <root>/pods/<uid>/volumes/<plugin>/<name>
// (plugin kubernetes.io~empty-dir, kubernetes.io~configmap,
// kubernetes.io~secret); subPath mounts under
// <root>/pods/<uid>/volume-subpaths. Everything is read back from the disk
// and the mount table, so a restarted kubelet picks up where it left off.
//
// It must never remove anything through a mount: a hostPath (or a subPath
// of one) shows the host's own files, so teardown unmounts, checks the
// mount table, and only then removes the kubelet's own directories. It
// never decides when a pod starts or stops: the pod workers do.
package volumes

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/mounts"
	"github.com/skiff-dev/skiff/proto/api"
)

// Volume plugin directory names, as Kubernetes spells them.
const (
	PluginEmptyDir  = "kubernetes.io~empty-dir"
	PluginConfigMap = "kubernetes.io~configmap"
	PluginSecret    = "kubernetes.io~secret"

	// MediumMemory backs an emptyDir with a tmpfs.
	MediumMemory = "Memory"

	volumesDirName  = "volumes"
	subPathsDirName = "volume-subpaths"
)

// File modes of the keys of ConfigMap and Secret volumes: Kubernetes'
// defaultMode, 0644 for both (the API has no defaultMode field to change
// it). A Secret's protection on the node is its tmpfs and the pod
// directory's 0750, not a narrower file mode that a container running as
// another user could not read.
const keyMode fs.FileMode = 0o644

// Getter reads one object of a namespaced kind: client.For[T] is one.
type Getter[T any] interface {
	Get(ctx context.Context, namespace, name string) (T, error)
}

// Config configures the volume manager.
type Config struct {
	// RootDir is the kubelet's root directory; pods live in RootDir/pods.
	RootDir string
	// ConfigMaps and Secrets read the objects configMap and secret
	// volumes show; nil fails such volumes.
	ConfigMaps Getter[*api.ConfigMap]
	Secrets    Getter[*api.Secret]
	Logger     *slog.Logger
}

// Manager sets up and tears down pods' volumes. It keeps no state of its
// own: one pod is handled by one goroutine at a time (its pod worker).
type Manager struct {
	cfg Config
	log *slog.Logger
}

// New makes a volume manager.
func New(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Manager{cfg: cfg, log: cfg.Logger}
}

// PodDir is the pod's directory on the node.
func (m *Manager) PodDir(uid string) string { return filepath.Join(m.cfg.RootDir, "pods", uid) }

// VolumesDir holds the pod's volumes.
func (m *Manager) VolumesDir(uid string) string { return filepath.Join(m.PodDir(uid), volumesDirName) }

func (m *Manager) subPathsDir(uid string) string {
	return filepath.Join(m.PodDir(uid), subPathsDirName)
}

// volumeDir is where a volume of one of the kubelet's plugins lives.
func (m *Manager) volumeDir(uid, plugin, name string) string {
	return filepath.Join(m.VolumesDir(uid), plugin, name)
}

// checkUID refuses a pod uid that is not one path element: it names the
// pod's directory, which teardown removes.
func checkUID(uid string) error {
	if uid == "" || uid == "." || uid == ".." || filepath.Base(uid) != uid {
		return fmt.Errorf("pod uid %q cannot name a pod directory", uid)
	}
	return nil
}

// SetUpError is a volume that could not be set up.
type SetUpError struct {
	Volume string
	Err    error
	// Stale: a ConfigMap or Secret volume that could not be refreshed
	// keeps the contents it last had, and containers may still mount it,
	// as in Kubernetes (a deleted ConfigMap does not stop a restart).
	Stale bool
}

func (e *SetUpError) Error() string {
	return fmt.Sprintf("MountVolume.SetUp failed for volume %q: %v", e.Volume, e.Err)
}

func (e *SetUpError) Unwrap() error { return e.Err }

// ErrNotFound wraps a ConfigMap or Secret that the pod names and the
// apiserver does not have.
var ErrNotFound = errors.New("not found")

// SetUp makes every volume of the pod ready to be mounted, and brings
// ConfigMap and Secret volumes up to date with the apiserver: the pod
// workers call it on every sync, so an update reaches running containers
// within one resync. It returns every failing volume, as *SetUpError
// values joined; the volumes that could be set up are.
func (m *Manager) SetUp(ctx context.Context, pod *api.Pod) error {
	uid := pod.GetMetadata().GetUid()
	if err := checkUID(uid); err != nil {
		return err
	}
	if len(pod.GetSpec().GetVolumes()) == 0 {
		return nil
	}
	// 0750: the node's other users cannot reach a pod's volumes (Secrets).
	if err := os.MkdirAll(m.VolumesDir(uid), 0o750); err != nil {
		return fmt.Errorf("pod volumes dir: %w", err)
	}
	var errs []error
	for _, v := range pod.GetSpec().GetVolumes() {
		if err := m.setUpVolume(ctx, pod, v); err != nil {
			errs = append(errs, &SetUpError{Volume: v.GetName(), Err: err, Stale: m.published(uid, v)})
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) setUpVolume(ctx context.Context, pod *api.Pod, v *api.Volume) error {
	uid, ns := pod.GetMetadata().GetUid(), pod.GetMetadata().GetNamespace()
	switch {
	case v.GetEmptyDir() != nil:
		dir := m.volumeDir(uid, PluginEmptyDir, v.GetName())
		if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return fmt.Errorf("emptyDir: %w", err)
			}
			// Kubernetes' emptyDir is world-writable, so a container running
			// as any user can use it; MkdirAll's mode met the umask.
			if err := os.Chmod(dir, 0o777); err != nil {
				return fmt.Errorf("emptyDir: %w", err)
			}
		}
		ed := v.GetEmptyDir()
		if ed.GetMedium() == MediumMemory {
			var size int64
			if s := ed.GetSizeLimit(); s != "" {
				q, err := resource.ParseQuantity(s)
				if err != nil {
					return fmt.Errorf("emptyDir sizeLimit %q: %w", s, err)
				}
				size = q.Value()
			}
			return mountTmpfs(dir, size, 0o777)
		}
		return nil
	case v.GetHostPath() != nil:
		return checkHostPath(v.GetHostPath().GetPath(), v.GetHostPath().GetType())
	case v.GetConfigMap() != nil:
		cm, err := fetch(ctx, m.cfg.ConfigMaps, "configmap", ns, v.GetConfigMap().GetName())
		if err != nil {
			return err
		}
		files := map[string]file{}
		for k, s := range cm.GetData() {
			files[k] = file{data: []byte(s), mode: keyMode}
		}
		for k, b := range cm.GetBinaryData() {
			files[k] = file{data: b, mode: keyMode}
		}
		return m.writeVolume(uid, PluginConfigMap, v.GetName(), files, false)
	case v.GetSecret() != nil:
		sec, err := fetch(ctx, m.cfg.Secrets, "secret", ns, v.GetSecret().GetSecretName())
		if err != nil {
			return err
		}
		files := map[string]file{}
		for k, b := range sec.GetData() {
			files[k] = file{data: b, mode: keyMode}
		}
		return m.writeVolume(uid, PluginSecret, v.GetName(), files, true)
	}
	return errors.New("unsupported volume type")
}

// fetch reads the ConfigMap or Secret (kind) a volume shows; a missing one
// is ErrNotFound.
func fetch[T any](ctx context.Context, get Getter[T], kind, ns, name string) (T, error) {
	var none T
	if get == nil {
		return none, fmt.Errorf("no apiserver client for %ss", kind)
	}
	obj, err := get.Get(ctx, ns, name)
	if client.IsNotFound(err) {
		return none, fmt.Errorf("%s %q %w", kind, name, ErrNotFound)
	}
	if err != nil {
		return none, fmt.Errorf("get %s %q: %w", kind, name, err)
	}
	return obj, nil
}

// writeVolume brings a ConfigMap or Secret volume's directory up to date.
// A Secret's directory is a tmpfs, so its keys never reach the node's
// disk; when the tmpfs cannot be mounted the keys are written to disk and
// the kubelet says so.
func (m *Manager) writeVolume(uid, plugin, name string, files map[string]file, memory bool) error {
	dir := m.volumeDir(uid, plugin, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if memory {
		if err := mountTmpfs(dir, 0, 0o755); err != nil {
			m.log.Warn("secret volume not on tmpfs: its keys are written to the node's disk", "pod", uid, "volume", name, "err", err)
		}
	}
	changed, err := writeAtomic(dir, files)
	if err != nil {
		return err
	}
	if changed {
		m.log.Debug("volume contents updated", "pod", uid, "volume", name, "plugin", plugin, "keys", len(files))
	}
	return nil
}

// published reports a ConfigMap or Secret volume that holds a complete
// earlier version.
func (m *Manager) published(uid string, v *api.Volume) bool {
	var dir string
	switch {
	case v.GetConfigMap() != nil:
		dir = m.volumeDir(uid, PluginConfigMap, v.GetName())
	case v.GetSecret() != nil:
		dir = m.volumeDir(uid, PluginSecret, v.GetName())
	default:
		return false
	}
	_, err := os.Stat(filepath.Join(dir, dataDirName))
	return err == nil
}

// Blocking reports whether a SetUp error keeps containers from starting:
// any failure other than a Stale one.
func Blocking(err error) bool {
	if err == nil {
		return false
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var se *SetUpError
		if !errors.As(e, &se) || !se.Stale {
			return true
		}
	}
	return false
}

// Mounts returns the OCI mounts of container c's volumeMounts, in order.
// SetUp must have succeeded. subPath mounts are bound into
// volume-subpaths here, for this run of the container.
func (m *Manager) Mounts(pod *api.Pod, c *api.Container) ([]specs.Mount, error) {
	uid := pod.GetMetadata().GetUid()
	if err := checkUID(uid); err != nil {
		return nil, err
	}
	vols := map[string]*api.Volume{}
	for _, v := range pod.GetSpec().GetVolumes() {
		vols[v.GetName()] = v
	}
	out := make([]specs.Mount, 0, len(c.GetVolumeMounts()))
	for i, vm := range c.GetVolumeMounts() {
		v, ok := vols[vm.GetName()]
		if !ok {
			return nil, fmt.Errorf("volumeMount %q: no volume of that name in the pod", vm.GetName())
		}
		if !path.IsAbs(vm.GetMountPath()) {
			return nil, fmt.Errorf("volumeMount %q: mountPath %q must be absolute", vm.GetName(), vm.GetMountPath())
		}
		src, readOnly, create, err := m.source(uid, v)
		if err != nil {
			return nil, fmt.Errorf("volumeMount %q: %w", vm.GetName(), err)
		}
		readOnly = readOnly || vm.GetReadOnly()
		if sub := vm.GetSubPath(); sub != "" {
			target := filepath.Join(m.subPathsDir(uid), v.GetName(), c.GetName(), strconv.Itoa(i))
			if err := bindSubPath(src, sub, target, create); err != nil {
				return nil, fmt.Errorf("volumeMount %q: %w", vm.GetName(), err)
			}
			src = target
		}
		opt := "rw"
		if readOnly {
			opt = "ro"
		}
		out = append(out, specs.Mount{
			Destination: vm.GetMountPath(), Type: "bind", Source: src,
			Options: []string{"rbind", "rprivate", opt},
		})
	}
	return out, nil
}

// source is where volume v is on the node, whether it is always mounted
// read-only (ConfigMap and Secret volumes are, as in Kubernetes), and
// whether a missing subPath is created in it.
func (m *Manager) source(uid string, v *api.Volume) (src string, readOnly, create bool, err error) {
	var plugin string
	switch {
	case v.GetHostPath() != nil:
		return v.GetHostPath().GetPath(), false, true, nil
	case v.GetEmptyDir() != nil:
		plugin, create = PluginEmptyDir, true
	case v.GetConfigMap() != nil:
		plugin, readOnly = PluginConfigMap, true
	case v.GetSecret() != nil:
		plugin, readOnly = PluginSecret, true
	default:
		return "", false, false, fmt.Errorf("volume %q: unsupported volume type", v.GetName())
	}
	src = m.volumeDir(uid, plugin, v.GetName())
	if _, err := os.Stat(src); err != nil {
		return "", false, false, fmt.Errorf("volume %q is not set up: %w", v.GetName(), err)
	}
	return src, readOnly, create, nil
}

// TearDown unmounts and removes the pod's volumes and subPath mounts: the
// tmpfs of memory emptyDirs and Secrets, the bind mounts of subPaths. Only
// once the mount table shows nothing below the pod's directory are the
// kubelet's own directories removed, so a hostPath's files are never
// touched. Safe to call again after a partial failure, or for a pod
// without volumes.
func (m *Manager) TearDown(uid string) error {
	if err := checkUID(uid); err != nil {
		return err
	}
	if err := mounts.UnmountAll(m.PodDir(uid)); err != nil {
		return fmt.Errorf("tear down volumes of pod %s: %w", uid, err)
	}
	for _, dir := range []string{m.subPathsDir(uid), m.VolumesDir(uid)} {
		if err := removeUnmounted(dir); err != nil {
			return fmt.Errorf("tear down volumes of pod %s: %w", uid, err)
		}
	}
	return nil
}

// PodUIDs lists the pods that have a directory on the node, for finding
// those left behind by a pod removed while the kubelet was down.
func (m *Manager) PodUIDs() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(m.cfg.RootDir, "pods"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list pod dirs: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// RemovePodDir tears down the pod's volumes and then removes its whole
// directory (logs, hosts, resolv.conf), never through a mount.
func (m *Manager) RemovePodDir(uid string) error {
	if err := m.TearDown(uid); err != nil {
		return err
	}
	return removeUnmounted(m.PodDir(uid))
}
