// Package nodestatus registers the kubelet's Node, keeps its status
// (capacity, addresses, Ready condition, node info, images) fresh, and
// renews the node's heartbeat Lease in skiff-system.
//
// It must never touch the Node's spec except to create it: the
// controller-manager owns spec.podCIDR and the user owns unschedulable and
// taints.
package nodestatus

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	goruntime "runtime"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/proto/api"
)

// LeaseNamespace holds node heartbeat leases.
const LeaseNamespace = "skiff-system"

// Config describes the node.
type Config struct {
	NodeName string
	NodeIP   string
	Hostname string
	// CPU is the node's cpu capacity; 0 uses runtime.NumCPU.
	CPU int
	// MemoryBytes is the memory capacity; 0 reads /proc/meminfo.
	MemoryBytes int64
	MaxPods     int
	// KubeletPort serves exec and logs.
	KubeletPort int32
	// Labels are extra node labels.
	Labels         map[string]string
	KubeletVersion string
	// RuntimeVersion and Images read containerd; either may be nil.
	RuntimeVersion func(context.Context) (string, error)
	Images         func(context.Context) ([]*api.ContainerImage, error)
	// Ready reports the node's readiness (nil when ready) for the Ready
	// condition's message.
	Ready func() error
	// LeaseDuration is the lease's duration; renewed every LeaseDuration/4.
	LeaseDuration time.Duration
	// StatusPeriod is how often the status is written.
	StatusPeriod time.Duration
	Logger       *slog.Logger
}

// Registrar keeps the Node and its Lease.
type Registrar struct {
	cfg    Config
	nodes  *client.ResourceClient[*api.Node]
	leases *client.ResourceClient[*api.Lease]
	log    *slog.Logger
}

