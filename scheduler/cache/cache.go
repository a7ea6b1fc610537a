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

// nodeItem is a node in the recency list: most recently changed first, so
// a snapshot update visits only the nodes changed since the last one.
type nodeItem struct {
	name       string
	info       *framework.NodeInfo
	prev, next *nodeItem
}

// Cache is safe for concurrent use.
type Cache struct {
	ttl    time.Duration
	clock  clock.PassiveClock
	logger *slog.Logger

	mu    sync.Mutex
	nodes map[string]*nodeItem
	head  *nodeItem
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
	return &Cache{ttl: ttl, clock: clk, logger: logger, nodes: map[string]*nodeItem{}, pods: map[string]*podState{}}
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

// nodeLocked returns the item for name, creating a node-less one for pods
// that arrive before their Node.
func (c *Cache) nodeLocked(name string) *nodeItem {
	it, ok := c.nodes[name]
	if !ok {
		it = &nodeItem{name: name, info: &framework.NodeInfo{}}
		c.nodes[name] = it
	}
	return it
}

// touch records a change to the node: a new generation, and first place in
// the recency list.
func (c *Cache) touch(it *nodeItem) {
	c.generation++
	it.info.Generation = c.generation
	if c.head == it {
		return
	}
	c.unlink(it)
	it.next = c.head
	if c.head != nil {
		c.head.prev = it
	}
	c.head = it
}

func (c *Cache) unlink(it *nodeItem) {
	if it.prev != nil {
		it.prev.next = it.next
	}
	if it.next != nil {
		it.next.prev = it.prev
	}
	if c.head == it {
		c.head = it.next
	}
	it.prev, it.next = nil, nil
}

// dropIfEmptyLocked forgets a node-less entry once no pod is left on it.
func (c *Cache) dropIfEmptyLocked(it *nodeItem) {
	if it.info.Node == nil && it.info.PodCount <= 0 {
		c.unlink(it)
		delete(c.nodes, it.name)
	}
}

func (c *Cache) addPodLocked(p *framework.PodInfo, nodeName string) {
	it := c.nodeLocked(nodeName)
	it.info.AddPod(p)
	c.touch(it)
}

func (c *Cache) removePodLocked(p *framework.PodInfo, nodeName string) {
	it, ok := c.nodes[nodeName]
	if !ok {
		return
	}
	it.info.RemovePod(p)
	c.touch(it)
	c.dropIfEmptyLocked(it)
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
	it := c.nodeLocked(name)
	if it.info.Node == nil {
		c.nodeSetGen = c.generation + 1
	}
	err := it.info.SetNode(node)
	c.touch(it)
	return err
}

// UpdateNode records a node's new version.
func (c *Cache) UpdateNode(node *api.Node) error { return c.AddNode(node) }

// RemoveNode forgets a node; its pods stay counted under a node-less entry
// until they are removed too.
func (c *Cache) RemoveNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.nodes[name]
	if !ok {
		return
	}
	it.info.Node = nil
	it.info.Allocatable = framework.Resource{}
	c.touch(it)
	c.nodeSetGen = c.generation
	c.dropIfEmptyLocked(it)
}

// NodeCount is the number of nodes with a Node object.
func (c *Cache) NodeCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, it := range c.nodes {
		if it.info.Node != nil {
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
// s was last updated: it walks the recency list until the first node the
// snapshot already has in its current version.
func (c *Cache) UpdateSnapshot(s *Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.generation == c.generation {
		return
	}
	rebuild := s.nodeSetGen != c.nodeSetGen
	for it := c.head; it != nil && it.info.Generation > s.generation; it = it.next {
		if it.info.Node == nil {
			continue
		}
		clone := it.info.Clone()
		if old, ok := s.byName[it.name]; ok {
			// Overwrite in place: the list holds the same pointer.
			*old = *clone
			continue
		}
		s.byName[it.name] = clone
		rebuild = true
	}
	if rebuild {
		for name := range s.byName {
			if it, ok := c.nodes[name]; !ok || it.info.Node == nil {
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
