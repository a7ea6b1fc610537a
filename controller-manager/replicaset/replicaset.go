// Package replicaset is the ReplicaSet controller: it keeps the number of
// active pods matching a ReplicaSet equal to spec.replicas, adopting
// matching orphans and releasing pods that stop matching, and writes the
// ReplicaSet's status.
//
// It must never create or delete more than spec.replicas asks for: every
// write is recorded as an expectation and the controller does not act on
// its cache again until the watch has shown it (or the record expired).
package replicaset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiff-dev/skiff/controller-manager/controllerutil"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/events"
	"github.com/skiff-dev/skiff/internal/informer"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/internal/selectors"
	"github.com/skiff-dev/skiff/proto/api"
)

// Name is the controller's name in logs, metrics and flags.
const Name = "replicaset"

// burstReplicas caps the creations or deletions of one sync.
const burstReplicas = 500

// Config tunes the controller.
type Config struct {
	Workers int
	// ExpectationsTimeout is how long unobserved writes hold the ReplicaSet
	// back (default 5m).
	ExpectationsTimeout time.Duration
}

// Controller is the ReplicaSet controller.
type Controller struct {
	client   *client.Client
	rsets    *informer.Informer[*api.ReplicaSet]
	pods     *informer.Informer[*api.Pod]
	queue    controllerutil.Queue
	exp      *controllerutil.Expectations
	recorder events.EventRecorder
	logger   *slog.Logger
	metrics  *controllerutil.Metrics
	cfg      Config
	now      func() time.Time
}

// New wires the controller to the shared informers; call before they run.
func New(c *client.Client, rsets *informer.Informer[*api.ReplicaSet], pods *informer.Informer[*api.Pod],
	rec events.EventRecorder, logger *slog.Logger, m *controllerutil.Metrics, cfg Config) *Controller {
	rc := &Controller{
		client: c, rsets: rsets, pods: pods, recorder: rec, metrics: m, cfg: cfg,
		logger: logger.With("controller", Name),
		queue:  controllerutil.NewQueue(Name, m),
		exp:    controllerutil.NewExpectations(cfg.ExpectationsTimeout),
		now:    time.Now,
	}
	rsets.AddEventHandler(informer.Handler[*api.ReplicaSet]{
		OnAdd:    rc.enqueue,
		OnUpdate: func(_, rs *api.ReplicaSet) { rc.enqueue(rs) },
		OnDelete: func(rs *api.ReplicaSet) {
			rc.exp.Delete(kinds.Key(rs))
			rc.enqueue(rs)
		},
	})
	pods.AddEventHandler(informer.Handler[*api.Pod]{OnAdd: rc.addPod, OnUpdate: rc.updatePod, OnDelete: rc.deletePod})
	return rc
}

// Run processes the queue until ctx ends. The informers must be running.
func (rc *Controller) Run(ctx context.Context) {
	w := &controllerutil.Worker{Name: Name, Queue: rc.queue, Sync: rc.sync, Logger: rc.logger, Metrics: rc.metrics}
	w.Run(ctx, rc.cfg.Workers)
}

func (rc *Controller) enqueue(rs *api.ReplicaSet) { rc.queue.Add(kinds.Key(rs)) }

// controllerOf returns the ReplicaSet a pod's controllerRef names, if it is
// the one in the cache (same uid).
func (rc *Controller) controllerOf(pod *api.Pod) *api.ReplicaSet {
	rs, _ := controllerutil.ResolveControllerRef(rc.rsets.Lister(), pod.GetMetadata(), "ReplicaSet")
	return rs
}

// matchingSets are the ReplicaSets whose selector matches an orphan pod:
// each may adopt it.
func (rc *Controller) matchingSets(pod *api.Pod) []*api.ReplicaSet {
	return controllerutil.Selecting(rc.rsets.Lister(), pod.GetMetadata().GetNamespace(), pod.GetMetadata().GetLabels(),
		func(rs *api.ReplicaSet) *api.LabelSelector { return rs.GetSpec().GetSelector() })
}

