package localcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/skiff-dev/skiff/internal/cgroups"
)

// containerdConfig is a node's containerd: its own root, state, socket
// and plugin dir, and no CRI plugin (the kubelet drives containerd through
// its Go client).
func (c Config) containerdConfig(i int) string {
	d := filepath.Join(c.nodeDir(i), "containerd")
	return fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(d, "root"), filepath.Join(d, "state"), c.containerdSocket(i), filepath.Join(d, "opt"))
}

// waitSocket waits until a unix socket accepts connections or the process
// dies.
func waitSocket(ctx context.Context, path string, p Process, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		conn, err := (&net.Dialer{}).DialContext(ctx, "unix", path)
		if err == nil {
			conn.Close()
			return nil
		}
		if !p.Alive() {
			return fmt.Errorf("%s exited: %s", p.Name, tail(p.Log))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: socket %s not ready after %v: %s", p.Name, path, timeout, tail(p.Log))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// removeContainers kills every task and deletes every container (with its
// snapshot) of the containerd listening on socket, in every containerd
// namespace, so the shims exit and runc removes the containers' cgroups.
// A containerd that does not answer is skipped: the process sweep that
// follows kills the shims and containers anyway. It returns the
// containerd namespaces it cleaned.
func removeContainers(ctx context.Context, log *slog.Logger, socket string) ([]string, error) {
	if _, err := os.Stat(socket); err != nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := containerd.New(socket, containerd.WithTimeout(2*time.Second))
	if err != nil {
		log.Debug("containerd not answering, skipping task clean-up", "socket", socket, "err", err)
		return nil, nil
	}
	defer c.Close()
	nss, err := c.NamespaceService().List(ctx)
	if err != nil {
		log.Debug("containerd not answering, skipping task clean-up", "socket", socket, "err", err)
		return nil, nil
	}
	var errs []error
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		ctrs, err := c.Containers(nctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("list containers in %s: %w", ns, err))
			continue
		}
		for _, ctr := range ctrs {
			if task, err := ctr.Task(nctx, nil); err == nil {
				if exit, err := task.Wait(nctx); err == nil {
					_ = task.Kill(nctx, syscall.SIGKILL, containerd.WithKillAll)
					select {
					case <-exit:
					case <-time.After(5 * time.Second):
					}
				}
				if _, err := task.Delete(nctx, containerd.WithProcessKill); err != nil {
					errs = append(errs, fmt.Errorf("delete task %s/%s: %w", ns, ctr.ID(), err))
				}
			}
			if err := ctr.Delete(nctx, containerd.WithSnapshotCleanup); err != nil {
				errs = append(errs, fmt.Errorf("delete container %s/%s: %w", ns, ctr.ID(), err))
			}
			log.Debug("removed container", "socket", socket, "namespace", ns, "container", ctr.ID())
		}
	}
	return nss, errors.Join(errs...)
}

// removePodCgroups removes the empty pod cgroups, /<namespace>/pod<uid>,
// that the stopped kubelets can no longer remove, once every node's
// containers are gone: the nodes of a local cluster (and other local
// clusters on the host) share these cgroup paths, so a pod cgroup still
// holding processes belongs to someone else and is only logged.
func removePodCgroups(log *slog.Logger, namespaces []string) {
	for _, ns := range namespaces {
		if err := cgroups.RemoveChildren(cgroups.DefaultRoot, "/"+ns, "pod"); err != nil {
			log.Warn("pod cgroups still in use are left", "namespace", ns, "err", err)
		}
	}
}

// tail returns the last lines of a log file, for error messages.
func tail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	const max = 2000
	if len(data) > max {
		data = data[len(data)-max:]
	}
	return fmt.Sprintf("last output of %s:\n%s", path, data)
}
