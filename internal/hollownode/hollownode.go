// Package hollownode is a kubelet without containers, for tests and
// benchmarks: it registers a Node, renews its heartbeat Lease in
// skiff-system, marks the pods bound to it Running and Ready with a pod IP
// from the node's podCIDR, and removes pods being deleted at once, as a
// kubelet does once their containers stopped.
//
// Many hollow nodes can share one Fleet: one pod watch, one heartbeat loop
// and a few workers for all of them, so a thousand nodes cost a handful of
// goroutines. It must never be used outside tests and benchmarks: nothing
// runs.
package hollownode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/informer"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// LeaseNamespace holds node heartbeat Leases.
const LeaseNamespace = "skiff-system"

// DefaultCapacity is a hollow node's capacity unless Options say otherwise.
func DefaultCapacity() map[string]string {
	return map[string]string{"cpu": "4", "memory": "16Gi", "pods": "110"}
}

// FleetOptions tune a Fleet.
type FleetOptions struct {
	// HeartbeatInterval is how often every node's Lease is renewed
	// (default 1s).
	HeartbeatInterval time.Duration
	// LeaseDurationSeconds is written into the Leases (default 40).
	LeaseDurationSeconds int32
	// Workers update pod status in parallel (default 4).
	Workers int
	Logger  *slog.Logger

	// fieldSelector narrows the pod watch (a single node's fleet).
	fieldSelector string
}

// Fleet runs any number of hollow nodes over one pod watch.
type Fleet struct {
	client *client.Client
	opts   FleetOptions
	log    *slog.Logger
	pods   *informer.Informer[*api.Pod]
	queue  workqueue.TypedRateLimitingInterface[string]
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	nodes map[string]*Node
	count int
}

// NewFleet starts a fleet's watch, heartbeat loop and workers; they stop
// with ctx or Close.
func NewFleet(ctx context.Context, c *client.Client, opts FleetOptions) *Fleet {
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = time.Second
	}
	if opts.LeaseDurationSeconds <= 0 {
		opts.LeaseDurationSeconds = 40
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.fieldSelector == "" {
		opts.fieldSelector = "spec.nodeName!="
	}
	ctx, cancel := context.WithCancel(ctx)
	f := &Fleet{
		client: c, opts: opts, cancel: cancel,
		log:   opts.Logger.With("component", "hollownode"),
		queue: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		nodes: map[string]*Node{},
	}
	f.pods = informer.New(c.Pods(), informer.Options{FieldSelector: opts.fieldSelector, Logger: f.log})
	f.pods.AddEventHandler(informer.Handler[*api.Pod]{
		OnAdd:    f.enqueue,
		OnUpdate: func(_, p *api.Pod) { f.enqueue(p) },
		OnDelete: func(p *api.Pod) {
			if n := f.node(p.GetSpec().GetNodeName()); n != nil {
				n.releaseIP(kinds.Key(p))
			}
		},
	})
	f.wg.Go(func() { f.pods.Run(ctx) })
	f.wg.Go(func() { f.heartbeatLoop(ctx) })
	for range opts.Workers {
		f.wg.Go(func() {
			for f.processNext(ctx) {
			}
		})
	}
	f.wg.Go(func() {
		<-ctx.Done()
		f.queue.ShutDown()
	})
	return f
}

// Close stops the fleet and waits for its goroutines. Nodes stay
// registered, silent, as after a power cut.
func (f *Fleet) Close() {
	f.cancel()
	f.wg.Wait()
}

func (f *Fleet) node(name string) *Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nodes[name]
}

func (f *Fleet) enqueue(p *api.Pod) {
	if f.node(p.GetSpec().GetNodeName()) != nil {
		f.queue.Add(kinds.Key(p))
	}
}

// Options describe one hollow node.
type Options struct {
	// Capacity (and allocatable) of the node; default DefaultCapacity.
	Capacity map[string]string
	Labels   map[string]string
	Taints   []*api.Taint
	// InternalIP is the node's address (default from 198.18.0.0/15, a
	// range reserved for benchmarks; nothing is ever sent there).
	InternalIP string
	// Fleet shares one watch and heartbeat loop among nodes; nil gives the
	// node a fleet of its own, closed by Node.Close.
	Fleet *Fleet
	// FleetOptions configure the node's own fleet when Fleet is nil.
	FleetOptions FleetOptions
}

// Node is one hollow node.
type Node struct {
	Name  string
	IP    string
	uid   string // the Node object's
	fleet *Fleet
	own   bool // the fleet is this node's alone
	index int

	heartbeating atomic.Bool

	mu       sync.Mutex
	lease    *api.Lease
	podCIDR  netip.Prefix
	lastPeek time.Time
	next     int
	ips      map[string]string // pod key → IP
	used     map[string]bool
}

