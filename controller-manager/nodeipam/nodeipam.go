// Package nodeipam gives every node a pod CIDR: a /24 (by default) of the
// cluster CIDR, written to spec.podCIDR and spec.podCIDRs.
//
// It must never hand one subnet to two nodes: the allocation is rebuilt
// from the nodes' own podCIDRs before the first node is served.
package nodeipam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/skiff-dev/skiff/controller-manager/controllerutil"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/events"
	"github.com/skiff-dev/skiff/internal/informer"
	"github.com/skiff-dev/skiff/proto/api"
)

// Name is the controller's name in logs, metrics and flags.
const Name = "nodeipam"

// Config tunes the controller.
type Config struct {
	ClusterCIDR  string // default 10.244.0.0/16
	NodeMaskSize int    // default 24
}

// Controller is the node IPAM controller.
type Controller struct {
	client   *client.Client
	nodes    *informer.Informer[*api.Node]
	alloc    *Allocator
	queue    controllerutil.Queue
	recorder events.EventRecorder
	logger   *slog.Logger
	metrics  *controllerutil.Metrics

	mu       sync.Mutex
	assigned map[string]string // node name → CIDR this controller knows it holds
}

// New wires the controller to the shared node informer; call before it runs.
func New(c *client.Client, nodes *informer.Informer[*api.Node], rec events.EventRecorder,
	logger *slog.Logger, m *controllerutil.Metrics, cfg Config) (*Controller, error) {
	if cfg.ClusterCIDR == "" {
		cfg.ClusterCIDR = "10.244.0.0/16"
	}
	if cfg.NodeMaskSize == 0 {
		cfg.NodeMaskSize = 24
	}
	alloc, err := NewAllocator(cfg.ClusterCIDR, cfg.NodeMaskSize)
	if err != nil {
		return nil, err
	}
	ic := &Controller{
		client: c, nodes: nodes, alloc: alloc, recorder: rec, metrics: m,
		logger:   logger.With("controller", Name),
		queue:    controllerutil.NewQueue(Name, m),
		assigned: map[string]string{},
	}
	nodes.AddEventHandler(informer.Handler[*api.Node]{
		OnAdd: func(n *api.Node) { ic.queue.Add(n.GetMetadata().GetName()) },
		OnUpdate: func(_, n *api.Node) {
			if n.GetSpec().GetPodCidr() == "" {
				ic.queue.Add(n.GetMetadata().GetName())
			}
		},
		OnDelete: func(n *api.Node) { ic.queue.Add(n.GetMetadata().GetName()) },
	})
	return ic, nil
}

// Run rebuilds the allocation from the cache, then serves nodes until ctx
// ends. Allocation is serial: one worker.
func (ic *Controller) Run(ctx context.Context) {
	if !ic.nodes.WaitForSync(ctx) {
		ic.queue.ShutDown()
		return
	}
	for _, n := range ic.nodes.Lister().List(nil) {
		if cidr := n.GetSpec().GetPodCidr(); cidr != "" {
			ic.alloc.Occupy(cidr)
			ic.assigned[n.GetMetadata().GetName()] = cidr
		}
	}
	w := &controllerutil.Worker{Name: Name, Queue: ic.queue, Sync: ic.sync, Logger: ic.logger, Metrics: ic.metrics}
	w.Run(ctx, 1)
}

func (ic *Controller) sync(ctx context.Context, name string) error {
	node, ok := ic.nodes.Lister().Get("", name)
	ic.mu.Lock()
	held, had := ic.assigned[name]
	ic.mu.Unlock()
	if !ok {
		if had {
			ic.alloc.Release(held)
			ic.forget(name)
		}
		return nil
	}
	if cidr := node.GetSpec().GetPodCidr(); cidr != "" {
		ic.alloc.Occupy(cidr)
		if had && held != cidr {
			ic.alloc.Release(held)
		}
		ic.remember(name, cidr)
		return nil
	}
	if had {
		// Assigned by us, the cache has not shown it yet: write it again
		// rather than burn a second subnet.
		return ic.write(ctx, node, held)
	}
	cidr, err := ic.alloc.Allocate()
	if err != nil {
		ic.recorder.Eventf(node, events.Warning, "CIDRNotAvailable", "Node %s status is now: CIDRNotAvailable", name)
		return fmt.Errorf("allocate pod CIDR for node %s: %w", name, err)
	}
	ic.remember(name, cidr)
	if err := ic.write(ctx, node, cidr); err != nil {
		if errors.Is(err, errNodeGone) {
			ic.alloc.Release(cidr)
			ic.forget(name)
			return nil
		}
		return err
	}
	return nil
}

var errNodeGone = errors.New("node is gone")

func (ic *Controller) write(ctx context.Context, node *api.Node, cidr string) error {
	name := node.GetMetadata().GetName()
	var elsewhere string
	_, err := controllerutil.Update(ctx, ic.client.Nodes(), node, func(n *api.Node) bool {
		if c := n.GetSpec().GetPodCidr(); c != "" {
			elsewhere = c
			return false
		}
		if n.Spec == nil {
			n.Spec = &api.NodeSpec{}
		}
		n.Spec.PodCidr = cidr
		n.Spec.PodCidrs = []string{cidr}
		return true
	})
	if err == nil && elsewhere != "" && elsewhere != cidr {
		err = fmt.Errorf("node %s got pod CIDR %s from elsewhere", name, elsewhere)
	}
	if errors.Is(err, controllerutil.ErrReplaced) {
		return errNodeGone
	}
	if client.IsNotFound(err) {
		return errNodeGone
	}
	if err != nil {
		return fmt.Errorf("set pod CIDR of node %s: %w", name, err)
	}
	ic.logger.Info("assigned pod CIDR", "node", name, "cidr", cidr)
	return nil
}

func (ic *Controller) remember(name, cidr string) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	ic.assigned[name] = cidr
}

func (ic *Controller) forget(name string) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	delete(ic.assigned, name)
}
