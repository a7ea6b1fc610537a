// Package cache is the scheduler's picture of the cluster: nodes with the
// pods counted on them, both bound pods (from the informer) and assumed
// pods (placed by the scheduler, Bind in flight). Assuming a pod at once is
// what lets the next cycle run while the binding is still on the wire
// without double-booking a node. An assumed pod is confirmed when the
// informer shows it bound, forgotten when its binding fails, and expires if
// the binding finished but the informer never showed it.
//
// Scheduling cycles read a Snapshot, which UpdateSnapshot refreshes by
// copying only the nodes that changed since the last cycle.
//
// It must never call the apiserver: informer handlers and the scheduler
// feed it.
package cache

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/skiff-dev/skiff/proto/api"
	"github.com/skiff-dev/skiff/scheduler/framework"
)

// cleanupInterval is how often expired assumed pods are looked for.
const cleanupInterval = time.Second

type podState struct {
	pod      *framework.PodInfo
	nodeName string
	assumed  bool
	// deadline is set once the binding finished: an assumed pod still not
	// confirmed then expires.
	deadline *time.Time
}

// Cache is safe for concurrent use.
type Cache struct {
	ttl    time.Duration
	clock  clock.PassiveClock
	logger *slog.Logger

	mu    sync.Mutex
	nodes map[string]*framework.NodeInfo
	pods  map[string]*podState
	// generation increases on every change to any NodeInfo; nodeSetGen
	// records the last time a node was added or removed.
	generation int64
	nodeSetGen int64
}

// New makes a cache whose assumed pods expire ttl after their binding
// finished without confirmation.
func New(ttl time.Duration, clk clock.PassiveClock, logger *slog.Logger) *Cache {
	if clk == nil {
		clk = clock.RealClock{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Cache{ttl: ttl, clock: clk, logger: logger, nodes: map[string]*framework.NodeInfo{}, pods: map[string]*podState{}}
}

// Run expires assumed pods until ctx ends.
func (c *Cache) Run(ctx context.Context) {
	t := time.NewTicker(cleanupInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.CleanupExpiredAssumedPods()
		}
	}
}

// nodeLocked returns the NodeInfo for name, creating a node-less one for
// pods that arrive before their Node.
func (c *Cache) nodeLocked(name string) *framework.NodeInfo {
	n, ok := c.nodes[name]
	if !ok {
		n = &framework.NodeInfo{}
		c.nodes[name] = n
	}
	return n
}

func (c *Cache) touch(n *framework.NodeInfo) {
	c.generation++
	n.Generation = c.generation
}

func (c *Cache) addPodLocked(p *framework.PodInfo, nodeName string) {
	n := c.nodeLocked(nodeName)
	n.AddPod(p)
	c.touch(n)
}

func (c *Cache) removePodLocked(p *framework.PodInfo, nodeName string) {
	n, ok := c.nodes[nodeName]
	if !ok {
		return
	}
	n.RemovePod(p)
	c.touch(n)
	if n.Node == nil && n.PodCount <= 0 {
		delete(c.nodes, nodeName)
	}
}

// AssumePod counts the pod on nodeName before the binding is confirmed.
func (c *Cache) AssumePod(p *framework.PodInfo, nodeName string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pods[p.Key]; ok {
		return fmt.Errorf("assume pod %s: already in the cache", p.Key)
	}
	c.addPodLocked(p, nodeName)
	c.pods[p.Key] = &podState{pod: p, nodeName: nodeName, assumed: true}
	return nil
}

// FinishBinding starts the expiry of an assumed pod whose Bind returned.
func (c *Cache) FinishBinding(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ps, ok := c.pods[key]; ok && ps.assumed {
		dl := c.clock.Now().Add(c.ttl)
		ps.deadline = &dl
	}
}

// ForgetPod drops an assumed pod whose binding failed.
func (c *Cache) ForgetPod(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.pods[key]
	if !ok || !ps.assumed {
		return
	}
	c.removePodLocked(ps.pod, ps.nodeName)
	delete(c.pods, key)
}

// AddPod records a pod the informer shows bound, confirming it if assumed
// (on the node it was really bound to).
func (c *Cache) AddPod(p *framework.PodInfo) {
	nodeName := p.Pod.GetSpec().GetNodeName()
	c.mu.Lock()
	defer c.mu.Unlock()
	if ps, ok := c.pods[p.Key]; ok {
		if ps.assumed && ps.nodeName != nodeName {
			c.logger.Warn("pod bound to another node than assumed", "pod", p.Key, "assumed", ps.nodeName, "node", nodeName)
		}
		c.removePodLocked(ps.pod, ps.nodeName)
	}
	c.addPodLocked(p, nodeName)
	c.pods[p.Key] = &podState{pod: p, nodeName: nodeName}
}

// UpdatePod replaces a bound pod's accounting with its new version.
func (c *Cache) UpdatePod(p *framework.PodInfo) { c.AddPod(p) }

// RemovePod drops a pod that was deleted or finished.
func (c *Cache) RemovePod(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.pods[key]
	if !ok {
		return
	}
	c.removePodLocked(ps.pod, ps.nodeName)
	delete(c.pods, key)
}

// IsAssumed reports whether the pod is assumed and not yet confirmed.
func (c *Cache) IsAssumed(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.pods[key]
	return ok && ps.assumed
}

// PodNode returns the node the cache counts the pod on.
func (c *Cache) PodNode(key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.pods[key]
	if !ok {
		return "", false
	}
	return ps.nodeName, true
}

// CleanupExpiredAssumedPods forgets assumed pods past their deadline.
func (c *Cache) CleanupExpiredAssumedPods() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	for key, ps := range c.pods {
		if ps.assumed && ps.deadline != nil && now.After(*ps.deadline) {
			c.logger.Warn("assumed pod expired: binding never confirmed", "pod", key, "node", ps.nodeName)
			c.removePodLocked(ps.pod, ps.nodeName)
			delete(c.pods, key)
		}
	}
}

