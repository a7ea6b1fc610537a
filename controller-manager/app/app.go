// Package app assembles the controller-manager: one shared informer per
// kind, the controllers on top of them, and leader election so that of
// several controller-managers only one runs controllers at a time. Tests
// start it in-process exactly as the binary does.
//
// It must never hold state across leadership terms: every term starts
// from fresh informers, as a restarted process would.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiff-dev/skiff/controller-manager/controllerutil"
	"github.com/skiff-dev/skiff/controller-manager/deployment"
	"github.com/skiff-dev/skiff/controller-manager/endpoints"
	"github.com/skiff-dev/skiff/controller-manager/garbagecollector"
	"github.com/skiff-dev/skiff/controller-manager/namespace"
	"github.com/skiff-dev/skiff/controller-manager/nodeipam"
	"github.com/skiff-dev/skiff/controller-manager/nodelifecycle"
	"github.com/skiff-dev/skiff/controller-manager/replicaset"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/events"
	"github.com/skiff-dev/skiff/internal/informer"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/internal/leaderelection"
	"github.com/skiff-dev/skiff/proto/api"
)

// Config is the controller-manager's configuration; Defaults gives the
// values the flags start from.
type Config struct {
	ClusterCIDR      string
	NodeCIDRMaskSize int

	NodeMonitorPeriod      time.Duration
	NodeMonitorGracePeriod time.Duration
	PodEvictionTimeout     time.Duration

	ConcurrentDeploymentSyncs int
	ConcurrentReplicaSetSyncs int
	ConcurrentGCSyncs         int
	ConcurrentEndpointSyncs   int
	ConcurrentNamespaceSyncs  int

	// ExpectationsTimeout bounds how long the ReplicaSet controller waits
	// to see its own writes through the watch.
	ExpectationsTimeout time.Duration
	// ResyncPeriod replays every cached object to the controllers.
	ResyncPeriod time.Duration

	LeaderElect bool
	// Identity names this candidate in the Lease (default hostname_pid).
	Identity      string
	LeaseName     string
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
}

// SystemNamespace holds the leader and node heartbeat Leases.
const SystemNamespace = "skiff-system"

// Defaults are Kubernetes' defaults.
func Defaults() Config {
	return Config{
		ClusterCIDR: "10.244.0.0/16", NodeCIDRMaskSize: 24,
		NodeMonitorPeriod: 5 * time.Second, NodeMonitorGracePeriod: 40 * time.Second, PodEvictionTimeout: 5 * time.Minute,
		ConcurrentDeploymentSyncs: 5, ConcurrentReplicaSetSyncs: 5, ConcurrentGCSyncs: 20,
		ConcurrentEndpointSyncs: 5, ConcurrentNamespaceSyncs: 10,
		ExpectationsTimeout: controllerutil.DefaultExpectationsTimeout,
		ResyncPeriod:        10 * time.Minute,
		LeaderElect:         true, LeaseName: "controller-manager",
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
	}
}

// Manager runs the controllers.
type Manager struct {
	cfg      Config
	client   *client.Client
	recorder events.EventRecorder
	logger   *slog.Logger
	metrics  *controllerutil.Metrics

	leading atomic.Bool
	synced  atomic.Bool
}

// New makes a Manager; reg gets the queue and sync metrics (nil: none).
func New(cfg Config, c *client.Client, rec events.EventRecorder, reg prometheus.Registerer, logger *slog.Logger) (*Manager, error) {
	if cfg.LeaderElect && cfg.Identity == "" {
		return nil, errors.New("leader election needs an identity")
	}
	if _, err := nodeipam.NewAllocator(cfg.ClusterCIDR, cfg.NodeCIDRMaskSize); err != nil {
		return nil, fmt.Errorf("--cluster-cidr/--node-cidr-mask-size: %w", err)
	}
	m := &Manager{cfg: cfg, client: c, recorder: rec, logger: logger}
	if reg != nil {
		m.metrics = controllerutil.NewMetrics(reg)
	}
	return m, nil
}

// Leading reports whether this Manager runs the controllers now.
func (m *Manager) Leading() bool { return m.leading.Load() }

// Ready is the readiness check: a standby is ready; a leader once its
// caches are synced.
func (m *Manager) Ready() error {
	if m.leading.Load() && !m.synced.Load() {
		return errors.New("informer caches not synced")
	}
	return nil
}

// Run runs the controllers until ctx ends, behind leader election when
// configured. When leadership is lost (an apiserver outage longer than the
// renew deadline), the term's controllers stop and it campaigns again, so
// a controller-manager with no supervisor never stays idle.
func (m *Manager) Run(ctx context.Context) error {
	if !m.cfg.LeaderElect {
		m.lead(ctx)
		return nil
	}
	for {
		err := leaderelection.Run(ctx, leaderelection.Config{
			Client: m.client, Namespace: SystemNamespace, Name: m.cfg.LeaseName, Identity: m.cfg.Identity,
			LeaseDuration: m.cfg.LeaseDuration, RenewDeadline: m.cfg.RenewDeadline, RetryPeriod: m.cfg.RetryPeriod,
			OnStartedLeading: m.lead,
			OnStoppedLeading: func() { m.logger.Warn("stopped leading", "identity", m.cfg.Identity) },
			OnNewLeader:      func(id string) { m.logger.Info("leader is", "identity", id) },
			Logger:           m.logger,
		})
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, leaderelection.ErrLeaderLost) {
			return err
		}
		m.logger.Warn("leadership lost: campaigning again", "identity", m.cfg.Identity)
	}
}

