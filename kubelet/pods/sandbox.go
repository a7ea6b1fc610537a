package pods

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/kubelet/runtime"
	"github.com/skiff-dev/skiff/proto/api"
)

// sandbox returns the pod's sandbox record, nil when none.
func (w *worker) sandbox(ctx context.Context) (*runtime.Sandbox, error) {
	return w.m.rt.PodSandbox(ctx, w.uid)
}

func podRef(pod *api.Pod) runtime.PodRef {
	m := pod.GetMetadata()
	return runtime.PodRef{UID: m.GetUid(), Namespace: m.GetNamespace(), Name: m.GetName()}
}

func cniLabels(ref runtime.PodRef) map[string]string {
	return map[string]string{"K8S_POD_NAMESPACE": ref.Namespace, "K8S_POD_NAME": ref.Name, "K8S_POD_UID": ref.UID}
}

// createSandbox makes the pod's network namespace and attaches it to the
// pod network. A record left by an attempt that did not finish (old) is
// torn down first. The record names the namespace before the namespace
// exists, so a kubelet stopped at any point leaves nothing it cannot find
// again; a failure (ctx's cancellation included: the pod deleted
// meanwhile) tears down what was made on a context of its own.
func (w *worker) createSandbox(ctx context.Context, pod *api.Pod, old *runtime.Sandbox) (*runtime.Sandbox, error) {
	ref := podRef(pod)
	if old != nil {
		if err := w.teardownSandbox(ctx, pod, old); err != nil {
			return nil, err
		}
	}
	mem, cpu, err := podLimits(pod)
	if err != nil {
		return nil, err
	}
	if err := w.m.rt.EnsurePodCgroup(w.uid, mem, cpu); err != nil {
		return nil, err
	}
	if pod.GetSpec().GetHostNetwork() {
		// The node's network: no namespace, no CNI, the node's IP.
		sb := &runtime.Sandbox{Pod: ref, CreatedAt: time.Now()}
		if err := w.m.rt.CreateSandbox(ctx, *sb); err != nil {
			return nil, err
		}
		sb.IP = w.m.cfg.NodeIP
		if err := w.writePodFiles(pod, sb.IP); err != nil {
			return nil, err
		}
		return sb, w.m.rt.SetSandboxIP(ctx, w.uid, sb.IP)
	}
	nsPath, err := w.m.net.NewNetNSPath()
	if err != nil {
		return nil, err
	}
	sb := &runtime.Sandbox{Pod: ref, NetNSPath: nsPath, CreatedAt: time.Now()}
	if err := w.m.rt.CreateSandbox(ctx, *sb); err != nil {
		// The record may exist although the call failed (cancelled
		// after containerd took it): remove it, there is no namespace yet.
		cctx, cancel := runtime.CleanupContext(ctx)
		defer cancel()
		if cur, rerr := w.m.rt.PodSandbox(cctx, w.uid); rerr == nil && cur != nil && cur.NetNSPath == nsPath {
			if rerr := w.m.rt.RemoveSandbox(cctx, w.uid); rerr != nil {
				w.log.Warn("remove failed sandbox record", "err", rerr)
			}
		}
		return nil, err
	}
	if err := w.setUpSandbox(ctx, pod, sb); err != nil {
		cctx, cancel := runtime.CleanupContext(ctx)
		defer cancel()
		if terr := w.teardownSandbox(cctx, pod, sb); terr != nil {
			w.log.Warn("tear down failed sandbox", "err", terr)
		}
		return nil, err
	}
	w.log.Info("pod sandbox ready", "ip", sb.IP, "netns", nsPath)
	return sb, nil
}

// setUpSandbox makes the recorded sandbox's namespace, attaches it to the
// pod network and records its IP in sb and in the record.
func (w *worker) setUpSandbox(ctx context.Context, pod *api.Pod, sb *runtime.Sandbox) error {
	if err := w.m.net.CreateNetNS(sb.NetNSPath); err != nil {
		return err
	}
	ip, err := w.m.net.SetUp(ctx, w.uid, sb.NetNSPath, w.hostPorts(pod), cniLabels(sb.Pod))
	if err != nil {
		return fmt.Errorf("set up pod network: %w", err)
	}
	sb.IP = ip.String()
	if err := w.writePodFiles(pod, sb.IP); err != nil {
		return err
	}
	return w.m.rt.SetSandboxIP(ctx, w.uid, sb.IP)
}

// teardownSandbox detaches the network (releasing the IP), removes the
// namespace and then the record.
func (w *worker) teardownSandbox(ctx context.Context, pod *api.Pod, sb *runtime.Sandbox) error {
	if sb.NetNSPath != "" {
		if _, err := os.Stat(sb.NetNSPath); err == nil {
			if err := w.m.net.TearDown(ctx, w.uid, sb.NetNSPath, w.hostPorts(pod), cniLabels(sb.Pod)); err != nil {
				return err
			}
		}
		if err := w.m.net.RemoveNetNS(sb.NetNSPath); err != nil {
			return err
		}
	}
	return w.m.rt.RemoveSandbox(ctx, w.uid)
}

// writePodFiles writes the /etc/hosts and /etc/resolv.conf the pod's
// containers get.
func (w *worker) writePodFiles(pod *api.Pod, ip string) error {
	dir := w.m.PodDir(w.uid)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pod dir: %w", err)
	}
	name := pod.GetMetadata().GetName()
	hosts := "# Kubernetes-managed hosts file (skiff).\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		ip + "\t" + name + "\n"
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(hosts), 0o644); err != nil {
		return fmt.Errorf("pod hosts file: %w", err)
	}
	resolv, err := w.resolvConf(pod)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(resolv), 0o644); err != nil {
		return fmt.Errorf("pod resolv.conf: %w", err)
	}
	return nil
}

