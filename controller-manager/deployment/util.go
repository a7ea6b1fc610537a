package deployment

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"sort"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/skiff-dev/skiff/internal/intstr"
	"github.com/skiff-dev/skiff/proto/api"
)

// Labels and annotations the controller writes, with Kubernetes' names so
// kubectl-minded tools find them.
const (
	LabelPodTemplateHash      = "pod-template-hash"
	AnnotationRevision        = "deployment.kubernetes.io/revision"
	AnnotationRevisionHistory = "deployment.kubernetes.io/revision-history"
	AnnotationDesiredReplicas = "deployment.kubernetes.io/desired-replicas"
	AnnotationMaxReplicas     = "deployment.kubernetes.io/max-replicas"

	StrategyRollingUpdate = "RollingUpdate"
	StrategyRecreate      = "Recreate"

	ConditionAvailable   = "Available"
	ConditionProgressing = "Progressing"
)

// Condition reasons, as in Kubernetes.
const (
	reasonMinimumReplicasAvailable   = "MinimumReplicasAvailable"
	reasonMinimumReplicasUnavailable = "MinimumReplicasUnavailable"
	reasonNewRSAvailable             = "NewReplicaSetAvailable"
	reasonNewRSCreated               = "NewReplicaSetCreated"
	reasonFoundNewRS                 = "FoundNewReplicaSet"
	reasonRSUpdated                  = "ReplicaSetUpdated"
	reasonTimedOut                   = "ProgressDeadlineExceeded"
	reasonPaused                     = "DeploymentPaused"
	reasonResumed                    = "DeploymentResumed"
)

// defaultSurgeOrUnavailable applies when the strategy leaves a fencepost out.
var defaultSurgeOrUnavailable = intstr.FromString("25%")

// ComputeHash is the pod-template-hash of a template: fnv32a over the
// template's deterministic encoding (and the collision count, when set),
// rendered with SafeEncodeString as Kubernetes does, so names look like
// "k8s-nginx-75f95db655".
func ComputeHash(template *api.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(template)
	if err != nil {
		panic(fmt.Sprintf("encode pod template: %v", err)) // a valid message always encodes
	}
	h.Write(b)
	if collisionCount != nil {
		buf := make([]byte, 8)
		binary.LittleEndian.PutUint32(buf, uint32(*collisionCount))
		h.Write(buf)
	}
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}

// EqualIgnoreHash compares two pod templates, ignoring the
// pod-template-hash label a ReplicaSet's copy carries.
func EqualIgnoreHash(a, b *api.PodTemplateSpec) bool {
	a = stripHash(a)
	b = stripHash(b)
	return proto.Equal(a, b)
}

func stripHash(t *api.PodTemplateSpec) *api.PodTemplateSpec {
	if _, ok := t.GetMetadata().GetLabels()[LabelPodTemplateHash]; !ok {
		return t
	}
	c := proto.Clone(t).(*api.PodTemplateSpec)
	delete(c.Metadata.Labels, LabelPodTemplateHash)
	return c
}

// desiredReplicas is spec.replicas with Kubernetes' default of 1.
func desiredReplicas(d *api.Deployment) int32 {
	if d.GetSpec().Replicas == nil {
		return 1
	}
	return d.GetSpec().GetReplicas()
}

func strategyType(d *api.Deployment) string {
	if t := d.GetSpec().GetStrategy().GetType(); t != "" {
		return t
	}
	return StrategyRollingUpdate
}