// Start registers a hollow node and starts heartbeating.
func Start(ctx context.Context, c *client.Client, name string, opts Options) (*Node, error) {
	fleet, own := opts.Fleet, false
	if fleet == nil {
		fo := opts.FleetOptions
		fo.fieldSelector = "spec.nodeName=" + name
		fleet, own = NewFleet(ctx, c, fo), true
	}
	fleet.mu.Lock()
	if _, dup := fleet.nodes[name]; dup {
		fleet.mu.Unlock()
		return nil, fmt.Errorf("hollow node %s is already in the fleet", name)
	}
	index := fleet.count
	fleet.count++
	fleet.mu.Unlock()

	n := &Node{Name: name, IP: opts.InternalIP, fleet: fleet, own: own, index: index,
		ips: map[string]string{}, used: map[string]bool{}}
	if n.IP == "" {
		n.IP = netip.AddrFrom4([4]byte{198, 18 + byte(index>>16&1), byte(index >> 8), byte(index)}).String()
	}
	if err := n.register(ctx, opts); err != nil {
		if own {
			fleet.Close()
		}
		return nil, err
	}
	if err := n.renew(ctx); err != nil {
		if own {
			fleet.Close()
		}
		return nil, fmt.Errorf("hollow node %s: first heartbeat: %w", name, err)
	}
	n.heartbeating.Store(true)
	fleet.mu.Lock()
	fleet.nodes[name] = n
	fleet.mu.Unlock()
	// Pods bound before the node joined the fleet.
	for _, p := range fleet.pods.Lister().ByIndex(informer.IndexNodeName, name) {
		fleet.queue.Add(kinds.Key(p))
	}
	return n, nil
}

// Close stops the node's own fleet (a shared fleet is the caller's to
// close). The Node object stays, as a powered-off machine's would.
func (n *Node) Close() {
	n.heartbeating.Store(false)
	if n.own {
		n.fleet.Close()
	}
}

// StopHeartbeat makes the node go silent, as a dead kubelet: no Lease
// renewals, no pod status, no deletions.
func (n *Node) StopHeartbeat() { n.heartbeating.Store(false) }

// ResumeHeartbeat brings the node back: it renews its Lease, posts
// Ready=True and catches up with its pods.
func (n *Node) ResumeHeartbeat(ctx context.Context) error {
	if err := n.renew(ctx); err != nil {
		return err
	}
	if err := n.postReady(ctx); err != nil {
		return err
	}
	n.heartbeating.Store(true)
	for _, p := range n.fleet.pods.Lister().ByIndex(informer.IndexNodeName, n.Name) {
		n.fleet.queue.Add(kinds.Key(p))
	}
	return nil
}

func readyCondition(now time.Time) *api.Condition {
	ts := timestamppb.New(now)
	return &api.Condition{Type: "Ready", Status: "True", Reason: "KubeletReady", Message: "hollow kubelet is posting ready status",
		LastTransitionTime: ts, LastHeartbeatTime: ts}
}

func (n *Node) register(ctx context.Context, opts Options) error {
	capacity := opts.Capacity
	if capacity == nil {
		capacity = DefaultCapacity()
	}
	labels := map[string]string{"kubernetes.io/hostname": n.Name, "kubernetes.io/os": "linux"}
	maps.Copy(labels, opts.Labels)
	node := &api.Node{
		Metadata: &api.ObjectMeta{Name: n.Name, Labels: labels},
		Spec:     &api.NodeSpec{Taints: opts.Taints},
		Status: &api.NodeStatus{
			Capacity: maps.Clone(capacity), Allocatable: maps.Clone(capacity),
			Conditions: []*api.Condition{readyCondition(time.Now())},
			Addresses:  []*api.NodeAddress{{Type: "InternalIP", Address: n.IP}, {Type: "Hostname", Address: n.Name}},
			NodeInfo:   &api.NodeSystemInfo{KubeletVersion: "hollow", OperatingSystem: "linux", Architecture: "amd64", ContainerRuntimeVersion: "hollow://0"},
		},
	}
	nodes := n.fleet.client.Nodes()
	created, err := nodes.Create(ctx, node)
	switch {
	case client.IsAlreadyExists(err):
		created, err = nodes.Get(ctx, "", n.Name)
		if err != nil {
			return fmt.Errorf("hollow node %s: read existing node: %w", n.Name, err)
		}
	case err != nil:
		return fmt.Errorf("hollow node %s: register: %w", n.Name, err)
	}
	n.uid = created.GetMetadata().GetUid()
	if proto.Equal(created.GetStatus(), node.GetStatus()) {
		return nil
	}
	// Create may drop status, as UpdateStatus owns it: post it.
	upd := proto.Clone(created).(*api.Node)
	upd.Status = node.Status
	if _, err := nodes.UpdateStatus(ctx, upd); err != nil {
		return fmt.Errorf("hollow node %s: post status: %w", n.Name, err)
	}
	return nil
}

