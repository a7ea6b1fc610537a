// Package namespace is the namespace controller: a namespace being deleted
// (deletionTimestamp set, held by the "kubernetes" finalizer) is emptied of
// every namespaced kind, then its finalizer is removed so the apiserver
// deletes it.
//
// It must never delete anything in a namespace that is not being deleted.
package namespace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/controller-manager/controllerutil"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/informer"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// Name is the controller's name in logs, metrics and flags.
const Name = "namespace"

// FinalizerKubernetes holds a namespace until its contents are gone.
const FinalizerKubernetes = "kubernetes"

// PhaseTerminating is the status.phase of a namespace being deleted.
const PhaseTerminating = "Terminating"

// Config tunes the controller.
type Config struct {
	Workers int
	// RecheckPeriod is how often a namespace still holding objects is
	// looked at again (default 2s).
	RecheckPeriod time.Duration
}

// Controller is the namespace controller.
type Controller struct {
	client     *client.Client
	namespaces *informer.Informer[*api.Namespace]
	queue      controllerutil.Queue
	logger     *slog.Logger
	metrics    *controllerutil.Metrics
	cfg        Config
}

// New wires the controller to the shared namespace informer.
func New(c *client.Client, namespaces *informer.Informer[*api.Namespace], logger *slog.Logger, m *controllerutil.Metrics, cfg Config) *Controller {
	if cfg.RecheckPeriod <= 0 {
		cfg.RecheckPeriod = 2 * time.Second
	}
	nc := &Controller{
		client: c, namespaces: namespaces, metrics: m, cfg: cfg,
		logger: logger.With("controller", Name),
		queue:  controllerutil.NewQueue(Name, m),
	}
	enqueue := func(ns *api.Namespace) { nc.queue.Add(ns.GetMetadata().GetName()) }
	namespaces.AddEventHandler(informer.Handler[*api.Namespace]{
		OnAdd: func(ns *api.Namespace) {
			if ns.GetMetadata().GetDeletionTimestamp() != nil {
				enqueue(ns)
			}
		},
		OnUpdate: func(_, ns *api.Namespace) {
			if ns.GetMetadata().GetDeletionTimestamp() != nil {
				enqueue(ns)
			}
		},
		// A namespace deleted without waiting for us (no finalizer) may
		// have left objects behind: clean them up all the same.
		OnDelete: enqueue,
	})
	return nc
}

// Run processes the queue until ctx ends. The informer must be running.
func (nc *Controller) Run(ctx context.Context) {
	w := &controllerutil.Worker{Name: Name, Queue: nc.queue, Sync: nc.sync, Logger: nc.logger, Metrics: nc.metrics}
	w.Run(ctx, nc.cfg.Workers)
}

func (nc *Controller) sync(ctx context.Context, name string) error {
	ns, ok := nc.namespaces.Lister().Get("", name)
	if ok && ns.GetMetadata().GetDeletionTimestamp() == nil {
		return nil
	}
	if ok {
		if err := nc.markTerminating(ctx, ns); err != nil {
			return err
		}
	}
	remaining, err := nc.deleteContent(ctx, name)
	if err != nil {
		return err
	}
	if remaining > 0 {
		nc.logger.Debug("namespace still has objects", "namespace", name, "remaining", remaining)
		return &controllerutil.RequeueAfter{After: nc.cfg.RecheckPeriod}
	}
	if !ok {
		return nil
	}
	return nc.finalize(ctx, name)
}

func (nc *Controller) markTerminating(ctx context.Context, ns *api.Namespace) error {
	if ns.GetStatus().GetPhase() == PhaseTerminating {
		return nil
	}
	upd := proto.Clone(ns).(*api.Namespace)
	if upd.Status == nil {
		upd.Status = &api.NamespaceStatus{}
	}
	upd.Status.Phase = PhaseTerminating
	_, err := nc.client.Namespaces().UpdateStatus(ctx, upd)
	if err != nil && !client.IsNotFound(err) {
		return fmt.Errorf("mark namespace %s terminating: %w", ns.GetMetadata().GetName(), err)
	}
	return nil
}

// deleteContent deletes every object of every namespaced kind in the
// namespace and returns how many were still there.
func (nc *Controller) deleteContent(ctx context.Context, ns string) (int, error) {
	remaining := 0
	var errs []error
	for _, info := range kinds.All() {
		if !info.Namespaced {
			continue
		}
		rc := client.ForKind(nc.client, info)
		objs, _, err := rc.List(ctx, ns, client.ListOptions{})
		if err != nil {
			if client.IsNotFound(err) {
				continue
			}
			errs = append(errs, fmt.Errorf("list %s in namespace %s: %w", info.Resource, ns, err))
			continue
		}
		remaining += len(objs)
		for _, o := range objs {
			if o.GetMetadata().GetDeletionTimestamp() != nil {
				continue
			}
			_, err := rc.Delete(ctx, ns, o.GetMetadata().GetName(), client.DeleteOptions{
				Preconditions: &api.Preconditions{Uid: o.GetMetadata().GetUid()},
			})
			if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
				errs = append(errs, fmt.Errorf("delete %s %s/%s: %w", info.Resource, ns, o.GetMetadata().GetName(), err))
			}
		}
	}
	return remaining, errors.Join(errs...)
}

// finalize removes the "kubernetes" finalizer (from spec.finalizers, and
// from metadata.finalizers should it be there) so the namespace goes.
func (nc *Controller) finalize(ctx context.Context, name string) error {
	ns, err := nc.client.Namespaces().Get(ctx, "", name)
	if client.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read namespace %s: %w", name, err)
	}
	_, err = controllerutil.Update(ctx, nc.client.Namespaces(), ns, func(ns *api.Namespace) bool {
		changed := controllerutil.RemoveFinalizer(ns.Metadata, FinalizerKubernetes)
		if ns.Spec != nil {
			kept := slices.DeleteFunc(slices.Clone(ns.Spec.Finalizers), func(f string) bool { return f == FinalizerKubernetes })
			if len(kept) != len(ns.Spec.Finalizers) {
				ns.Spec.Finalizers = kept
				changed = true
			}
		}
		return changed
	})
	if err != nil && !client.IsNotFound(err) {
		return fmt.Errorf("finalize namespace %s: %w", name, err)
	}
	nc.logger.Info("namespace emptied and finalized", "namespace", name)
	return nil
}
