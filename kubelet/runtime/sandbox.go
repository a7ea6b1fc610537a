package runtime

import (
	"context"
	"fmt"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Sandbox is a pod's shared environment: its network namespace and IP. It
// is recorded in containerd as a container without a task, so the kubelet
// finds it again after a restart and can tear it down even when the pod is
// gone from the API.
type Sandbox struct {
	Pod       PodRef
	NetNSPath string
	IP        string
	CreatedAt time.Time
}

// SandboxID is the containerd id of a pod's sandbox record.
func SandboxID(podUID string) string { return "sandbox-" + podUID }

// CreateSandbox records a sandbox (before its network is set up, so a crash
// in between still leaves a record to clean up from).
func (r *Runtime) CreateSandbox(ctx context.Context, sb Sandbox) error {
	labels := sb.Pod.labels(KindSandbox)
	labels[LabelNetNS] = sb.NetNSPath
	labels[LabelCreatedAt] = sb.CreatedAt.UTC().Format(time.RFC3339Nano)
	_, err := r.client.NewContainer(ctx, SandboxID(sb.Pod.UID),
		containerd.WithContainerLabels(labels),
		containerd.WithSpec(&oci.Spec{Version: specs.Version}),
	)
	if err != nil {
		return fmt.Errorf("record sandbox of pod %s/%s: %w", sb.Pod.Namespace, sb.Pod.Name, err)
	}
	return nil
}

// SetSandboxIP records the IP the network gave the pod.
func (r *Runtime) SetSandboxIP(ctx context.Context, podUID, ip string) error {
	ctr, err := r.client.LoadContainer(ctx, SandboxID(podUID))
	if err != nil {
		return fmt.Errorf("sandbox of pod %s: %w", podUID, err)
	}
	if _, err := ctr.SetLabels(ctx, map[string]string{LabelPodIP: ip}); err != nil {
		return fmt.Errorf("sandbox of pod %s: %w", podUID, err)
	}
	return nil
}

// PodSandbox returns a pod's sandbox record, nil when it has none.
func (r *Runtime) PodSandbox(ctx context.Context, podUID string) (*Sandbox, error) {
	ctr, err := r.client.LoadContainer(ctx, SandboxID(podUID))
	if errdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sandbox of pod %s: %w", podUID, err)
	}
	sb, err := sandboxOf(ctx, ctr)
	if errdefs.IsNotFound(err) {
		return nil, nil
	}
	return sb, err
}

func sandboxOf(ctx context.Context, ctr containerd.Container) (*Sandbox, error) {
	l, err := ctr.Labels(ctx)
	if err != nil {
		return nil, err
	}
	sb := &Sandbox{
		Pod:       PodRef{UID: l[LabelPodUID], Namespace: l[LabelPodNamespace], Name: l[LabelPodName]},
		NetNSPath: l[LabelNetNS], IP: l[LabelPodIP],
	}
	sb.CreatedAt, _ = time.Parse(time.RFC3339Nano, l[LabelCreatedAt])
	return sb, nil
}

// ClearSandboxNetNS records that the pod's network namespace is gone (a
// finished pod gives its IP back but keeps its record until deleted).
func (r *Runtime) ClearSandboxNetNS(ctx context.Context, podUID string) error {
	ctr, err := r.client.LoadContainer(ctx, SandboxID(podUID))
	if err != nil {
		return fmt.Errorf("sandbox of pod %s: %w", podUID, err)
	}
	if _, err := ctr.SetLabels(ctx, map[string]string{LabelNetNS: ""}); err != nil {
		return fmt.Errorf("sandbox of pod %s: %w", podUID, err)
	}
	return nil
}

// Sandboxes lists every recorded sandbox.
func (r *Runtime) Sandboxes(ctx context.Context) ([]*Sandbox, error) {
	ctrs, err := r.client.Containers(ctx, fmt.Sprintf("labels.%q==%s", LabelKind, KindSandbox))
	if err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", err)
	}
	out := make([]*Sandbox, 0, len(ctrs))
	for _, ctr := range ctrs {
		sb, err := sandboxOf(ctx, ctr)
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sandbox %s: %w", ctr.ID(), err)
		}
		out = append(out, sb)
	}
	return out, nil
}

// RemoveSandbox deletes the record, last, once the network is torn down.
func (r *Runtime) RemoveSandbox(ctx context.Context, podUID string) error {
	ctr, err := r.client.LoadContainer(ctx, SandboxID(podUID))
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err == nil {
		err = ctr.Delete(ctx)
	}
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove sandbox of pod %s: %w", podUID, err)
	}
	return nil
}
