package deployment

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/controller-manager/controllerutil"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/informer"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// rolloutRolling grows the new ReplicaSet up to maxSurge above the desired
// count and shrinks the old ones while at least desired − maxUnavailable
// pods stay available.
func (dc *Controller) rolloutRolling(ctx context.Context, d *api.Deployment, rsList []*api.ReplicaSet) error {
	newRS, old, err := dc.getAllReplicaSetsAndSyncRevision(ctx, d, rsList, true)
	if err != nil {
		return err
	}
	all := append(append([]*api.ReplicaSet(nil), old...), newRS)

	scaledUp, err := dc.reconcileNewReplicaSet(ctx, all, newRS, d)
	if err != nil {
		return err
	}
	if scaledUp {
		return dc.syncRolloutStatus(ctx, all, newRS, d)
	}
	scaledDown, err := dc.reconcileOldReplicaSets(ctx, all, activeOnly(old), newRS, d)
	if err != nil {
		return err
	}
	if scaledDown {
		return dc.syncRolloutStatus(ctx, all, newRS, d)
	}
	if complete(d, calculateStatus(all, newRS, d, dc.now())) {
		if err := dc.cleanupDeployment(ctx, old, d); err != nil {
			return err
		}
	}
	return dc.syncRolloutStatus(ctx, all, newRS, d)
}

func (dc *Controller) reconcileNewReplicaSet(ctx context.Context, all []*api.ReplicaSet, newRS *api.ReplicaSet, d *api.Deployment) (bool, error) {
	want := desiredReplicas(d)
	if rsReplicas(newRS) == want {
		return false, nil
	}
	if rsReplicas(newRS) > want {
		scaled, _, err := dc.scaleReplicaSet(ctx, newRS, want, d)
		return scaled, err
	}
	n, err := newRSReplicas(d, all, newRS)
	if err != nil {
		return false, err
	}
	scaled, _, err := dc.scaleReplicaSet(ctx, newRS, n, d)
	return scaled, err
}

func (dc *Controller) reconcileOldReplicaSets(ctx context.Context, all, old []*api.ReplicaSet, newRS *api.ReplicaSet, d *api.Deployment) (bool, error) {
	if sumReplicas(old) == 0 {
		return false, nil
	}
	budget := oldScaleDownBudget(d, all, newRS)
	if budget <= 0 {
		return false, nil
	}
	// Unhealthy old pods go first: removing them costs no availability.
	old, cleaned, err := dc.cleanupUnhealthyReplicas(ctx, old, d, budget)
	if err != nil {
		return false, err
	}
	all = append(append([]*api.ReplicaSet(nil), old...), newRS)
	scaled, err := dc.scaleDownOldForRollingUpdate(ctx, all, old, d)
	if err != nil {
		return false, err
	}
	return cleaned+scaled > 0, nil
}

func (dc *Controller) cleanupUnhealthyReplicas(ctx context.Context, old []*api.ReplicaSet, d *api.Deployment, budget int32) ([]*api.ReplicaSet, int32, error) {
	old = append([]*api.ReplicaSet(nil), old...)
	byCreation(old)
	var total int32
	for i, rs := range old {
		if total >= budget {
			break
		}
		if rsReplicas(rs) == 0 || rsReplicas(rs) == rsAvailable(rs) {
			continue
		}
		n := min(budget-total, rsReplicas(rs)-rsAvailable(rs))
		_, out, err := dc.scaleReplicaSet(ctx, rs, rsReplicas(rs)-n, d)
		if err != nil {
			return nil, total, err
		}
		total += n
		old[i] = out
	}
	return old, total, nil
}