// resolveFenceposts turns maxSurge and maxUnavailable into numbers for
// this many replicas; both zero would never progress, so maxUnavailable
// becomes 1 then.
func resolveFenceposts(d *api.Deployment) (surge, unavailable int32, err error) {
	ru := d.GetSpec().GetStrategy().GetRollingUpdate()
	desired := int(desiredReplicas(d))
	sv, uv := ru.GetMaxSurge(), ru.GetMaxUnavailable()
	if sv == nil {
		sv = defaultSurgeOrUnavailable
	}
	if uv == nil {
		uv = defaultSurgeOrUnavailable
	}
	s, err := intstr.IntOrStringValue(sv, desired, true)
	if err != nil {
		return 0, 0, fmt.Errorf("spec.strategy.rollingUpdate.maxSurge: %w", err)
	}
	u, err := intstr.IntOrStringValue(uv, desired, false)
	if err != nil {
		return 0, 0, fmt.Errorf("spec.strategy.rollingUpdate.maxUnavailable: %w", err)
	}
	if s == 0 && u == 0 {
		u = 1
	}
	return int32(s), int32(u), nil
}

// maxUnavailable is how many of the desired replicas may be unavailable
// during a rolling update.
func maxUnavailable(d *api.Deployment) int32 {
	if strategyType(d) != StrategyRollingUpdate || desiredReplicas(d) == 0 {
		return 0
	}
	_, u, err := resolveFenceposts(d)
	if err != nil {
		return 0
	}
	return min(u, desiredReplicas(d))
}

// maxSurge is how many pods above the desired count may exist.
func maxSurge(d *api.Deployment) int32 {
	if strategyType(d) != StrategyRollingUpdate {
		return 0
	}
	s, _, err := resolveFenceposts(d)
	if err != nil {
		return 0
	}
	return s
}

func rsReplicas(rs *api.ReplicaSet) int32 {
	if rs == nil {
		return 0
	}
	return rs.GetSpec().GetReplicas()
}

// rsAvailable counts a ReplicaSet's available pods, never above its spec:
// a status that has not caught up with a scale-down must not make the
// rolling update believe in pods that are on their way out.
func rsAvailable(rs *api.ReplicaSet) int32 {
	if rs == nil {
		return 0
	}
	return min(rs.GetStatus().GetAvailableReplicas(), rs.GetSpec().GetReplicas())
}

func sumReplicas(rss []*api.ReplicaSet) (n int32) {
	for _, rs := range rss {
		n += rsReplicas(rs)
	}
	return n
}

func sumAvailable(rss []*api.ReplicaSet) (n int32) {
	for _, rs := range rss {
		n += rsAvailable(rs)
	}
	return n
}

// newRSReplicas is the size the new ReplicaSet may grow to now.
func newRSReplicas(d *api.Deployment, all []*api.ReplicaSet, newRS *api.ReplicaSet) (int32, error) {
	switch strategyType(d) {
	case StrategyRollingUpdate:
		surge, _, err := resolveFenceposts(d)
		if err != nil {
			return 0, err
		}
		current := sumReplicas(all)
		maxTotal := desiredReplicas(d) + surge
		if current >= maxTotal {
			return rsReplicas(newRS), nil
		}
		up := min(maxTotal-current, desiredReplicas(d)-rsReplicas(newRS))
		return rsReplicas(newRS) + max(up, 0), nil
	case StrategyRecreate:
		return desiredReplicas(d), nil
	}
	return 0, fmt.Errorf("spec.strategy.type: unknown strategy %q", strategyType(d))
}

// oldScaleDownBudget is how many old pods a rolling update may remove now
// without going below desired − maxUnavailable available pods.
func oldScaleDownBudget(d *api.Deployment, all []*api.ReplicaSet, newRS *api.ReplicaSet) int32 {
	minAvailable := desiredReplicas(d) - maxUnavailable(d)
	newUnavailable := rsReplicas(newRS) - rsAvailable(newRS)
	return sumReplicas(all) - minAvailable - newUnavailable
}

// revision reads a ReplicaSet's revision annotation (0 when absent).
func revision(m *api.ObjectMeta) int64 {
	v, err := strconv.ParseInt(m.GetAnnotations()[AnnotationRevision], 10, 64)
	if err != nil {
		return 0
	}
	return v
}

