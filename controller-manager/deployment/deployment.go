// Package deployment is the Deployment controller: it turns a Deployment
// into ReplicaSets named NAME-<pod-template-hash>, scales them with the
// RollingUpdate or Recreate strategy, keeps the revision annotations and the
// revision history, and writes the Deployment's status.
//
// It must never touch pods: ReplicaSets own them. Rollback is ctl's job
// (it copies an old template into the Deployment); the controller only
// converges on whatever template the Deployment holds.
package deployment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

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
const Name = "deployment"

// Config tunes the controller.
type Config struct {
	Workers int
}

// Controller is the Deployment controller.
type Controller struct {
	client   *client.Client
	deploys  *informer.Informer[*api.Deployment]
	rsets    *informer.Informer[*api.ReplicaSet]
	pods     *informer.Informer[*api.Pod]
	queue    controllerutil.Queue
	recorder events.EventRecorder
	logger   *slog.Logger
	metrics  *controllerutil.Metrics
	cfg      Config
	now      func() time.Time
}

// New wires the controller to the shared informers; call before they run.
func New(c *client.Client, deploys *informer.Informer[*api.Deployment], rsets *informer.Informer[*api.ReplicaSet],
	pods *informer.Informer[*api.Pod], rec events.EventRecorder, logger *slog.Logger,
	m *controllerutil.Metrics, cfg Config) *Controller {
	dc := &Controller{
		client: c, deploys: deploys, rsets: rsets, pods: pods, recorder: rec, metrics: m, cfg: cfg,
		logger: logger.With("controller", Name),
		queue:  controllerutil.NewQueue(Name, m),
		now:    time.Now,
	}
	deploys.AddEventHandler(informer.Handler[*api.Deployment]{
		OnAdd:    dc.enqueue,
		OnUpdate: func(_, d *api.Deployment) { dc.enqueue(d) },
		OnDelete: dc.enqueue,
	})
	rsets.AddEventHandler(informer.Handler[*api.ReplicaSet]{
		OnAdd:    dc.addReplicaSet,
		OnUpdate: dc.updateReplicaSet,
		OnDelete: func(rs *api.ReplicaSet) {
			if d := dc.ownerOf(rs); d != nil {
				dc.enqueue(d)
			}
		},
	})
	pods.AddEventHandler(informer.Handler[*api.Pod]{OnDelete: dc.deletePod})
	return dc
}

// Run processes the queue until ctx ends. The informers must be running.
func (dc *Controller) Run(ctx context.Context) {
	w := &controllerutil.Worker{Name: Name, Queue: dc.queue, Sync: dc.sync, Logger: dc.logger, Metrics: dc.metrics}
	w.Run(ctx, dc.cfg.Workers)
}

func (dc *Controller) enqueue(d *api.Deployment) { dc.queue.Add(kinds.Key(d)) }

// ownerOf returns the Deployment a ReplicaSet's controllerRef names, if it
// is the one in the cache.
func (dc *Controller) ownerOf(rs *api.ReplicaSet) *api.Deployment {
	d, _ := controllerutil.ResolveControllerRef(dc.deploys.Lister(), rs.GetMetadata(), "Deployment")
	return d
}

func (dc *Controller) matchingDeployments(rs *api.ReplicaSet) []*api.Deployment {
	return controllerutil.Selecting(dc.deploys.Lister(), rs.GetMetadata().GetNamespace(), rs.GetMetadata().GetLabels(),
		func(d *api.Deployment) *api.LabelSelector { return d.GetSpec().GetSelector() })
}

func (dc *Controller) addReplicaSet(rs *api.ReplicaSet) {
	if d := dc.ownerOf(rs); d != nil {
		dc.enqueue(d)
		return
	}
	if controllerutil.ControllerOf(rs.GetMetadata()) != nil {
		return
	}
	for _, d := range dc.matchingDeployments(rs) {
		dc.enqueue(d)
	}
}