func (dc *Controller) scaleDownOldForRollingUpdate(ctx context.Context, all, old []*api.ReplicaSet, d *api.Deployment) (int32, error) {
	minAvailable := desiredReplicas(d) - maxUnavailable(d)
	available := sumAvailable(all)
	if available <= minAvailable {
		return 0, nil
	}
	old = append([]*api.ReplicaSet(nil), old...)
	byCreation(old)
	budget := available - minAvailable
	var total int32
	for _, rs := range old {
		if total >= budget {
			break
		}
		if rsReplicas(rs) == 0 {
			continue
		}
		n := min(rsReplicas(rs), budget-total)
		if _, _, err := dc.scaleReplicaSet(ctx, rs, rsReplicas(rs)-n, d); err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// rolloutRecreate scales every old ReplicaSet to zero, waits until their
// pods are gone, then brings the new one up.
func (dc *Controller) rolloutRecreate(ctx context.Context, d *api.Deployment, rsList []*api.ReplicaSet) error {
	newRS, old, err := dc.getAllReplicaSetsAndSyncRevision(ctx, d, rsList, false)
	if err != nil {
		return err
	}
	all := append(append([]*api.ReplicaSet(nil), old...), newRS)
	scaledDown := false
	for _, rs := range activeOnly(old) {
		scaled, _, err := dc.scaleReplicaSet(ctx, rs, 0, d)
		if err != nil {
			return err
		}
		scaledDown = scaledDown || scaled
	}
	if scaledDown {
		return dc.syncRolloutStatus(ctx, all, newRS, d)
	}
	if dc.oldPodsRunning(newRS, old) {
		return dc.syncRolloutStatus(ctx, all, newRS, d)
	}
	if newRS == nil {
		newRS, old, err = dc.getAllReplicaSetsAndSyncRevision(ctx, d, rsList, true)
		if err != nil {
			return err
		}
		all = append(append([]*api.ReplicaSet(nil), old...), newRS)
	}
	if _, err := dc.reconcileNewReplicaSet(ctx, all, newRS, d); err != nil {
		return err
	}
	if complete(d, calculateStatus(all, newRS, d, dc.now())) {
		if err := dc.cleanupDeployment(ctx, old, d); err != nil {
			return err
		}
	}
	return dc.syncRolloutStatus(ctx, all, newRS, d)
}

// oldPodsRunning reports whether any pod of an old ReplicaSet still runs
// (or is still terminating): Recreate never overlaps old and new pods.
func (dc *Controller) oldPodsRunning(newRS *api.ReplicaSet, old []*api.ReplicaSet) bool {
	for _, rs := range old {
		if rs.GetStatus().GetReplicas() > 0 {
			return true
		}
		for _, p := range dc.pods.Lister().ByIndex(informer.IndexOwnerUID, rs.GetMetadata().GetUid()) {
			if newRS != nil && controllerutil.IsControlledBy(p.GetMetadata(), newRS.GetMetadata().GetUid()) {
				continue
			}
			switch p.GetStatus().GetPhase() {
			case controllerutil.PodFailed, controllerutil.PodSucceeded:
			default:
				return true
			}
		}
	}
	return false
}

func activeOnly(rss []*api.ReplicaSet) []*api.ReplicaSet {
	var out []*api.ReplicaSet
	for _, rs := range rss {
		if rs != nil && rsReplicas(rs) > 0 {
			out = append(out, rs)
		}
	}
	return out
}

// isScalingEvent reports a change of spec.replicas not yet carried to the
// active ReplicaSets' desired-replicas annotation.
func (dc *Controller) isScalingEvent(ctx context.Context, d *api.Deployment, rsList []*api.ReplicaSet) (bool, error) {
	newRS, old, err := dc.getAllReplicaSetsAndSyncRevision(ctx, d, rsList, false)
	if err != nil {
		return false, err
	}
	for _, rs := range activeOnly(append(old, newRS)) {
		desired, ok := intAnnotation(rs.GetMetadata(), AnnotationDesiredReplicas)
		if ok && desired != desiredReplicas(d) {
			return true, nil
		}
	}
	return false, nil
}

// syncScale resizes the ReplicaSets for a paused Deployment or a change
// of spec.replicas mid-rollout, then writes status.
func (dc *Controller) syncScale(ctx context.Context, d *api.Deployment, rsList []*api.ReplicaSet) error {
	newRS, old, err := dc.getAllReplicaSetsAndSyncRevision(ctx, d, rsList, false)
	if err != nil {
		return err
	}
	if err := dc.scale(ctx, d, newRS, old); err != nil {
		return err
	}
	if d.GetSpec().GetPaused() {
		if complete(d, calculateStatus(append(old, newRS), newRS, d, dc.now())) {
			if err := dc.cleanupDeployment(ctx, old, d); err != nil {
				return err
			}
		}
	}
	return dc.syncStatusOnly(ctx, d, rsList)
}

func (dc *Controller) scale(ctx context.Context, d *api.Deployment, newRS *api.ReplicaSet, old []*api.ReplicaSet) error {
	want := desiredReplicas(d)
	if rs := activeOrLatest(newRS, old); rs != nil {
		_, _, err := dc.scaleReplicaSet(ctx, rs, want, d)
		return err
	}
	if saturated(d, newRS) {
		for _, rs := range activeOnly(old) {
			if _, _, err := dc.scaleReplicaSet(ctx, rs, 0, d); err != nil {
				return err
			}
		}
		return nil
	}
	if strategyType(d) != StrategyRollingUpdate {
		return nil
	}
	all := activeOnly(append(append([]*api.ReplicaSet(nil), old...), newRS))
	allowed := want + maxSurge(d)
	toAdd := allowed - sumReplicas(all)
	bySizeThenAge(all, toAdd > 0)
	sizes := make([]int32, len(all))
	var added int32
	for i, rs := range all {
		p := proportion(rs, d, toAdd, added)
		sizes[i] = rsReplicas(rs) + p
		added += p
	}
	if len(all) > 0 {
		sizes[0] = max(sizes[0]+toAdd-added, 0)
	}
	for i, rs := range all {
		if _, _, err := dc.scaleReplicaSet(ctx, rs, sizes[i], d); err != nil {
			return err
		}
	}
	return nil
}

// activeOrLatest is the only active ReplicaSet, or, when none is active,
// the new one (else the newest old one); nil with several active.
func activeOrLatest(newRS *api.ReplicaSet, old []*api.ReplicaSet) *api.ReplicaSet {
	if newRS == nil && len(old) == 0 {
		return nil
	}
	active := activeOnly(append(append([]*api.ReplicaSet(nil), old...), newRS))
	switch len(active) {
	case 0:
		if newRS != nil {
			return newRS
		}
		sorted := append([]*api.ReplicaSet(nil), old...)
		byCreation(sorted)
		return sorted[len(sorted)-1]
	case 1:
		return active[0]
	}
	return nil
}

func saturated(d *api.Deployment, rs *api.ReplicaSet) bool {
	if rs == nil {
		return false
	}
	desired, ok := intAnnotation(rs.GetMetadata(), AnnotationDesiredReplicas)
	return ok && desired == desiredReplicas(d) && rsReplicas(rs) == desiredReplicas(d) &&
		rs.GetStatus().GetAvailableReplicas() == desiredReplicas(d)
}

func sortByRevision(rss []*api.ReplicaSet) {
	sort.SliceStable(rss, func(i, j int) bool {
		ri, rj := revision(rss[i].GetMetadata()), revision(rss[j].GetMetadata())
		if ri != rj {
			return ri < rj
		}
		return rss[i].GetMetadata().GetCreationTimestamp().AsTime().Before(rss[j].GetMetadata().GetCreationTimestamp().AsTime())
	})
}

func hasProgressDeadline(d *api.Deployment) bool {
	p := d.GetSpec().ProgressDeadlineSeconds
	return p != nil && *p != math.MaxInt32
}

func cloneStatus(d *api.Deployment) *api.DeploymentStatus {
	if d.GetStatus() == nil {
		return &api.DeploymentStatus{}
	}
	return proto.Clone(d.GetStatus()).(*api.DeploymentStatus)
}

// calculateStatus derives the Deployment's counts from its ReplicaSets.
func calculateStatus(all []*api.ReplicaSet, newRS *api.ReplicaSet, d *api.Deployment, now time.Time) *api.DeploymentStatus {
	st := &api.DeploymentStatus{
		ObservedGeneration: d.GetMetadata().GetGeneration(),
		CollisionCount:     d.GetStatus().CollisionCount,
		Conditions:         append([]*api.Condition(nil), d.GetStatus().GetConditions()...),
	}
	var total int32
	for _, rs := range all {
		if rs == nil {
			continue
		}
		st.Replicas += rs.GetStatus().GetReplicas()
		st.ReadyReplicas += rs.GetStatus().GetReadyReplicas()
		st.AvailableReplicas += rs.GetStatus().GetAvailableReplicas()
		total += rsReplicas(rs)
	}
	if newRS != nil {
		st.UpdatedReplicas = newRS.GetStatus().GetReplicas()
	}
	st.UnavailableReplicas = max(total-st.AvailableReplicas, 0)
	if st.AvailableReplicas >= desiredReplicas(d)-maxUnavailable(d) {
		st.Conditions = setCondition(st.Conditions, newCondition(ConditionAvailable, controllerutil.ConditionTrue,
			reasonMinimumReplicasAvailable, "Deployment has minimum availability.", now))
	} else {
		st.Conditions = setCondition(st.Conditions, newCondition(ConditionAvailable, controllerutil.ConditionFalse,
			reasonMinimumReplicasUnavailable, "Deployment does not have minimum availability.", now))
	}
	return st
}

// complete reports a Deployment whose every desired replica runs the new
// template and is available.
func complete(d *api.Deployment, st *api.DeploymentStatus) bool {
	want := desiredReplicas(d)
	return st.GetUpdatedReplicas() == want && st.GetReplicas() == want && st.GetAvailableReplicas() == want &&
		st.GetObservedGeneration() >= d.GetMetadata().GetGeneration()
}

// progressing reports a rollout that moved since the last status.
func progressing(d *api.Deployment, st *api.DeploymentStatus) bool {
	old := d.GetStatus()
	oldOld := old.GetReplicas() - old.GetUpdatedReplicas()
	newOld := st.GetReplicas() - st.GetUpdatedReplicas()
	return st.GetUpdatedReplicas() > old.GetUpdatedReplicas() || newOld < oldOld ||
		st.GetReadyReplicas() > old.GetReadyReplicas() || st.GetAvailableReplicas() > old.GetAvailableReplicas()
}

// syncRolloutStatus writes counts and the Progressing condition, and
// comes back when the progress deadline would pass.
func (dc *Controller) syncRolloutStatus(ctx context.Context, all []*api.ReplicaSet, newRS *api.ReplicaSet, d *api.Deployment) error {
	now := dc.now()
	st := calculateStatus(all, newRS, d, now)
	if !hasProgressDeadline(d) {
		st.Conditions = removeCondition(st.Conditions, ConditionProgressing)
	}
	cur := findCondition(st.Conditions, ConditionProgressing)
	name := newRS.GetMetadata().GetName()
	done := st.Replicas == st.UpdatedReplicas && cur != nil && cur.GetReason() == reasonNewRSAvailable
	var requeue time.Duration
	if hasProgressDeadline(d) && !done && !d.GetSpec().GetPaused() {
		switch {
		case complete(d, st):
			st.Conditions = setCondition(st.Conditions, newCondition(ConditionProgressing, controllerutil.ConditionTrue,
				reasonNewRSAvailable, fmt.Sprintf("ReplicaSet %q has successfully progressed.", name), now))
		case progressing(d, st):
			c := newCondition(ConditionProgressing, controllerutil.ConditionTrue, reasonRSUpdated,
				fmt.Sprintf("ReplicaSet %q is progressing.", name), now)
			if cur != nil && cur.GetStatus() == controllerutil.ConditionTrue {
				c.LastTransitionTime = cur.GetLastTransitionTime()
			}
			st.Conditions = append(removeCondition(st.Conditions, ConditionProgressing), c)
		case cur != nil && cur.GetReason() != reasonTimedOut && cur.GetLastUpdateTime() != nil:
			deadline := cur.GetLastUpdateTime().AsTime().Add(time.Duration(d.GetSpec().GetProgressDeadlineSeconds()) * time.Second)
			if now.After(deadline) {
				st.Conditions = setCondition(st.Conditions, newCondition(ConditionProgressing, controllerutil.ConditionFalse,
					reasonTimedOut, fmt.Sprintf("ReplicaSet %q has timed out progressing.", name), now))
			} else {
				requeue = deadline.Sub(now) + time.Second
			}
		}
	}
	if err := dc.writeStatus(ctx, d, st); err != nil {
		return err
	}
	if requeue > 0 {
		return &controllerutil.RequeueAfter{After: requeue}
	}
	return nil
}

// syncStatusOnly writes counts without touching the ReplicaSets.
func (dc *Controller) syncStatusOnly(ctx context.Context, d *api.Deployment, rsList []*api.ReplicaSet) error {
	newRS, old, err := dc.getAllReplicaSetsAndSyncRevision(ctx, d, rsList, false)
	if err != nil {
		return err
	}
	all := append(append([]*api.ReplicaSet(nil), old...), newRS)
	return dc.writeStatus(ctx, d, calculateStatus(all, newRS, d, dc.now()))
}

// checkPausedConditions records pausing and resuming in Progressing, so
// the progress deadline does not count paused time.
func (dc *Controller) checkPausedConditions(ctx context.Context, d *api.Deployment) error {
	if !hasProgressDeadline(d) {
		return nil
	}
	cur := findCondition(d.GetStatus().GetConditions(), ConditionProgressing)
	if cur != nil && cur.GetReason() == reasonTimedOut {
		return nil
	}
	pausedCond := cur != nil && cur.GetReason() == reasonPaused
	var c *api.Condition
	switch {
	case d.GetSpec().GetPaused() && !pausedCond:
		c = newCondition(ConditionProgressing, controllerutil.ConditionUnknown, reasonPaused, "Deployment is paused", dc.now())
	case !d.GetSpec().GetPaused() && pausedCond:
		c = newCondition(ConditionProgressing, controllerutil.ConditionUnknown, reasonResumed, "Deployment is resumed", dc.now())
	default:
		return nil
	}
	d.Status = cloneStatus(d)
	d.Status.Conditions = setCondition(d.Status.Conditions, c)
	return dc.updateStatus(ctx, d)
}

func (dc *Controller) writeStatus(ctx context.Context, d *api.Deployment, st *api.DeploymentStatus) error {
	if proto.Equal(d.GetStatus(), st) {
		return nil
	}
	d.Status = st
	return dc.updateStatus(ctx, d)
}

// updateStatus writes d.Status and keeps d current for later writes of
// the same sync.
func (dc *Controller) updateStatus(ctx context.Context, d *api.Deployment) error {
	out, err := dc.client.Deployments().UpdateStatus(ctx, d)
	if client.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update status of deployment %s: %w", kinds.Key(d), err)
	}
	proto.Reset(d)
	proto.Merge(d, out)
	return nil
}