// New makes a registrar.
func New(cfg Config, c *client.Client) *Registrar {
	if cfg.MaxPods == 0 {
		cfg.MaxPods = 110
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = 40 * time.Second
	}
	if cfg.StatusPeriod == 0 {
		cfg.StatusPeriod = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Registrar{cfg: cfg, nodes: c.Nodes(), leases: c.Leases(), log: cfg.Logger}
}

// Register creates the Node, or updates the labels of an existing one, and
// writes its status. It returns the Node as stored.
func (r *Registrar) Register(ctx context.Context) (*api.Node, error) {
	node, err := r.nodes.Get(ctx, "", r.cfg.NodeName)
	switch {
	case client.IsNotFound(err):
		node, err = r.nodes.Create(ctx, &api.Node{
			Metadata: &api.ObjectMeta{Name: r.cfg.NodeName, Labels: r.labels(nil)},
			Spec:     &api.NodeSpec{},
		})
		if err != nil && !client.IsAlreadyExists(err) {
			return nil, fmt.Errorf("register node %s: %w", r.cfg.NodeName, err)
		}
		if err == nil {
			r.log.Info("registered node", "node", r.cfg.NodeName)
		} else if node, err = r.nodes.Get(ctx, "", r.cfg.NodeName); err != nil {
			return nil, fmt.Errorf("register node %s: %w", r.cfg.NodeName, err)
		}
	case err != nil:
		return nil, fmt.Errorf("register node %s: %w", r.cfg.NodeName, err)
	default:
		want := r.labels(node.GetMetadata().GetLabels())
		if !equalMaps(want, node.GetMetadata().GetLabels()) {
			n := proto.Clone(node).(*api.Node)
			n.Metadata.Labels = want
			if node, err = r.nodes.Update(ctx, n); err != nil {
				return nil, fmt.Errorf("update node %s labels: %w", r.cfg.NodeName, err)
			}
		}
	}
	return r.updateStatus(ctx, node)
}

func (r *Registrar) labels(existing map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range existing {
		out[k] = v
	}
	for k, v := range r.cfg.Labels {
		out[k] = v
	}
	out["kubernetes.io/hostname"] = r.cfg.NodeName
	out["kubernetes.io/os"] = goruntime.GOOS
	out["kubernetes.io/arch"] = goruntime.GOARCH
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// Status is the node status the kubelet reports now.
func (r *Registrar) Status(ctx context.Context, old *api.NodeStatus) *api.NodeStatus {
	cpu := r.cfg.CPU
	if cpu == 0 {
		cpu = goruntime.NumCPU()
	}
	mem := r.cfg.MemoryBytes
	if mem == 0 {
		mem, _ = MemTotal()
	}
	capacity := map[string]string{
		"cpu":    fmt.Sprint(cpu),
		"memory": fmt.Sprintf("%dKi", mem/1024),
		"pods":   fmt.Sprint(r.cfg.MaxPods),
	}
	st := &api.NodeStatus{
		Capacity: capacity, Allocatable: capacity,
		DaemonEndpoints: &api.NodeDaemonEndpoints{KubeletPort: r.cfg.KubeletPort},
		NodeInfo: &api.NodeSystemInfo{
			MachineId: readTrim("/etc/machine-id"), KernelVersion: kernelVersion(), OsImage: osImage(),
			KubeletVersion: r.cfg.KubeletVersion, OperatingSystem: goruntime.GOOS, Architecture: goruntime.GOARCH,
		},
	}
	if r.cfg.NodeIP != "" {
		st.Addresses = append(st.Addresses, &api.NodeAddress{Type: "InternalIP", Address: r.cfg.NodeIP})
	}
	hostname := r.cfg.Hostname
	if hostname == "" {
		hostname = r.cfg.NodeName
	}
	st.Addresses = append(st.Addresses, &api.NodeAddress{Type: "Hostname", Address: hostname})
	if r.cfg.RuntimeVersion != nil {
		if v, err := r.cfg.RuntimeVersion(ctx); err == nil {
			st.NodeInfo.ContainerRuntimeVersion = v
		}
	}
	if r.cfg.Images != nil {
		if imgs, err := r.cfg.Images(ctx); err == nil {
			st.Images = imgs
		}
	}
	now := timestamppb.Now()
	ready := &api.Condition{Type: "Ready", Status: "True", Reason: "KubeletReady", Message: "kubelet is posting ready status",
		LastHeartbeatTime: now, LastTransitionTime: now}
	if r.cfg.Ready != nil {
		if err := r.cfg.Ready(); err != nil {
			ready.Status, ready.Reason, ready.Message = "False", "KubeletNotReady", err.Error()
		}
	}
	for _, c := range old.GetConditions() {
		if c.GetType() == "Ready" && c.GetStatus() == ready.Status && c.GetLastTransitionTime() != nil {
			ready.LastTransitionTime = c.GetLastTransitionTime()
		}
	}
	st.Conditions = []*api.Condition{ready}
	return st
}

func (r *Registrar) updateStatus(ctx context.Context, node *api.Node) (*api.Node, error) {
	for attempt := 0; ; attempt++ {
		n := proto.Clone(node).(*api.Node)
		n.Status = r.Status(ctx, node.GetStatus())
		out, err := r.nodes.UpdateStatus(ctx, n)
		if err == nil {
			return out, nil
		}
		if !client.IsConflict(err) || attempt >= 3 {
			return nil, fmt.Errorf("update node %s status: %w", r.cfg.NodeName, err)
		}
		if node, err = r.nodes.Get(ctx, "", r.cfg.NodeName); err != nil {
			return nil, fmt.Errorf("update node %s status: %w", r.cfg.NodeName, err)
		}
	}
}

// Run writes the status at once and then every StatusPeriod, and renews
// the lease every LeaseDuration/4, until ctx ends. A deleted Node is
// registered again.
func (r *Registrar) Run(ctx context.Context) {
	leaseT := time.NewTicker(r.cfg.LeaseDuration / 4)
	defer leaseT.Stop()
	statusT := time.NewTicker(r.cfg.StatusPeriod)
	defer statusT.Stop()
	r.renewLease(ctx)
	if _, err := r.Register(ctx); err != nil && ctx.Err() == nil {
		r.log.Warn("node status", "err", err)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-leaseT.C:
			r.renewLease(ctx)
		case <-statusT.C:
			if _, err := r.Register(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("node status", "err", err)
			}
		}
	}
}

func (r *Registrar) renewLease(ctx context.Context) {
	if err := r.RenewLease(ctx); err != nil && ctx.Err() == nil {
		r.log.Warn("renew node lease", "err", err)
	}
}

// RenewLease creates or renews the node's Lease.
func (r *Registrar) RenewLease(ctx context.Context) error {
	secs := int32(r.cfg.LeaseDuration / time.Second)
	now := timestamppb.Now()
	lease, err := r.leases.Get(ctx, LeaseNamespace, r.cfg.NodeName)
	if client.IsNotFound(err) {
		_, err = r.leases.Create(ctx, &api.Lease{
			Metadata: &api.ObjectMeta{Name: r.cfg.NodeName, Namespace: LeaseNamespace},
			Spec:     &api.LeaseSpec{HolderIdentity: r.cfg.NodeName, LeaseDurationSeconds: &secs, AcquireTime: now, RenewTime: now},
		})
		return err
	}
	if err != nil {
		return err
	}
	l := proto.Clone(lease).(*api.Lease)
	if l.Spec == nil {
		l.Spec = &api.LeaseSpec{}
	}
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = r.cfg.NodeName, &secs, now
	_, err = r.leases.Update(ctx, l)
	return err
}

// WaitForPodCIDR waits until the controller-manager gave the node a pod
// CIDR and returns it.
func (r *Registrar) WaitForPodCIDR(ctx context.Context) (string, error) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		node, err := r.nodes.Get(ctx, "", r.cfg.NodeName)
		if err == nil && node.GetSpec().GetPodCidr() != "" {
			return node.GetSpec().GetPodCidr(), nil
		}
		if err != nil {
			r.log.Warn("waiting for pod CIDR", "err", err)
		} else {
			r.log.Info("waiting for the controller-manager to assign a pod CIDR", "node", r.cfg.NodeName)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-t.C:
		}
	}
}

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

func kernelVersion() string { return readTrim("/proc/sys/kernel/osrelease") }

func osImage() string {
	b, _ := os.ReadFile("/etc/os-release")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return goruntime.GOOS
}