func (dc *Controller) updateReplicaSet(old, cur *api.ReplicaSet) {
	if old.GetMetadata().GetResourceVersion() == cur.GetMetadata().GetResourceVersion() {
		return
	}
	oldRef, curRef := controllerutil.ControllerOf(old.GetMetadata()), controllerutil.ControllerOf(cur.GetMetadata())
	if oldRef != nil && (curRef == nil || oldRef.GetUid() != curRef.GetUid()) {
		if d := dc.ownerOf(old); d != nil {
			dc.enqueue(d)
		}
	}
	if d := dc.ownerOf(cur); d != nil {
		dc.enqueue(d)
		return
	}
	if curRef == nil && (oldRef != nil || !labels.Equals(old.GetMetadata().GetLabels(), cur.GetMetadata().GetLabels())) {
		for _, d := range dc.matchingDeployments(cur) {
			dc.enqueue(d)
		}
	}
}

// deletePod wakes a Recreate rollout waiting for its old pods to go.
func (dc *Controller) deletePod(pod *api.Pod) {
	ref := controllerutil.ControllerOf(pod.GetMetadata())
	if ref == nil || ref.GetKind() != "ReplicaSet" {
		return
	}
	rs, ok := dc.rsets.Lister().Get(pod.GetMetadata().GetNamespace(), ref.GetName())
	if !ok || rs.GetMetadata().GetUid() != ref.GetUid() {
		return
	}
	if d := dc.ownerOf(rs); d != nil && strategyType(d) == StrategyRecreate {
		dc.enqueue(d)
	}
}

func (dc *Controller) sync(ctx context.Context, key string) error {
	ns, name := kinds.SplitKey(key)
	cached, ok := dc.deploys.Lister().Get(ns, name)
	if !ok {
		return nil
	}
	d := proto.Clone(cached).(*api.Deployment)
	sel, err := selectors.FromLabelSelector(d.GetSpec().GetSelector())
	if err != nil || sel.Empty() {
		dc.recorder.Eventf(d, events.Warning, "SelectingAll",
			"This deployment is selecting all pods. A non-empty selector is required.")
		return nil
	}
	rsList, err := dc.claimReplicaSets(ctx, d, sel)
	if err != nil {
		return err
	}
	if d.GetMetadata().GetDeletionTimestamp() != nil {
		return dc.syncStatusOnly(ctx, d, rsList)
	}
	if err := dc.checkPausedConditions(ctx, d); err != nil {
		return err
	}
	if d.GetSpec().GetPaused() {
		return dc.syncScale(ctx, d, rsList)
	}
	scaling, err := dc.isScalingEvent(ctx, d, rsList)
	if err != nil {
		return err
	}
	if scaling {
		return dc.syncScale(ctx, d, rsList)
	}
	switch strategyType(d) {
	case StrategyRecreate:
		return dc.rolloutRecreate(ctx, d, rsList)
	case StrategyRollingUpdate:
		return dc.rolloutRolling(ctx, d, rsList)
	}
	return fmt.Errorf("deployment %s: unknown strategy %q", key, strategyType(d))
}

// claimReplicaSets returns the ReplicaSets d controls, adopting matching
// orphans and releasing those that stopped matching.
func (dc *Controller) claimReplicaSets(ctx context.Context, d *api.Deployment, sel labels.Selector) ([]*api.ReplicaSet, error) {
	uid := d.GetMetadata().GetUid()
	deleting := d.GetMetadata().GetDeletionTimestamp() != nil
	var owned []*api.ReplicaSet
	var errs []error
	checked := false
	for _, rs := range dc.rsets.Lister().ByIndex(informer.IndexNamespace, d.GetMetadata().GetNamespace()) {
		matches := sel.Matches(labels.Set(rs.GetMetadata().GetLabels()))
		ref := controllerutil.ControllerOf(rs.GetMetadata())
		switch {
		case ref != nil && ref.GetUid() == uid:
			if matches || deleting {
				owned = append(owned, rs)
				continue
			}
			c := proto.Clone(rs).(*api.ReplicaSet)
			controllerutil.RemoveOwnerReference(c.Metadata, uid)
			if _, err := dc.client.ReplicaSets().Update(ctx, c); err != nil && !client.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("release replicaset %s: %w", kinds.Key(rs), err))
			}
		case ref != nil:
		case matches && !deleting && rs.GetMetadata().GetDeletionTimestamp() == nil:
			if !checked {
				fresh, err := dc.client.Deployments().Get(ctx, d.GetMetadata().GetNamespace(), d.GetMetadata().GetName())
				if err != nil {
					return nil, fmt.Errorf("recheck deployment %s before adoption: %w", kinds.Key(d), err)
				}
				if fresh.GetMetadata().GetUid() != uid || fresh.GetMetadata().GetDeletionTimestamp() != nil {
					return owned, nil
				}
				checked = true
			}
			c := proto.Clone(rs).(*api.ReplicaSet)
			c.Metadata.OwnerReferences = append(c.Metadata.OwnerReferences, controllerutil.NewControllerRef(d))
			out, err := dc.client.ReplicaSets().Update(ctx, c)
			if err != nil {
				if !client.IsNotFound(err) {
					errs = append(errs, fmt.Errorf("adopt replicaset %s: %w", kinds.Key(rs), err))
				}
				continue
			}
			owned = append(owned, out)
		}
	}
	return owned, errors.Join(errs...)
}