// lead runs one leadership term: fresh informers and controllers until
// ctx ends.
func (m *Manager) lead(ctx context.Context) {
	m.logger.Info("starting controllers", "identity", m.cfg.Identity)
	m.leading.Store(true)
	defer m.leading.Store(false)
	defer m.synced.Store(false)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()

	s := newInformers(m.client, m.cfg.ResyncPeriod, m.logger)
	ctrls, err := m.build(s)
	if err != nil {
		// Config was checked in New; this is a programming error.
		m.logger.Error("building controllers", "err", err)
		return
	}
	for _, run := range s.runs {
		wg.Go(func() { run(ctx) })
	}
	for _, wait := range s.waits {
		if !wait(ctx) {
			return
		}
	}
	m.synced.Store(true)
	m.logger.Info("caches synced, controllers running")
	for _, c := range ctrls {
		wg.Go(func() { c(ctx) })
	}
	<-ctx.Done()
}

// informers is the one informer per kind a term shares among controllers.
type informers struct {
	pods        *informer.Informer[*api.Pod]
	replicasets *informer.Informer[*api.ReplicaSet]
	deployments *informer.Informer[*api.Deployment]
	nodes       *informer.Informer[*api.Node]
	leases      *informer.Informer[*api.Lease]
	services    *informer.Informer[*api.Service]
	endpoints   *informer.Informer[*api.Endpoints]
	namespaces  *informer.Informer[*api.Namespace]
	configmaps  *informer.Informer[*api.ConfigMap]
	secrets     *informer.Informer[*api.Secret]

	runs  []func(context.Context)
	waits []func(context.Context) bool
	gc    []garbagecollector.Source
}

func add[T kinds.Object](s *informers, c *client.Client, opts informer.Options) *informer.Informer[T] {
	inf := informer.New(client.For[T](c), opts)
	s.runs = append(s.runs, inf.Run)
	s.waits = append(s.waits, inf.WaitForSync)
	s.gc = append(s.gc, garbagecollector.Watch(inf, client.For[T](c).Info()))
	return inf
}

func newInformers(c *client.Client, resync time.Duration, logger *slog.Logger) *informers {
	opts := informer.Options{ResyncPeriod: resync, Logger: logger}
	s := &informers{}
	s.pods = add[*api.Pod](s, c, opts)
	s.replicasets = add[*api.ReplicaSet](s, c, opts)
	s.deployments = add[*api.Deployment](s, c, opts)
	s.nodes = add[*api.Node](s, c, opts)
	leaseOpts := opts
	leaseOpts.Namespace = SystemNamespace
	leaseOpts.ResyncPeriod = 0
	s.leases = add[*api.Lease](s, c, leaseOpts)
	s.services = add[*api.Service](s, c, opts)
	s.endpoints = add[*api.Endpoints](s, c, opts)
	s.namespaces = add[*api.Namespace](s, c, opts)
	s.configmaps = add[*api.ConfigMap](s, c, opts)
	s.secrets = add[*api.Secret](s, c, opts)
	return s
}

// build makes every controller on the shared informers and returns their
// Run functions.
func (m *Manager) build(s *informers) ([]func(context.Context), error) {
	cfg, c, rec, log, met := m.cfg, m.client, m.recorder, m.logger, m.metrics
	rs := replicaset.New(c, s.replicasets, s.pods, rec, log, met,
		replicaset.Config{Workers: cfg.ConcurrentReplicaSetSyncs, ExpectationsTimeout: cfg.ExpectationsTimeout})
	dc := deployment.New(c, s.deployments, s.replicasets, s.pods, rec, log, met,
		deployment.Config{Workers: cfg.ConcurrentDeploymentSyncs})
	gc := garbagecollector.New(c, log, met, garbagecollector.Config{Workers: cfg.ConcurrentGCSyncs}, s.gc...)
	nl := nodelifecycle.New(c, s.nodes, s.leases, s.pods, rec, log, met, nodelifecycle.Config{
		LeaseNamespace: SystemNamespace, MonitorPeriod: cfg.NodeMonitorPeriod,
		GracePeriod: cfg.NodeMonitorGracePeriod, PodEvictionTimeout: cfg.PodEvictionTimeout,
	})
	ipam, err := nodeipam.New(c, s.nodes, rec, log, met, nodeipam.Config{ClusterCIDR: cfg.ClusterCIDR, NodeMaskSize: cfg.NodeCIDRMaskSize})
	if err != nil {
		return nil, err
	}
	ep := endpoints.New(c, s.services, s.pods, s.endpoints, log, met, endpoints.Config{Workers: cfg.ConcurrentEndpointSyncs})
	ns := namespace.New(c, s.namespaces, log, met, namespace.Config{Workers: cfg.ConcurrentNamespaceSyncs})
	return []func(context.Context){rs.Run, dc.Run, gc.Run, nl.Run, ipam.Run, ep.Run, ns.Run}, nil
}
