// Package runtime runs a node's pods on containerd through its Go client, in
// a containerd namespace of the kubelet's own. Every fact the kubelet needs
// about what runs — which pod a container belongs to, its restart count, the
// pod's network namespace and IP — is stored as labels on containerd
// objects, so a restarted kubelet rebuilds its whole view from containerd
// and adopts running pods instead of killing them.
//
// It must never talk to the apiserver or decide policy (restarts,
// back-off): the pod workers do that.
package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
)

// DefaultNamespace is the containerd namespace the kubelet works in.
const DefaultNamespace = "skiff"

// Labels written on containerd containers.
const (
	LabelKind          = "io.skiff.kind" // KindSandbox or KindContainer
	LabelPodUID        = "io.skiff.pod.uid"
	LabelPodNamespace  = "io.skiff.pod.namespace"
	LabelPodName       = "io.skiff.pod.name"
	LabelContainerName = "io.skiff.container.name"
	LabelRestartCount  = "io.skiff.container.restart-count"
	LabelImage         = "io.skiff.container.image" // the image as the pod spec names it
	LabelStartedAt     = "io.skiff.container.started-at"
	LabelLogPath       = "io.skiff.container.log-path"
	LabelNetNS         = "io.skiff.sandbox.netns"
	LabelPodIP         = "io.skiff.sandbox.ip"
	LabelCreatedAt     = "io.skiff.sandbox.created-at"

	KindSandbox   = "sandbox"
	KindContainer = "container"
)

// CleanupTimeout bounds a clean-up that runs on CleanupContext.
const CleanupTimeout = 30 * time.Second

// CleanupContext is the context a clean-up after a failure or a
// cancellation runs on: it keeps ctx's values but not its cancellation,
// and has a deadline of its own. A clean-up on the context that was just
// cancelled (a pod deleted while its container was being created) fails
// at once and leaves the half-made container, its cgroup or its network
// namespace behind.
func CleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), CleanupTimeout)
}

// Config configures the runtime.
type Config struct {
	// Address is containerd's socket.
	Address string
	// Namespace is the containerd namespace; DefaultNamespace when empty.
	Namespace string
	// InsecureRegistries are "host:port" registries pulled from over plain
	// HTTP.
	InsecureRegistries []string
	// StateDir holds exec FIFOs.
	StateDir string
	// CgroupRoot is where the cgroup filesystems are mounted;
	// DefaultCgroupRoot when empty.
	CgroupRoot string
	Logger     *slog.Logger
}

// Runtime is the kubelet's handle on containerd.
type Runtime struct {
	client    *containerd.Client
	namespace string
	insecure  map[string]bool
	stateDir  string
	// cgroupRoot is where the cgroup filesystems are mounted.
	cgroupRoot string
	log        *slog.Logger
}

// New connects to containerd.
func New(cfg Config) (*Runtime, error) {
	ns := cfg.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	c, err := containerd.New(cfg.Address, containerd.WithDefaultNamespace(ns))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", cfg.Address, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	root := cfg.CgroupRoot
	if root == "" {
		root = DefaultCgroupRoot
	}
	r := &Runtime{client: c, namespace: ns, insecure: map[string]bool{}, stateDir: cfg.StateDir, cgroupRoot: root, log: log}
	for _, h := range cfg.InsecureRegistries {
		r.insecure[h] = true
	}
	return r, nil
}

// Close closes the connection; containers keep running.
func (r *Runtime) Close() error { return r.client.Close() }

// Client is the containerd client, for callers that need raw access
// (benchmarks, tests).
func (r *Runtime) Client() *containerd.Client { return r.client }

// Version is containerd's version, as the node reports it
// ("containerd://1.6.20").
func (r *Runtime) Version(ctx context.Context) (string, error) {
	v, err := r.client.Version(ctx)
	if err != nil {
		return "", fmt.Errorf("containerd version: %w", err)
	}
	return "containerd://" + v.Version, nil
}