// splitReplicaSets finds the ReplicaSet whose template is the
// Deployment's (the oldest, should there be several) and the old ones.
func splitReplicaSets(d *api.Deployment, rsList []*api.ReplicaSet) (newRS *api.ReplicaSet, old []*api.ReplicaSet) {
	sorted := append([]*api.ReplicaSet(nil), rsList...)
	byCreation(sorted)
	for _, rs := range sorted {
		if newRS == nil && EqualIgnoreHash(rs.GetSpec().GetTemplate(), d.GetSpec().GetTemplate()) {
			newRS = rs
			continue
		}
		old = append(old, rs)
	}
	return newRS, old
}

// getAllReplicaSetsAndSyncRevision splits the ReplicaSets and makes sure
// the new one exists (when create) and carries the newest revision.
func (dc *Controller) getAllReplicaSetsAndSyncRevision(ctx context.Context, d *api.Deployment, rsList []*api.ReplicaSet, create bool) (*api.ReplicaSet, []*api.ReplicaSet, error) {
	newRS, old := splitReplicaSets(d, rsList)
	newRS, err := dc.getNewReplicaSet(ctx, d, newRS, old, create)
	return newRS, old, err
}

func (dc *Controller) getNewReplicaSet(ctx context.Context, d *api.Deployment, existing *api.ReplicaSet, old []*api.ReplicaSet, create bool) (*api.ReplicaSet, error) {
	newRevision := maxRevision(old) + 1
	if existing != nil {
		rs := existing
		if cur := revision(rs.GetMetadata()); cur < newRevision {
			c := proto.Clone(rs).(*api.ReplicaSet)
			setRevision(c.Metadata, newRevision)
			out, err := dc.client.ReplicaSets().Update(ctx, c)
			if err != nil {
				return nil, fmt.Errorf("set revision of replicaset %s: %w", kinds.Key(rs), err)
			}
			rs = out
		}
		if err := dc.setDeploymentRevision(ctx, d, revision(rs.GetMetadata())); err != nil {
			return nil, err
		}
		if findCondition(d.GetStatus().GetConditions(), ConditionProgressing) == nil && hasProgressDeadline(d) {
			d.Status = cloneStatus(d)
			d.Status.Conditions = setCondition(d.Status.Conditions, newCondition(ConditionProgressing, controllerutil.ConditionTrue,
				reasonFoundNewRS, fmt.Sprintf("Found new replica set %q", rs.GetMetadata().GetName()), dc.now()))
			if err := dc.updateStatus(ctx, d); err != nil {
				return nil, err
			}
		}
		return rs, nil
	}
	if !create {
		return nil, nil
	}

	tmpl := proto.Clone(d.GetSpec().GetTemplate()).(*api.PodTemplateSpec)
	if tmpl.Metadata == nil {
		tmpl.Metadata = &api.ObjectMeta{}
	}
	delete(tmpl.Metadata.Labels, LabelPodTemplateHash)
	hash := ComputeHash(tmpl, d.GetStatus().CollisionCount)
	if tmpl.Metadata.Labels == nil {
		tmpl.Metadata.Labels = map[string]string{}
	}
	tmpl.Metadata.Labels[LabelPodTemplateHash] = hash
	sel := proto.Clone(d.GetSpec().GetSelector()).(*api.LabelSelector)
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[LabelPodTemplateHash] = hash
	rsLabels := map[string]string{}
	for k, v := range tmpl.Metadata.Labels {
		rsLabels[k] = v
	}
	zero := int32(0)
	rs := &api.ReplicaSet{
		Metadata: &api.ObjectMeta{
			Name:            d.GetMetadata().GetName() + "-" + hash,
			Namespace:       d.GetMetadata().GetNamespace(),
			Labels:          rsLabels,
			Annotations:     map[string]string{},
			OwnerReferences: []*api.OwnerReference{controllerutil.NewControllerRef(d)},
		},
		Spec: &api.ReplicaSetSpec{Replicas: &zero, MinReadySeconds: d.GetSpec().GetMinReadySeconds(), Selector: sel, Template: tmpl},
	}
	all := append([]*api.ReplicaSet{rs}, old...)
	replicas, err := newRSReplicas(d, all, rs)
	if err != nil {
		return nil, err
	}
	rs.Spec.Replicas = &replicas
	setRevision(rs.Metadata, newRevision)
	setReplicasAnnotations(rs.Metadata, desiredReplicas(d), desiredReplicas(d)+maxSurge(d))

	created, err := dc.client.ReplicaSets().Create(ctx, rs)
	if client.IsAlreadyExists(err) {
		return nil, dc.handleNameTaken(ctx, d, rs)
	}
	if err != nil {
		dc.recorder.Eventf(d, events.Warning, "FailedCreate", "Failed to create new replica set %q: %v", rs.Metadata.Name, err)
		return nil, fmt.Errorf("create replicaset %s: %w", kinds.Key(rs), err)
	}
	dc.logger.Info("created replicaset", "deployment", kinds.Key(d), "replicaset", created.GetMetadata().GetName(), "replicas", replicas)
	if replicas > 0 {
		dc.recorder.Eventf(d, events.Normal, "ScalingReplicaSet", "Scaled up replica set %s to %d", created.GetMetadata().GetName(), replicas)
	}
	if err := dc.setDeploymentRevision(ctx, d, newRevision); err != nil {
		return nil, err
	}
	if hasProgressDeadline(d) {
		d.Status = cloneStatus(d)
		d.Status.Conditions = setCondition(d.Status.Conditions, newCondition(ConditionProgressing, controllerutil.ConditionTrue,
			reasonNewRSCreated, fmt.Sprintf("Created new replica set %q", created.GetMetadata().GetName()), dc.now()))
		if err := dc.updateStatus(ctx, d); err != nil {
			return nil, err
		}
	}
	return created, nil
}