func (rc *Controller) addPod(pod *api.Pod) {
	if pod.GetMetadata().GetDeletionTimestamp() != nil {
		// Restarted with a pod already going away: its deletion is as
		// good as seen.
		rc.deletePod(pod)
		return
	}
	if rs := rc.controllerOf(pod); rs != nil {
		rc.exp.CreationObserved(kinds.Key(rs))
		rc.enqueue(rs)
		return
	}
	if controllerutil.ControllerOf(pod.GetMetadata()) != nil {
		return
	}
	for _, rs := range rc.matchingSets(pod) {
		rc.enqueue(rs)
	}
}

func (rc *Controller) updatePod(old, cur *api.Pod) {
	if old.GetMetadata().GetResourceVersion() == cur.GetMetadata().GetResourceVersion() {
		// A resync: the ReplicaSet is resynced on its own.
		return
	}
	if cur.GetMetadata().GetDeletionTimestamp() != nil && old.GetMetadata().GetDeletionTimestamp() == nil {
		rc.deletePod(cur)
		return
	}
	labelsChanged := !labels.Equals(old.GetMetadata().GetLabels(), cur.GetMetadata().GetLabels())
	oldRef, curRef := controllerutil.ControllerOf(old.GetMetadata()), controllerutil.ControllerOf(cur.GetMetadata())
	if oldRef != nil && (curRef == nil || oldRef.GetUid() != curRef.GetUid()) {
		if rs := rc.controllerOf(old); rs != nil {
			rc.enqueue(rs)
		}
	}
	if rs := rc.controllerOf(cur); rs != nil {
		rc.enqueue(rs)
		return
	}
	if curRef == nil && (labelsChanged || oldRef != nil) {
		for _, rs := range rc.matchingSets(cur) {
			rc.enqueue(rs)
		}
	}
}

func (rc *Controller) deletePod(pod *api.Pod) {
	rs := rc.controllerOf(pod)
	if rs == nil {
		return
	}
	key := kinds.Key(rs)
	rc.exp.DeletionObserved(key, pod.GetMetadata().GetUid())
	rc.enqueue(rs)
}

func (rc *Controller) sync(ctx context.Context, key string) error {
	ns, name := kinds.SplitKey(key)
	rs, ok := rc.rsets.Lister().Get(ns, name)
	if !ok {
		rc.exp.Delete(key)
		return nil
	}
	sel, err := selectors.FromLabelSelector(rs.GetSpec().GetSelector())
	if err != nil {
		rc.recorder.Eventf(rs, events.Warning, "InvalidSelector", "invalid selector: %v", err)
		return nil // a new spec brings a new event
	}
	needsSync, expiresIn := rc.exp.SatisfiedOrExpiresIn(key)
	if !needsSync {
		caughtUp, err := rc.cacheCaughtUp(ctx, key, rs, sel)
		if err != nil {
			return err
		}
		if caughtUp {
			rc.exp.Delete(key)
			needsSync = true
		}
	}

	pods, err := rc.claimPods(ctx, rs, sel)
	if err != nil {
		return err
	}
	var active []*api.Pod
	for _, p := range pods {
		if controllerutil.IsPodActive(p) {
			active = append(active, p)
		}
	}
	var manageErr error
	if needsSync && rs.GetMetadata().GetDeletionTimestamp() == nil {
		manageErr = rc.manageReplicas(ctx, key, rs, active)
	}
	st := computeStatus(rs, active, rc.now())
	if err := rc.updateStatus(ctx, rs, st); err != nil {
		return errors.Join(manageErr, err)
	}
	if manageErr != nil {
		return manageErr
	}
	if !needsSync {
		after := expiresIn + 10*time.Millisecond
		if _, uncertain := rc.exp.Barrier(key); uncertain {
			after = min(after, barrierPoll)
		}
		return &controllerutil.RequeueAfter{After: after}
	}
	// Pods turn available minReadySeconds after they turn ready, which no
	// event announces: look again then.
	if mrs := rs.GetSpec().GetMinReadySeconds(); mrs > 0 && st.ReadyReplicas != st.AvailableReplicas {
		return &controllerutil.RequeueAfter{After: time.Duration(mrs) * time.Second}
	}
	return nil
}

