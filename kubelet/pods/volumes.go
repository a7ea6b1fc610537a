package pods

import (
	"context"
	"errors"
	"time"

	"github.com/skiff-dev/skiff/kubelet/status"
	"github.com/skiff-dev/skiff/kubelet/volumes"
	"github.com/skiff-dev/skiff/proto/api"
)

// volumeState is the outcome of the pod's last volume set-up.
type volumeState struct {
	err      error // nil: every volume is ready
	failures int   // consecutive blocking failures, for the retry back-off
	next     time.Time
	at       time.Time // the last set-up
}

// setUpVolumes prepares the pod's volumes and refreshes its ConfigMap and
// Secret volumes; it runs on every sync, so the resync keeps them in step
// with the apiserver. A failure is reported as a FailedMount Event; it
// keeps containers from starting (start asks volumesWaiting) unless only
// stale ConfigMap or Secret contents are left to mount.
//
// Syncs come often (every probe verdict, every container change, every
// status write): a pod whose volumes can be mounted and were set up less
// than VolumeRefreshPeriod ago is left alone, so the apiserver sees at most
// one read per ConfigMap or Secret volume and period, however busy the pod;
// one whose volumes cannot be mounted waits out the volume back-off.
func (w *worker) setUpVolumes(ctx context.Context, pod *api.Pod) {
	if !w.vol.at.IsZero() {
		if blocked := volumes.Blocking(w.vol.err); blocked && time.Now().Before(w.vol.next) ||
			!blocked && time.Since(w.vol.at) < w.m.cfg.VolumeRefreshPeriod {
			return
		}
	}
	err := w.m.vols.SetUp(ctx, pod)
	w.vol.err, w.vol.at = err, time.Now()
	if err == nil {
		w.vol.failures = 0
		return
	}
	if ctx.Err() != nil {
		return
	}
	w.log.Warn("volume set-up failed", "err", err)
	var each []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		each = j.Unwrap()
	} else {
		each = []error{err}
	}
	for _, e := range each {
		w.event(pod, "Warning", "FailedMount", "%v", e)
	}
	if volumes.Blocking(err) {
		w.vol.failures++
		w.vol.next = time.Now().Add(w.m.cfg.VolumeBackoff.Delay(w.vol.failures))
	}
}

// volumesWaiting is the waiting state of a container that cannot start
// because the pod's volumes are not ready, and when to try again; nil when
// they are.
func (w *worker) volumesWaiting() (*status.Waiting, time.Time) {
	if !volumes.Blocking(w.vol.err) {
		return nil, time.Time{}
	}
	return &status.Waiting{Reason: status.ReasonCreateContainerConfigError, Message: w.vol.err.Error()}, w.vol.next
}

// CleanupOrphanedPodDirs removes the directories, volumes first, of pods
// that left nothing in containerd and that neither the apiserver (exists)
// nor a worker still has: a pod removed while the kubelet was down, or a
// teardown cut short after its containers went. Call it after
// CleanupOrphans, which gives pods still in containerd a worker.
//
// exists must be read before the call. A pod added since has a worker
// before it has a directory (the worker makes it), and the worker stays
// registered until the directory is gone, so a directory listed here
// belongs to a pod exists knows, to a worker, or to nobody.
func (m *Manager) CleanupOrphanedPodDirs(ctx context.Context, exists func(uid string) bool) error {
	uids, err := m.vols.PodUIDs()
	if err != nil {
		return err
	}
	var errs []error
	for _, uid := range uids {
		if exists(uid) {
			continue
		}
		m.mu.Lock()
		_, running := m.workers[uid]
		m.mu.Unlock()
		if running {
			continue
		}
		sb, err := m.rt.PodSandbox(ctx, uid)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ctrs, err := m.rt.PodContainers(ctx, uid)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if sb != nil || len(ctrs) > 0 {
			continue // CleanupOrphans' worker removes it with the rest
		}
		m.log.Info("removing orphaned pod directory", "uid", uid)
		if err := m.vols.RemovePodDir(uid); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