// handleNameTaken deals with a ReplicaSet name already in use: either the
// cache has not shown our own ReplicaSet yet (try again later), or another
// template hashed to the same name, in which case collisionCount moves on.
func (dc *Controller) handleNameTaken(ctx context.Context, d *api.Deployment, want *api.ReplicaSet) error {
	have, err := dc.client.ReplicaSets().Get(ctx, want.Metadata.Namespace, want.Metadata.Name)
	if err != nil {
		return fmt.Errorf("read replicaset %s after name clash: %w", kinds.Key(want), err)
	}
	if controllerutil.IsControlledBy(have.GetMetadata(), d.GetMetadata().GetUid()) &&
		EqualIgnoreHash(have.GetSpec().GetTemplate(), d.GetSpec().GetTemplate()) {
		return fmt.Errorf("replicaset %s exists but is not in the cache yet", kinds.Key(have))
	}
	d.Status = cloneStatus(d)
	n := d.Status.GetCollisionCount() + 1
	d.Status.CollisionCount = &n
	if err := dc.updateStatus(ctx, d); err != nil {
		return err
	}
	return fmt.Errorf("hash collision on replicaset %s: collisionCount is now %d", kinds.Key(want), n)
}

func setRevision(m *api.ObjectMeta, rev int64) {
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	if old, ok := m.Annotations[AnnotationRevision]; ok && old != "" && old != strconv.FormatInt(rev, 10) {
		if h := m.Annotations[AnnotationRevisionHistory]; h != "" {
			m.Annotations[AnnotationRevisionHistory] = h + "," + old
		} else {
			m.Annotations[AnnotationRevisionHistory] = old
		}
	}
	m.Annotations[AnnotationRevision] = strconv.FormatInt(rev, 10)
}