// claimPods returns the pods rs controls after adopting matching orphans
// and releasing pods whose labels stopped matching.
func (rc *Controller) claimPods(ctx context.Context, rs *api.ReplicaSet, sel labels.Selector) ([]*api.Pod, error) {
	uid := rs.GetMetadata().GetUid()
	deleting := rs.GetMetadata().GetDeletionTimestamp() != nil
	var owned []*api.Pod
	var errs []error
	canAdopt := sync.OnceValue(func() error { return rc.canAdopt(ctx, rs) })
	for _, p := range rc.pods.Lister().ByIndex(informer.IndexNamespace, rs.GetMetadata().GetNamespace()) {
		matches := !sel.Empty() && sel.Matches(labels.Set(p.GetMetadata().GetLabels()))
		ref := controllerutil.ControllerOf(p.GetMetadata())
		switch {
		case ref != nil && ref.GetUid() == uid:
			if matches || deleting {
				owned = append(owned, p)
				continue
			}
			if err := rc.release(ctx, p, uid); err != nil {
				errs = append(errs, err)
			}
		case ref != nil:
			// Another controller's pod.
		case matches && !deleting && p.GetMetadata().GetDeletionTimestamp() == nil:
			if err := canAdopt(); err != nil {
				errs = append(errs, err)
				continue
			}
			adopted, err := rc.adopt(ctx, p, rs)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if adopted != nil {
				owned = append(owned, adopted)
			}
		}
	}
	return owned, errors.Join(errs...)
}

// canAdopt re-reads rs live: an orphan must not be adopted by a ReplicaSet
// that was just deleted or replaced under the same name.
func (rc *Controller) canAdopt(ctx context.Context, rs *api.ReplicaSet) error {
	fresh, err := rc.client.ReplicaSets().Get(ctx, rs.GetMetadata().GetNamespace(), rs.GetMetadata().GetName())
	if err != nil {
		return fmt.Errorf("recheck replicaset %s before adoption: %w", kinds.Key(rs), err)
	}
	if fresh.GetMetadata().GetUid() != rs.GetMetadata().GetUid() {
		return fmt.Errorf("replicaset %s was replaced (uid %s), not adopting", kinds.Key(rs), fresh.GetMetadata().GetUid())
	}
	if fresh.GetMetadata().GetDeletionTimestamp() != nil {
		return fmt.Errorf("replicaset %s is being deleted, not adopting", kinds.Key(rs))
	}
	return nil
}

func (rc *Controller) adopt(ctx context.Context, p *api.Pod, rs *api.ReplicaSet) (*api.Pod, error) {
	pod := proto.Clone(p).(*api.Pod)
	pod.Metadata.OwnerReferences = append(pod.Metadata.OwnerReferences, controllerutil.NewControllerRef(rs))
	out, err := rc.client.Pods().Update(ctx, pod)
	if client.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("adopt pod %s: %w", kinds.Key(p), err)
	}
	rc.logger.Info("adopted pod", "replicaset", kinds.Key(rs), "pod", kinds.Key(p))
	return out, nil
}

func (rc *Controller) release(ctx context.Context, p *api.Pod, uid string) error {
	pod := proto.Clone(p).(*api.Pod)
	controllerutil.RemoveOwnerReference(pod.Metadata, uid)
	_, err := rc.client.Pods().Update(ctx, pod)
	if err != nil && !client.IsNotFound(err) {
		return fmt.Errorf("release pod %s: %w", kinds.Key(p), err)
	}
	rc.logger.Info("released pod", "pod", kinds.Key(p))
	return nil
}