// postReady sets the Ready condition True again after a silence.
func (n *Node) postReady(ctx context.Context) error {
	nodes := n.fleet.client.Nodes()
	for attempt := 0; ; attempt++ {
		cur, err := nodes.Get(ctx, "", n.Name)
		if err != nil {
			return fmt.Errorf("hollow node %s: read node: %w", n.Name, err)
		}
		upd := proto.Clone(cur).(*api.Node)
		if upd.Status == nil {
			upd.Status = &api.NodeStatus{}
		}
		var conds []*api.Condition
		for _, c := range upd.Status.Conditions {
			if c.GetType() != "Ready" {
				conds = append(conds, c)
			}
		}
		upd.Status.Conditions = append(conds, readyCondition(time.Now()))
		_, err = nodes.UpdateStatus(ctx, upd)
		if client.IsConflict(err) && attempt < 5 {
			continue
		}
		if err != nil {
			return fmt.Errorf("hollow node %s: post ready: %w", n.Name, err)
		}
		return nil
	}
}

// renew writes one heartbeat.
func (n *Node) renew(ctx context.Context) error {
	leases := n.fleet.client.Leases()
	n.mu.Lock()
	lease := n.lease
	n.mu.Unlock()
	now := timestamppb.Now()
	var out *api.Lease
	var err error
	if lease == nil {
		dur := n.fleet.opts.LeaseDurationSeconds
		out, err = leases.Create(ctx, &api.Lease{
			Metadata: &api.ObjectMeta{Name: n.Name, Namespace: LeaseNamespace, OwnerReferences: []*api.OwnerReference{
				// As the kubelet does: the Lease goes with its Node.
				{ApiVersion: "v1", Kind: "Node", Name: n.Name, Uid: n.uid},
			}},
			Spec: &api.LeaseSpec{HolderIdentity: n.Name, LeaseDurationSeconds: &dur, RenewTime: now, AcquireTime: now},
		})
		if client.IsAlreadyExists(err) {
			lease, err = leases.Get(ctx, LeaseNamespace, n.Name)
		}
	}
	if lease != nil && err == nil {
		upd := proto.Clone(lease).(*api.Lease)
		upd.Spec.RenewTime = now
		out, err = leases.Update(ctx, upd)
	}
	if err != nil {
		if client.IsConflict(err) || client.IsNotFound(err) {
			n.mu.Lock()
			n.lease = nil // re-read (or re-create) on the next beat
			n.mu.Unlock()
		}
		return err
	}
	n.mu.Lock()
	n.lease = out
	n.mu.Unlock()
	return nil
}

func (f *Fleet) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(f.opts.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f.mu.Lock()
		nodes := make([]*Node, 0, len(f.nodes))
		for _, n := range f.nodes {
			if n.heartbeating.Load() {
				nodes = append(nodes, n)
			}
		}
		f.mu.Unlock()
		g := errgroup.Group{}
		g.SetLimit(16)
		for _, n := range nodes {
			g.Go(func() error {
				if err := n.renew(ctx); err != nil && ctx.Err() == nil {
					f.log.Debug("heartbeat failed", "node", n.Name, "err", err)
				}
				return nil
			})
		}
		_ = g.Wait()
	}
}

func (f *Fleet) processNext(ctx context.Context) bool {
	key, shutdown := f.queue.Get()
	if shutdown {
		return false
	}
	defer f.queue.Done(key)
	if err := f.syncPod(ctx, key); err != nil && ctx.Err() == nil {
		f.log.Debug("pod sync failed", "pod", key, "err", err)
		f.queue.AddRateLimited(key)
		return true
	}
	f.queue.Forget(key)
	return true
}

func (f *Fleet) syncPod(ctx context.Context, key string) error {
	ns, name := kinds.SplitKey(key)
	pod, ok := f.pods.Lister().Get(ns, name)
	if !ok {
		return nil
	}
	n := f.node(pod.GetSpec().GetNodeName())
	if n == nil || !n.heartbeating.Load() {
		return nil
	}
	if pod.GetMetadata().GetDeletionTimestamp() != nil {
		zero := int64(0)
		_, err := f.client.Pods().Delete(ctx, ns, name, client.DeleteOptions{
			GracePeriodSeconds: &zero, Preconditions: &api.Preconditions{Uid: pod.GetMetadata().GetUid()},
		})
		if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
			return fmt.Errorf("remove terminated pod %s: %w", key, err)
		}
		n.releaseIP(key)
		return nil
	}
	if ph := pod.GetStatus().GetPhase(); ph == "Succeeded" || ph == "Failed" {
		return nil
	}
	ip, err := n.podIP(ctx, key, pod.GetStatus().GetPodIp())
	if err != nil {
		return err
	}
	want := runningStatus(pod, n, ip, time.Now())
	if statusCurrent(pod.GetStatus(), want) {
		return nil
	}
	upd := proto.Clone(pod).(*api.Pod)
	upd.Status = want
	if _, err := f.client.Pods().UpdateStatus(ctx, upd); err != nil && !client.IsNotFound(err) {
		// A conflict brings the newer pod through the watch.
		if client.IsConflict(err) {
			return nil
		}
		return fmt.Errorf("post status of pod %s: %w", key, err)
	}
	return nil
}

