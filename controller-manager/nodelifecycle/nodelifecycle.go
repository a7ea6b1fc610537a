// Package nodelifecycle watches node heartbeats: a node whose Lease in
// skiff-system is not renewed within the grace period turns Ready=Unknown
// and gets the node.kubernetes.io/unreachable:NoExecute taint (a kubelet
// reporting NotReady: node.kubernetes.io/not-ready). Its pods are then
// deleted so their controllers replace them on other nodes: a pod that
// tolerates the taint after its tolerationSeconds (never without), any
// other once the node has not been ready for the pod eviction timeout
// (Kubernetes' default 300 s tolerations). A renewed Lease lifts the taint.
//
// It must never judge a node by clocks it does not own: a Lease counts as
// renewed when this controller sees its renewTime change, not by comparing
// the kubelet's clock with its own.
package nodelifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skiff-dev/skiff/controller-manager/controllerutil"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/events"
	"github.com/skiff-dev/skiff/internal/informer"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/internal/taints"
	"github.com/skiff-dev/skiff/proto/api"
)

// Name is the controller's name in logs, metrics and flags.
const Name = "nodelifecycle"

// Taints and reasons, as in Kubernetes.
const (
	TaintUnreachable = "node.kubernetes.io/unreachable"
	TaintNotReady    = "node.kubernetes.io/not-ready"
	TaintNoExecute   = taints.EffectNoExecute

	reasonNodeStatusUnknown = "NodeStatusUnknown"
)

// Config tunes the controller.
type Config struct {
	// LeaseNamespace holds the node heartbeat Leases (skiff-system).
	LeaseNamespace string
	// MonitorPeriod is how often every node is checked (default 5s).
	MonitorPeriod time.Duration
	// GracePeriod is how long a Lease may go unrenewed (default 40s).
	GracePeriod time.Duration
	// PodEvictionTimeout is how long a node may be not ready before its
	// pods are deleted (default 5m).
	PodEvictionTimeout time.Duration
}

func (c *Config) defaults() {
	if c.LeaseNamespace == "" {
		c.LeaseNamespace = "skiff-system"
	}
	if c.MonitorPeriod <= 0 {
		c.MonitorPeriod = 5 * time.Second
	}
	if c.GracePeriod <= 0 {
		c.GracePeriod = 40 * time.Second
	}
	if c.PodEvictionTimeout <= 0 {
		c.PodEvictionTimeout = 5 * time.Minute
	}
}

// Controller is the node lifecycle controller.
type Controller struct {
	client   *client.Client
	nodes    *informer.Informer[*api.Node]
	leases   *informer.Informer[*api.Lease]
	pods     *informer.Informer[*api.Pod]
	queue    controllerutil.Queue
	recorder events.EventRecorder
	logger   *slog.Logger
	metrics  *controllerutil.Metrics
	cfg      Config
	now      func() time.Time

	mu     sync.Mutex
	probes map[string]*probe
}

// probe is when this controller last saw a node's Lease change.
type probe struct {
	renewTime  string // the Lease's renewTime (and holder) as last seen
	observedAt time.Time
}

// New wires the controller to the shared informers (leases of
// cfg.LeaseNamespace at least); call before they run.
func New(c *client.Client, nodes *informer.Informer[*api.Node], leases *informer.Informer[*api.Lease],
	pods *informer.Informer[*api.Pod], rec events.EventRecorder, logger *slog.Logger,
	m *controllerutil.Metrics, cfg Config) *Controller {
	cfg.defaults()
	nc := &Controller{
		client: c, nodes: nodes, leases: leases, pods: pods, recorder: rec, metrics: m, cfg: cfg,
		logger: logger.With("controller", Name),
		queue:  controllerutil.NewQueue(Name, m),
		now:    time.Now,
		probes: map[string]*probe{},
	}
	nodes.AddEventHandler(informer.Handler[*api.Node]{
		OnAdd:    func(n *api.Node) { nc.queue.Add(n.GetMetadata().GetName()) },
		OnDelete: func(n *api.Node) { nc.queue.Add(n.GetMetadata().GetName()) },
	})
	onLease := func(l *api.Lease) {
		if l.GetMetadata().GetNamespace() == cfg.LeaseNamespace {
			nc.queue.Add(l.GetMetadata().GetName())
		}
	}
	leases.AddEventHandler(informer.Handler[*api.Lease]{
		OnAdd:    onLease,
		OnUpdate: func(_, l *api.Lease) { onLease(l) },
	})
	return nc
}