// AddNode records a node, or updates it.
func (c *Cache) AddNode(node *api.Node) error {
	name := node.GetMetadata().GetName()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodeLocked(name)
	if n.Node == nil {
		c.nodeSetGen = c.generation + 1
	}
	err := n.SetNode(node)
	c.touch(n)
	return err
}

// UpdateNode records a node's new version.
func (c *Cache) UpdateNode(node *api.Node) error { return c.AddNode(node) }

// RemoveNode forgets a node; its pods stay counted under a node-less entry
// until they are removed too.
func (c *Cache) RemoveNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	if !ok {
		return
	}
	n.Node = nil
	n.Allocatable = framework.Resource{}
	c.touch(n)
	c.nodeSetGen = c.generation
	if n.PodCount <= 0 {
		delete(c.nodes, name)
	}
}

// NodeCount is the number of nodes with a Node object.
func (c *Cache) NodeCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, ni := range c.nodes {
		if ni.Node != nil {
			n++
		}
	}
	return n
}

// Snapshot is the cache's state at the start of a scheduling cycle: the
// nodes with a Node object, sorted by name. It belongs to one goroutine.
type Snapshot struct {
	byName     map[string]*framework.NodeInfo
	list       []*framework.NodeInfo
	generation int64
	nodeSetGen int64
}

// NewSnapshot makes an empty snapshot.
func NewSnapshot() *Snapshot {
	return &Snapshot{byName: map[string]*framework.NodeInfo{}, nodeSetGen: -1}
}

// Nodes lists the snapshot's nodes; do not modify them.
func (s *Snapshot) Nodes() []*framework.NodeInfo { return s.list }

// Get returns one node of the snapshot.
func (s *Snapshot) Get(name string) (*framework.NodeInfo, bool) {
	n, ok := s.byName[name]
	return n, ok
}

// UpdateSnapshot brings s up to date, cloning only the nodes changed since
// s was last updated.
func (c *Cache) UpdateSnapshot(s *Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.generation == c.generation {
		return
	}
	rebuild := s.nodeSetGen != c.nodeSetGen
	for name, n := range c.nodes {
		if n.Node == nil {
			continue
		}
		if n.Generation <= s.generation {
			continue
		}
		clone := n.Clone()
		if old, ok := s.byName[name]; ok && !rebuild {
			// Replace in the list too, keeping its order.
			*old = *clone
			continue
		}
		s.byName[name] = clone
		rebuild = true
	}
	if rebuild {
		for name := range s.byName {
			if n, ok := c.nodes[name]; !ok || n.Node == nil {
				delete(s.byName, name)
			}
		}
		s.list = s.list[:0]
		for _, n := range s.byName {
			s.list = append(s.list, n)
		}
		sort.Slice(s.list, func(i, j int) bool { return s.list[i].Name() < s.list[j].Name() })
		s.nodeSetGen = c.nodeSetGen
	}
	s.generation = c.generation
}