// statusCurrent reports a status that already says what want says, so a
// running pod is not rewritten on every event.
func statusCurrent(have, want *api.PodStatus) bool {
	if have.GetPhase() != want.GetPhase() || have.GetPodIp() != want.GetPodIp() || have.GetHostIp() != want.GetHostIp() ||
		len(have.GetContainerStatuses()) != len(want.GetContainerStatuses()) {
		return false
	}
	for _, c := range want.GetConditions() {
		found := false
		for _, h := range have.GetConditions() {
			if h.GetType() == c.GetType() && h.GetStatus() == c.GetStatus() {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func runningStatus(pod *api.Pod, n *Node, ip string, now time.Time) *api.PodStatus {
	ts := timestamppb.New(now)
	start := pod.GetStatus().GetStartTime()
	if start == nil {
		start = ts
	}
	cond := func(typ string) *api.Condition {
		for _, c := range pod.GetStatus().GetConditions() {
			if c.GetType() == typ && c.GetStatus() == "True" {
				return c
			}
		}
		return &api.Condition{Type: typ, Status: "True", LastTransitionTime: ts}
	}
	st := &api.PodStatus{
		Phase:      "Running",
		Conditions: []*api.Condition{cond("PodScheduled"), cond("Initialized"), cond("ContainersReady"), cond("Ready")},
		HostIp:     n.IP, PodIp: ip, PodIps: []*api.PodIP{{Ip: ip}},
		StartTime: start, QosClass: pod.GetStatus().GetQosClass(),
	}
	yes := true
	for _, c := range pod.GetSpec().GetContainers() {
		st.ContainerStatuses = append(st.ContainerStatuses, &api.ContainerStatus{
			Name: c.GetName(), Image: c.GetImage(), ImageId: "hollow://" + c.GetImage(),
			ContainerId: "hollow://" + pod.GetMetadata().GetUid() + "/" + c.GetName(),
			Ready:       true, Started: &yes,
			State: &api.ContainerState{Running: &api.ContainerStateRunning{StartedAt: start}},
		})
	}
	return st
}

// errNoIP means the node's pod range is exhausted.
var errNoIP = errors.New("no free pod IP on hollow node")

// podIP returns the pod's IP, keeping one it already has.
func (n *Node) podIP(ctx context.Context, key, have string) (string, error) {
	n.mu.Lock()
	if ip, ok := n.ips[key]; ok {
		n.mu.Unlock()
		return ip, nil
	}
	needCIDR := !n.podCIDR.IsValid() && time.Since(n.lastPeek) > time.Second
	n.mu.Unlock()
	if needCIDR {
		n.peekPodCIDR(ctx)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if have != "" {
		n.ips[key] = have
		n.used[have] = true
		return have, nil
	}
	prefix := n.podCIDR
	if !prefix.IsValid() {
		// No podCIDR (no IPAM running): a fake /24 per node in
		// 172.16.0.0/12, enough for 4096 nodes.
		prefix = netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16 + byte(n.index>>8&15), byte(n.index), 0}), 24)
	}
	base := prefix.Addr().As4()
	for i := range 253 {
		host := (n.next+i)%253 + 2 // .2 ... .254; .1 is the bridge's
		addr := base
		addr[3] += byte(host)
		ip := netip.AddrFrom4(addr).String()
		if !n.used[ip] {
			n.used[ip] = true
			n.ips[key] = ip
			n.next = (n.next + i + 1) % 253
			return ip, nil
		}
	}
	return "", fmt.Errorf("%w %s", errNoIP, n.Name)
}

func (n *Node) peekPodCIDR(ctx context.Context) {
	node, err := n.fleet.client.Nodes().Get(ctx, "", n.Name)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lastPeek = time.Now()
	if err != nil {
		return
	}
	if p, err := netip.ParsePrefix(node.GetSpec().GetPodCidr()); err == nil && p.Addr().Is4() && p.Bits() <= 24 {
		n.podCIDR = p.Masked()
	}
}

func (n *Node) releaseIP(key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ip, ok := n.ips[key]; ok {
		delete(n.used, ip)
		delete(n.ips, key)
	}
}