// Run checks every node each MonitorPeriod and on every Lease change
// until ctx ends. The informers must be running.
func (nc *Controller) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(nc.cfg.MonitorPeriod)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				for _, n := range nc.nodes.Lister().List(nil) {
					nc.queue.Add(n.GetMetadata().GetName())
				}
			}
		}
	})
	w := &controllerutil.Worker{Name: Name, Queue: nc.queue, Sync: nc.sync, Logger: nc.logger, Metrics: nc.metrics}
	w.Run(ctx, 1)
	wg.Wait()
}

// leaseRenewal is what identifies one heartbeat of a Lease.
func leaseRenewal(l *api.Lease) string {
	if l == nil {
		return ""
	}
	return l.GetSpec().GetRenewTime().AsTime().String() + "|" + l.GetMetadata().GetResourceVersion()
}

// lastHeartbeat updates the node's probe and returns when its Lease was
// last seen to change.
func (nc *Controller) lastHeartbeat(name string, now time.Time) time.Time {
	lease, _ := nc.leases.Lister().Get(nc.cfg.LeaseNamespace, name)
	renewal := leaseRenewal(lease)
	nc.mu.Lock()
	defer nc.mu.Unlock()
	p, ok := nc.probes[name]
	if !ok {
		// First sight (or a restart): the node gets a full grace period.
		p = &probe{renewTime: renewal, observedAt: now}
		nc.probes[name] = p
	}
	if renewal != p.renewTime {
		p.renewTime = renewal
		p.observedAt = now
	}
	return p.observedAt
}

func (nc *Controller) sync(ctx context.Context, name string) error {
	node, ok := nc.nodes.Lister().Get("", name)
	if !ok {
		nc.mu.Lock()
		delete(nc.probes, name)
		nc.mu.Unlock()
		return nil
	}
	now := nc.now()
	stale := now.Sub(nc.lastHeartbeat(name, now)) > nc.cfg.GracePeriod
	if stale {
		var err error
		if node, err = nc.markUnknown(ctx, node, now); err != nil {
			return err
		}
	}
	ready := controllerutil.Condition(node.GetStatus().GetConditions(), "Ready")
	reportsNotReady := ready != nil && ready.GetStatus() == controllerutil.ConditionFalse
	want := ""
	switch {
	case stale:
		want = TaintUnreachable
	case reportsNotReady:
		want = TaintNotReady
	}
	// A node whose heartbeat came back but whose Ready is still Unknown
	// waits for its kubelet to post Ready; it is neither tainted nor
	// evicted meanwhile.
	taint, err := nc.setTaint(ctx, node, want)
	if err != nil || taint == nil {
		return err
	}
	return nc.evictPods(ctx, node, taint, ready.GetLastTransitionTime().AsTime(), stale)
}

// markUnknown turns a silent node's Ready condition Unknown.
func (nc *Controller) markUnknown(ctx context.Context, node *api.Node, now time.Time) (*api.Node, error) {
	ready := controllerutil.Condition(node.GetStatus().GetConditions(), "Ready")
	if ready != nil && ready.GetStatus() == controllerutil.ConditionUnknown {
		return node, nil
	}
	n := proto.Clone(node).(*api.Node)
	if n.Status == nil {
		n.Status = &api.NodeStatus{}
	}
	ts := timestamppb.New(now)
	cond := &api.Condition{Type: "Ready", Status: controllerutil.ConditionUnknown, Reason: reasonNodeStatusUnknown,
		Message: "Kubelet stopped posting node status.", LastTransitionTime: ts, LastProbeTime: ts}
	if c := controllerutil.Condition(n.Status.Conditions, "Ready"); c != nil {
		cond.LastHeartbeatTime = c.GetLastHeartbeatTime()
		proto.Reset(c)
		proto.Merge(c, cond)
	} else {
		n.Status.Conditions = append(n.Status.Conditions, cond)
	}
	out, err := nc.client.Nodes().UpdateStatus(ctx, n)
	if err != nil {
		return nil, fmt.Errorf("mark node %s not ready: %w", node.GetMetadata().GetName(), err)
	}
	nc.logger.Warn("node stopped heartbeating", "node", node.GetMetadata().GetName(), "grace_period", nc.cfg.GracePeriod)
	nc.recorder.Eventf(out, events.Normal, "NodeNotReady", "Node %s status is now: NodeNotReady", node.GetMetadata().GetName())
	return out, nil
}