// resolvConf points ClusterFirst pods at the cluster DNS with the cluster
// domain search path; other pods get the node's resolv.conf.
func (w *worker) resolvConf(pod *api.Pod) (string, error) {
	if w.m.cfg.ClusterDNS == "" || pod.GetSpec().GetDnsPolicy() == "Default" {
		b, err := os.ReadFile("/etc/resolv.conf")
		if err != nil && !os.IsNotExist(err) {
			return "", fmt.Errorf("node resolv.conf: %w", err)
		}
		return string(b), nil
	}
	d := w.m.cfg.ClusterDomain
	ns := pod.GetMetadata().GetNamespace()
	return fmt.Sprintf("nameserver %s\nsearch %s.svc.%s svc.%s %s\noptions ndots:5\n", w.m.cfg.ClusterDNS, ns, d, d, d), nil
}

// containerSpec is how run restart of container c is created.
func (w *worker) containerSpec(pod *api.Pod, sb *runtime.Sandbox, c *api.Container, img containerd.Image, restart int) (runtime.ContainerSpec, error) {
	mem, cpu, err := limits(c)
	if err != nil {
		return runtime.ContainerSpec{}, err
	}
	env := make([]string, 0, len(c.GetEnv()))
	for _, e := range c.GetEnv() {
		env = append(env, e.GetName()+"="+e.GetValue())
	}
	dir := w.m.PodDir(w.uid)
	bind := func(dst, src string) specs.Mount {
		return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "rw"}}
	}
	hostname := pod.GetSpec().GetHostname()
	if hostname == "" {
		hostname = pod.GetMetadata().GetName()
	}
	if pod.GetSpec().GetHostNetwork() {
		if hostname, err = os.Hostname(); err != nil {
			return runtime.ContainerSpec{}, fmt.Errorf("hostNetwork pod: %w", err)
		}
	}
	vols, err := w.m.vols.Mounts(pod, c)
	if err != nil {
		return runtime.ContainerSpec{}, err
	}
	return runtime.ContainerSpec{
		Pod: podRef(pod), Name: c.GetName(), RestartCount: restart,
		Image: c.GetImage(), Img: img,
		Command: c.GetCommand(), Args: c.GetArgs(), Env: env, WorkingDir: c.GetWorkingDir(),
		Hostname: hostname, NetNSPath: sb.NetNSPath, HostNetwork: pod.GetSpec().GetHostNetwork(),
		Mounts: append([]specs.Mount{
			bind("/etc/hosts", filepath.Join(dir, "hosts")),
			bind("/etc/resolv.conf", filepath.Join(dir, "resolv.conf")),
		}, vols...),
		LogPath:     w.m.LogPath(w.uid, c.GetName(), restart),
		MemoryLimit: mem, CPUMilli: cpu,
	}, nil
}

// terminate stops the pod's containers within the grace period, tears the
// sandbox down, removes the containers, their snapshots and the pod's files,
// and finally deletes the pod object (unless the apiserver already has no
// pod: gone).
func (w *worker) terminate(ctx context.Context, pod *api.Pod, gone bool) error {
	grace := gracePeriod(pod)
	if gone && pod.GetMetadata().GetDeletionTimestamp() == nil {
		grace = w.m.cfg.OrphanGracePeriod
	}
	w.stopProbes(nil)
	all, err := w.containers(ctx)
	if err != nil {
		return err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []string
	)
	for _, runs := range all {
		for _, r := range runs {
			if r.Status != runtime.StatusRunning {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.log.Info("stopping container", "container", r.Name, "grace", grace)
				if !gone {
					w.event(pod, "Normal", "Killing", "Stopping container %s", r.Name)
				}
				if err := w.m.rt.StopContainer(ctx, r.ID, grace); err != nil {
					mu.Lock()
					errs = append(errs, err.Error())
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("stop containers: %s", strings.Join(errs, "; "))
	}
	if err := w.removePod(ctx, pod); err != nil {
		return err
	}
	if gone {
		w.log.Info("pod cleaned up")
		return nil
	}
	zero := int64(0)
	m := pod.GetMetadata()
	_, err = w.m.api.Delete(ctx, m.GetNamespace(), m.GetName(), client.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &api.Preconditions{Uid: w.uid},
	})
	if err != nil && !client.IsNotFound(err) {
		return fmt.Errorf("delete pod object: %w", err)
	}
	w.log.Info("pod terminated and deleted")
	return nil
}

// removePod removes what is left of a pod whose containers are stopped:
// the sandbox (network first), every container run, the pod cgroup and
// the pod's files and volumes. It runs on a context of its own, so a
// kubelet stopping meanwhile does not cut a teardown in half; a failure is
// retried by the next terminate, which starts again from what containerd
// still has.
func (w *worker) removePod(ctx context.Context, pod *api.Pod) error {
	ctx, cancel := runtime.CleanupContext(ctx)
	defer cancel()
	sb, err := w.sandbox(ctx)
	if err != nil {
		return err
	}
	if sb != nil {
		if err := w.teardownSandbox(ctx, pod, sb); err != nil {
			return err
		}
	}
	// Listed again: a run may have appeared since the containers were
	// stopped (a create that containerd finished after its caller gave up).
	all, err := w.containers(ctx)
	if err != nil {
		return err
	}
	for _, runs := range all {
		for _, r := range runs {
			if err := w.m.rt.RemoveContainer(ctx, r.ID); err != nil {
				return err
			}
		}
	}
	if err := w.m.rt.RemovePodCgroup(w.uid); err != nil {
		return err
	}
	// Volumes are unmounted first; nothing is removed through a mount.
	if err := w.m.vols.RemovePodDir(w.uid); err != nil {
		return fmt.Errorf("remove pod dir: %w", err)
	}
	return nil
}