// manageReplicas creates or deletes pods so that len(active) becomes
// spec.replicas.
func (rc *Controller) manageReplicas(ctx context.Context, key string, rs *api.ReplicaSet, active []*api.Pod) error {
	want := int(rs.GetSpec().GetReplicas())
	diff := len(active) - want
	switch {
	case diff < 0:
		n := min(-diff, burstReplicas)
		rc.exp.ExpectCreations(key, n)
		rc.logger.Debug("creating pods", "replicaset", key, "need", want, "have", len(active), "creating", n)
		created, err := rc.createPods(ctx, key, rs, n)
		if skipped := n - created; skipped > 0 {
			rc.logger.Info("slow start skipped pod creations", "replicaset", key, "skipped", skipped)
		}
		return err
	case diff > 0:
		n := min(diff, burstReplicas)
		victims := podsToDelete(active, n)
		uids := make([]string, len(victims))
		for i, p := range victims {
			uids[i] = p.GetMetadata().GetUid()
		}
		rc.exp.ExpectDeletions(key, uids)
		return rc.deletePods(ctx, key, rs, victims)
	}
	return nil
}

// createPods creates n pods in slow-start batches and returns how many
// creations were attempted; skipped ones are marked observed.
func (rc *Controller) createPods(ctx context.Context, key string, rs *api.ReplicaSet, n int) (int, error) {
	attempted := 0
	for _, batch := range slowStartBatches(n, 1) {
		var wg sync.WaitGroup
		errs := make([]error, batch)
		for i := range batch {
			wg.Go(func() { errs[i] = rc.createPod(ctx, key, rs) })
		}
		wg.Wait()
		attempted += batch
		if err := errors.Join(errs...); err != nil {
			for range n - attempted {
				rc.exp.CreationObserved(key)
			}
			return attempted, err
		}
	}
	return attempted, nil
}

func (rc *Controller) createPod(ctx context.Context, key string, rs *api.ReplicaSet) error {
	pod := podFromTemplate(rs)
	created, err := rc.client.Pods().Create(ctx, pod)
	if err != nil {
		if outcomeUnknown(err) {
			rc.exp.MarkUncertain(key)
		} else {
			// It surely did not happen: no event will lower the record.
			rc.exp.CreationObserved(key)
		}
		rc.recorder.Eventf(rs, events.Warning, "FailedCreate", "Error creating: %v", err)
		return fmt.Errorf("create pod for replicaset %s: %w", key, err)
	}
	rc.recorder.Eventf(rs, events.Normal, "SuccessfulCreate", "Created pod: %s", created.GetMetadata().GetName())
	return nil
}

// barrierPoll is how often a ReplicaSet waiting for its cache to reach a
// barrier looks again.
const barrierPoll = 200 * time.Millisecond

// cacheCaughtUp settles expectations left uncertain by writes whose outcome
// is unknown: it reads the pods' current resourceVersion from the
// apiserver (lists are consistent) once, and reports true when the pod
// cache has reached it, since the cache then holds whatever those writes
// did. Waiting for the record to expire instead would stall the
// ReplicaSet for minutes after every apiserver restart.
func (rc *Controller) cacheCaughtUp(ctx context.Context, key string, rs *api.ReplicaSet, sel labels.Selector) (bool, error) {
	barrier, uncertain := rc.exp.Barrier(key)
	if !uncertain {
		return false, nil
	}
	if barrier == 0 {
		_, rv, err := rc.client.Pods().List(ctx, rs.GetMetadata().GetNamespace(), client.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return false, fmt.Errorf("read barrier for replicaset %s: %w", key, err)
		}
		if barrier, err = client.ParseResourceVersion(rv); err != nil || barrier == 0 {
			return false, fmt.Errorf("barrier for replicaset %s: bad list resourceVersion %q", key, rv)
		}
		rc.exp.SetBarrier(key, barrier)
	}
	have, err := client.ParseResourceVersion(rc.pods.LastSyncResourceVersion())
	if err != nil {
		return false, nil
	}
	if have >= barrier {
		rc.logger.Info("pod cache caught up with uncertain writes", "replicaset", key, "barrier", barrier)
		return true, nil
	}
	return false, nil
}

// outcomeUnknown reports errors after which the write may or may not have
// been applied (the connection broke): the expectation stays until the
// watch shows the pod or the record times out, so nothing is created twice.
func outcomeUnknown(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Unknown, codes.Internal:
		return true
	}
	return false
}