func maxRevision(rss []*api.ReplicaSet) int64 {
	var m int64
	for _, rs := range rss {
		m = max(m, revision(rs.GetMetadata()))
	}
	return m
}

// byCreation orders ReplicaSets oldest first (name breaks ties).
func byCreation(rss []*api.ReplicaSet) {
	sort.SliceStable(rss, func(i, j int) bool {
		a, b := rss[i].GetMetadata(), rss[j].GetMetadata()
		ta, tb := a.GetCreationTimestamp().AsTime(), b.GetCreationTimestamp().AsTime()
		if !ta.Equal(tb) {
			return ta.Before(tb)
		}
		return a.GetName() < b.GetName()
	})
}

// bySizeThenAge orders ReplicaSets largest first; ties go to the newer one
// when newerFirst, else to the older one.
func bySizeThenAge(rss []*api.ReplicaSet, newerFirst bool) {
	sort.SliceStable(rss, func(i, j int) bool {
		if a, b := rsReplicas(rss[i]), rsReplicas(rss[j]); a != b {
			return a > b
		}
		ta := rss[i].GetMetadata().GetCreationTimestamp().AsTime()
		tb := rss[j].GetMetadata().GetCreationTimestamp().AsTime()
		if newerFirst {
			return ta.After(tb)
		}
		return ta.Before(tb)
	})
}

// proportion is how many of toAdd replicas rs gets when a deployment is
// resized in the middle of a rollout: its share of the old size, bounded
// by what is left to hand out.
func proportion(rs *api.ReplicaSet, d *api.Deployment, toAdd, added int32) int32 {
	if rsReplicas(rs) == 0 || toAdd == 0 || toAdd == added {
		return 0
	}
	frac := fraction(rs, d)
	allowed := toAdd - added
	if toAdd > 0 {
		return min(frac, allowed)
	}
	return max(frac, allowed)
}

func fraction(rs *api.ReplicaSet, d *api.Deployment) int32 {
	if desiredReplicas(d) == 0 {
		return -rsReplicas(rs)
	}
	deploymentMax := desiredReplicas(d) + maxSurge(d)
	annotated, ok := intAnnotation(rs.GetMetadata(), AnnotationMaxReplicas)
	if !ok || annotated == 0 {
		annotated = d.GetStatus().GetReplicas()
	}
	if annotated == 0 {
		return 0
	}
	newSize := float64(rsReplicas(rs)*deploymentMax) / float64(annotated)
	return int32(math.Round(newSize)) - rsReplicas(rs)
}

func intAnnotation(m *api.ObjectMeta, key string) (int32, bool) {
	v, ok := m.GetAnnotations()[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}

// setCondition puts cond into conds, keeping the transition time when the
// status does not change and leaving conds alone when nothing changes.
func setCondition(conds []*api.Condition, cond *api.Condition) []*api.Condition {
	for i, c := range conds {
		if c.GetType() != cond.GetType() {
			continue
		}
		if c.GetStatus() == cond.GetStatus() && c.GetReason() == cond.GetReason() {
			return conds
		}
		if c.GetStatus() == cond.GetStatus() {
			cond.LastTransitionTime = c.GetLastTransitionTime()
		}
		out := append([]*api.Condition(nil), conds...)
		out[i] = cond
		return out
	}
	return append(append([]*api.Condition(nil), conds...), cond)
}

func newCondition(typ, status, reason, msg string, now time.Time) *api.Condition {
	ts := timestamppb.New(now)
	return &api.Condition{Type: typ, Status: status, Reason: reason, Message: msg, LastTransitionTime: ts, LastUpdateTime: ts}
}

func findCondition(conds []*api.Condition, typ string) *api.Condition {
	for _, c := range conds {
		if c.GetType() == typ {
			return c
		}
	}
	return nil
}

func removeCondition(conds []*api.Condition, typ string) []*api.Condition {
	var out []*api.Condition
	for _, c := range conds {
		if c.GetType() != typ {
			out = append(out, c)
		}
	}
	return out
}
