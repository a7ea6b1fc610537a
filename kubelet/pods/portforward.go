package pods

import (
	"context"
	"errors"
	"fmt"
	"net"
	goruntime "runtime"
	"strconv"

	"github.com/vishvananda/netns"

	"github.com/skiff-dev/skiff/kubelet/runtime"
)

// ErrPodNotRunning is returned for a port-forward to a pod with no running
// container on this node.
var ErrPodNotRunning = errors.New("pod is not running")

// DialPod connects to port on localhost in the network namespace of a
// running pod on this node (the node's own for a hostNetwork pod), as
// kubectl port-forward reaches it.
func (m *Manager) DialPod(ctx context.Context, namespace, pod string, port int32) (net.Conn, error) {
	ctrs, err := m.rt.Containers(ctx)
	if err != nil {
		return nil, err
	}
	uid, found := "", false
	for _, c := range ctrs {
		if c.Pod.Namespace == namespace && c.Pod.Name == pod {
			found = true
			if c.Status == runtime.StatusRunning {
				uid = c.Pod.UID
			}
		}
	}
	switch {
	case !found:
		return nil, fmt.Errorf("pod %s/%s: %w", namespace, pod, ErrNoContainers)
	case uid == "":
		return nil, fmt.Errorf("pod %s/%s: %w", namespace, pod, ErrPodNotRunning)
	}
	sb, err := m.rt.PodSandbox(ctx, uid)
	if err != nil {
		return nil, err
	}
	if sb == nil {
		return nil, fmt.Errorf("pod %s/%s has no sandbox: %w", namespace, pod, ErrPodNotRunning)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	if sb.NetNSPath != "" {
		return DialInNetNS(ctx, sb.NetNSPath, addr)
	}
	// No namespace: a hostNetwork pod, in the kubelet's own, or a pod
	// whose namespace went as it finished, which must never be taken for
	// the node's localhost.
	if !m.workerPod(uid).GetSpec().GetHostNetwork() {
		return nil, fmt.Errorf("pod %s/%s has no network namespace: %w", namespace, pod, ErrPodNotRunning)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// DialInNetNS opens a TCP connection to addr from inside the network
// namespace at path. The socket is made on an OS thread switched into the
// namespace, and keeps it for its life wherever Go later runs it; a thread
// that cannot be switched back is never reused.
func DialInNetNS(ctx context.Context, path, addr string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		goruntime.LockOSThread()
		conn, restored, err := dialFrom(ctx, path, addr)
		if restored {
			goruntime.UnlockOSThread()
		}
		done <- result{conn, err}
	}()
	r := <-done
	return r.conn, r.err
}

// dialFrom runs on a locked thread; restored says whether the thread is
// back in its own namespace.
func dialFrom(ctx context.Context, path, addr string) (conn net.Conn, restored bool, err error) {
	own, err := netns.Get()
	if err != nil {
		return nil, true, fmt.Errorf("network namespace of the kubelet: %w", err)
	}
	defer own.Close()
	target, err := netns.GetFromPath(path)
	if err != nil {
		return nil, true, fmt.Errorf("network namespace %s: %w", path, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return nil, true, fmt.Errorf("enter network namespace %s: %w", path, err)
	}
	var d net.Dialer
	conn, err = d.DialContext(ctx, "tcp", addr)
	restored = netns.Set(own) == nil
	if err != nil {
		return nil, restored, fmt.Errorf("dial %s in network namespace %s: %w", addr, path, err)
	}
	return conn, restored, nil
}