func podFromTemplate(rs *api.ReplicaSet) *api.Pod {
	tmpl := rs.GetSpec().GetTemplate()
	m := &api.ObjectMeta{
		GenerateName:    rs.GetMetadata().GetName() + "-",
		Namespace:       rs.GetMetadata().GetNamespace(),
		Labels:          map[string]string{},
		Annotations:     map[string]string{},
		OwnerReferences: []*api.OwnerReference{controllerutil.NewControllerRef(rs)},
	}
	for k, v := range tmpl.GetMetadata().GetLabels() {
		m.Labels[k] = v
	}
	for k, v := range tmpl.GetMetadata().GetAnnotations() {
		m.Annotations[k] = v
	}
	m.Finalizers = append(m.Finalizers, tmpl.GetMetadata().GetFinalizers()...)
	spec, _ := proto.Clone(tmpl.GetSpec()).(*api.PodSpec)
	if spec == nil {
		spec = &api.PodSpec{}
	}
	return &api.Pod{Metadata: m, Spec: spec}
}

func (rc *Controller) deletePods(ctx context.Context, key string, rs *api.ReplicaSet, victims []*api.Pod) error {
	var wg sync.WaitGroup
	errs := make([]error, len(victims))
	for i, p := range victims {
		wg.Go(func() {
			uid := p.GetMetadata().GetUid()
			_, err := rc.client.Pods().Delete(ctx, p.GetMetadata().GetNamespace(), p.GetMetadata().GetName(),
				client.DeleteOptions{Preconditions: &api.Preconditions{Uid: uid}})
			switch {
			case err == nil:
				rc.recorder.Eventf(rs, events.Normal, "SuccessfulDelete", "Deleted pod: %s", p.GetMetadata().GetName())
			case client.IsNotFound(err):
				rc.exp.DeletionObserved(key, uid)
			default:
				if outcomeUnknown(err) {
					rc.exp.MarkUncertain(key)
				} else {
					rc.exp.DeletionObserved(key, uid)
				}
				rc.recorder.Eventf(rs, events.Warning, "FailedDelete", "Error deleting: %v", err)
				errs[i] = fmt.Errorf("delete pod %s: %w", kinds.Key(p), err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// computeStatus counts the ReplicaSet's active pods.
func computeStatus(rs *api.ReplicaSet, active []*api.Pod, now time.Time) *api.ReplicaSetStatus {
	st := &api.ReplicaSetStatus{ObservedGeneration: rs.GetMetadata().GetGeneration()}
	tmplLabels := labels.SelectorFromSet(rs.GetSpec().GetTemplate().GetMetadata().GetLabels())
	for _, p := range active {
		st.Replicas++
		if tmplLabels.Matches(labels.Set(p.GetMetadata().GetLabels())) {
			st.FullyLabeledReplicas++
		}
		if controllerutil.IsPodReady(p) {
			st.ReadyReplicas++
			if controllerutil.IsPodAvailable(p, rs.GetSpec().GetMinReadySeconds(), now) {
				st.AvailableReplicas++
			}
		}
	}
	st.Conditions = rs.GetStatus().GetConditions()
	return st
}

func (rc *Controller) updateStatus(ctx context.Context, rs *api.ReplicaSet, st *api.ReplicaSetStatus) error {
	if proto.Equal(rs.GetStatus(), st) {
		return nil
	}
	upd := proto.Clone(rs).(*api.ReplicaSet)
	upd.Status = st
	_, err := rc.client.ReplicaSets().UpdateStatus(ctx, upd)
	if client.IsConflict(err) {
		// The spec or metadata moved on (the deployment controller scaled
		// it, say). The counts stand as long as the spec is the one they
		// were made for.
		fresh, gerr := rc.client.ReplicaSets().Get(ctx, rs.GetMetadata().GetNamespace(), rs.GetMetadata().GetName())
		if gerr == nil && fresh.GetMetadata().GetUid() == rs.GetMetadata().GetUid() &&
			fresh.GetMetadata().GetGeneration() == rs.GetMetadata().GetGeneration() {
			fresh.Status = st
			_, err = rc.client.ReplicaSets().UpdateStatus(ctx, fresh)
		}
	}
	if client.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update status of replicaset %s: %w", kinds.Key(rs), err)
	}
	return nil
}