func setReplicasAnnotations(m *api.ObjectMeta, desired, maxReplicas int32) bool {
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	ds, ms := strconv.Itoa(int(desired)), strconv.Itoa(int(maxReplicas))
	if m.Annotations[AnnotationDesiredReplicas] == ds && m.Annotations[AnnotationMaxReplicas] == ms {
		return false
	}
	m.Annotations[AnnotationDesiredReplicas] = ds
	m.Annotations[AnnotationMaxReplicas] = ms
	return true
}

// setDeploymentRevision mirrors the new ReplicaSet's revision on the
// Deployment, where ctl rollout history reads it.
func (dc *Controller) setDeploymentRevision(ctx context.Context, d *api.Deployment, rev int64) error {
	want := strconv.FormatInt(rev, 10)
	if d.GetMetadata().GetAnnotations()[AnnotationRevision] == want {
		return nil
	}
	c := proto.Clone(d).(*api.Deployment)
	if c.Metadata.Annotations == nil {
		c.Metadata.Annotations = map[string]string{}
	}
	c.Metadata.Annotations[AnnotationRevision] = want
	out, err := dc.client.Deployments().Update(ctx, c)
	if err != nil {
		return fmt.Errorf("set revision of deployment %s: %w", kinds.Key(d), err)
	}
	proto.Reset(d)
	proto.Merge(d, out)
	return nil
}

// scaleReplicaSet sets rs's size (and the replicas annotations); it
// reports whether the size changed.
func (dc *Controller) scaleReplicaSet(ctx context.Context, rs *api.ReplicaSet, size int32, d *api.Deployment) (bool, *api.ReplicaSet, error) {
	sizeChanges := rsReplicas(rs) != size || rs.GetSpec().Replicas == nil
	c := proto.Clone(rs).(*api.ReplicaSet)
	annChanges := setReplicasAnnotations(c.Metadata, desiredReplicas(d), desiredReplicas(d)+maxSurge(d))
	if !sizeChanges && !annChanges {
		return false, rs, nil
	}
	c.Spec.Replicas = &size
	out, err := dc.client.ReplicaSets().Update(ctx, c)
	if err != nil {
		return false, nil, fmt.Errorf("scale replicaset %s to %d: %w", kinds.Key(rs), size, err)
	}
	if sizeChanges {
		dir := "up"
		if size < rsReplicas(rs) {
			dir = "down"
		}
		dc.recorder.Eventf(d, events.Normal, "ScalingReplicaSet", "Scaled %s replica set %s to %d from %d",
			dir, rs.GetMetadata().GetName(), size, rsReplicas(rs))
		dc.logger.Info("scaled replicaset", "deployment", kinds.Key(d), "replicaset", rs.GetMetadata().GetName(), "from", rsReplicas(rs), "to", size)
	}
	return sizeChanges, out, nil
}

// cleanupDeployment deletes the oldest scaled-down ReplicaSets beyond
// revisionHistoryLimit.
func (dc *Controller) cleanupDeployment(ctx context.Context, old []*api.ReplicaSet, d *api.Deployment) error {
	if d.GetSpec().RevisionHistoryLimit == nil {
		return nil
	}
	var cleanable []*api.ReplicaSet
	for _, rs := range old {
		if rs.GetMetadata().GetDeletionTimestamp() == nil {
			cleanable = append(cleanable, rs)
		}
	}
	diff := len(cleanable) - int(d.GetSpec().GetRevisionHistoryLimit())
	if diff <= 0 {
		return nil
	}
	sortByRevision(cleanable)
	var errs []error
	for _, rs := range cleanable[:diff] {
		if rs.GetStatus().GetReplicas() != 0 || rsReplicas(rs) != 0 ||
			rs.GetMetadata().GetGeneration() > rs.GetStatus().GetObservedGeneration() {
			continue
		}
		_, err := dc.client.ReplicaSets().Delete(ctx, rs.GetMetadata().GetNamespace(), rs.GetMetadata().GetName(),
			client.DeleteOptions{Preconditions: &api.Preconditions{Uid: rs.GetMetadata().GetUid()}})
		if err != nil && !client.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete old replicaset %s: %w", kinds.Key(rs), err))
			continue
		}
		dc.logger.Info("deleted old replicaset beyond revisionHistoryLimit", "deployment", kinds.Key(d), "replicaset", rs.GetMetadata().GetName())
	}
	return errors.Join(errs...)
}