// setTaint makes want the node's only lifecycle NoExecute taint ("" none)
// and returns that taint as the node has it (nil for none).
func (nc *Controller) setTaint(ctx context.Context, node *api.Node, want string) (*api.Taint, error) {
	if current, changed := retaint(node.GetSpec().GetTaints(), want, nc.now()); !changed {
		return lifecycleTaint(current), nil
	}
	name := node.GetMetadata().GetName()
	out, err := controllerutil.Update(ctx, nc.client.Nodes(), node, func(n *api.Node) bool {
		if n.Spec == nil {
			n.Spec = &api.NodeSpec{}
		}
		var changed bool
		n.Spec.Taints, changed = retaint(n.Spec.Taints, want, nc.now())
		return changed
	})
	if err != nil {
		return nil, fmt.Errorf("set taint %q on node %s: %w", want, name, err)
	}
	if want == "" {
		nc.logger.Info("node heartbeat is back, removed lifecycle taints", "node", name)
	} else {
		nc.logger.Info("tainted node", "node", name, "taint", want)
	}
	return lifecycleTaint(out.GetSpec().GetTaints()), nil
}

// lifecycleTaint is this controller's NoExecute taint among taints, if any.
func lifecycleTaint(ts []*api.Taint) *api.Taint {
	for _, t := range ts {
		if (t.GetKey() == TaintUnreachable || t.GetKey() == TaintNotReady) && t.GetEffect() == TaintNoExecute {
			return t
		}
	}
	return nil
}

// retaint returns taints with want as the only lifecycle NoExecute taint
// ("" for none), keeping the time a taint already there was added, and
// whether that changes anything.
func retaint(taints []*api.Taint, want string, now time.Time) ([]*api.Taint, bool) {
	var out []*api.Taint
	has, changed := false, false
	for _, t := range taints {
		if (t.GetKey() == TaintUnreachable || t.GetKey() == TaintNotReady) && t.GetEffect() == TaintNoExecute {
			if t.GetKey() == want && !has {
				has = true
				out = append(out, t)
			} else {
				changed = true
			}
			continue
		}
		out = append(out, t)
	}
	if want != "" && !has {
		out = append(out, &api.Taint{Key: want, Effect: TaintNoExecute, TimeAdded: timestamppb.New(now)})
		changed = true
	}
	return out, changed
}

// evictPods deletes the pods bound to the tainted node whose time there is
// up (evictionTime) and asks to be called again when the next one is due.
// Force (grace period 0) is for an unreachable node, whose kubelet is not
// there to finish a graceful deletion; a kubelet that reports NotReady
// still can.
func (nc *Controller) evictPods(ctx context.Context, node *api.Node, taint *api.Taint, notReadySince time.Time, force bool) error {
	name := node.GetMetadata().GetName()
	now := nc.now()
	opts := client.DeleteOptions{}
	if force {
		zero := int64(0)
		opts.GracePeriodSeconds = &zero
	}
	var next time.Duration
	evicted := 0
	for _, p := range nc.pods.Lister().ByIndex(informer.IndexNodeName, name) {
		if !force && p.GetMetadata().GetDeletionTimestamp() != nil {
			continue // already going, gracefully
		}
		due, ok := nc.evictionTime(p, taint, notReadySince)
		if !ok {
			continue
		}
		if wait := due.Sub(now); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		o := opts
		o.Preconditions = &api.Preconditions{Uid: p.GetMetadata().GetUid()}
		_, err := nc.client.Pods().Delete(ctx, p.GetMetadata().GetNamespace(), p.GetMetadata().GetName(), o)
		if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
			return fmt.Errorf("evict pod %s from node %s: %w", kinds.Key(p), name, err)
		}
		nc.recorder.Eventf(p, events.Normal, "NodeControllerEviction", "Marking for deletion Pod %s from Node %s", p.GetMetadata().GetName(), name)
		evicted++
	}
	if evicted > 0 {
		nc.logger.Warn("evicted pods from a node that is not ready", "node", name, "taint", taint.GetKey(), "pods", evicted)
	}
	if next > 0 {
		return &controllerutil.RequeueAfter{After: next}
	}
	return nil
}

// evictionTime is when a pod has to leave a node with the NoExecute
// taint: a pod tolerating the taint stays for its tolerationSeconds from
// when the taint was added, or forever (ok false) without; any other pod
// for the pod eviction timeout from when the node stopped being ready,
// which stands in for the default not-ready and unreachable tolerations
// Kubernetes' admission gives every pod.
func (nc *Controller) evictionTime(p *api.Pod, taint *api.Taint, notReadySince time.Time) (due time.Time, ok bool) {
	tol := taints.ForNoExecute(p.GetSpec().GetTolerations(), taint)
	switch {
	case tol.Forever:
		return time.Time{}, false
	case tol.Tolerated:
		return taint.GetTimeAdded().AsTime().Add(tol.For), true
	default:
		return notReadySince.Add(nc.cfg.PodEvictionTimeout), true
	}
}
