// Package harness runs a real local Skiff cluster for the end-to-end suite
// and lets tests drive it the way a person does: the ctl binary with the
// cluster's admin config, commands inside a node's network namespace, and
// containerd's ctr on a node's socket.
//
// The cluster is the one `make up` starts (internal/localcluster), with its
// own name, subnet and API port so it never collides with a developer's
// cluster. The harness adds only what localcluster does not offer: the
// build of the binaries and images, process kill and restart for fault
// injection, a check that nothing is left after Down, and a dump of the
// cluster's state for failure reports. It must never touch a process,
// namespace, link or chain that is not its own cluster's.
package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/skiff-dev/skiff/internal/etcdtest"
	"github.com/skiff-dev/skiff/internal/imagebuild"
	"github.com/skiff-dev/skiff/internal/localcluster"
)

// Commands are the binaries the suite builds: the five daemons and ctl.
func Commands() []string {
	return append(localcluster.Components(), "ctl")
}

// Tools are the host programs the suite and the local cluster need.
func Tools() []string {
	return []string{"ip", "iptables", "iptables-save", "nsenter", "sysctl", "containerd", "runc", "ctr", "go", "timeout"}
}

// Missing lists what the machine lacks to run the suite: root, tools,
// CNI plugins, busybox-static and nginx-light (the images' sources).
func Missing() []string {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, t := range Tools() {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	for _, f := range []string{"/usr/lib/cni/bridge", imagebuild.BusyboxBinary, "/usr/sbin/nginx"} {
		if _, err := os.Stat(f); err != nil {
			missing = append(missing, f)
		}
	}
	return missing
}

// Options describe the suite's cluster.
type Options struct {
	// RepoRoot is the module's root, where the binaries are built from.
	RepoRoot string
	// WorkDir holds the binaries, images and the cluster's state dir. It is
	// fixed rather than random so a run killed before Down is cleaned up by
	// the next one.
	WorkDir string
	// Name, Subnet and APIServerPort keep the cluster apart from a
	// developer's `make up` cluster.
	Name          string
	Subnet        string
	APIServerPort int
	Nodes         int
	// ClusterCIDR is the pod network (default localcluster's): two
	// clusters up at once need different ones, as the host routes each
	// node's pod CIDR.
	ClusterCIDR string
	// EtcdMembers, when not 0, runs an external etcd cluster of that many
	// members (logs in the cluster's log dir, data in its state dir) and
	// the apiserver on it instead of on its embedded etcd.
	EtcdMembers int
	// BinDir and ImageDir, when set, hold binaries and images built
	// already (another cluster's), and Start builds nothing.
	BinDir, ImageDir string
	Logger           *slog.Logger
}

// Cluster is a running local cluster and what the suite knows of its
// processes, including the ones it restarted.
type Cluster struct {
	Config localcluster.Config
	// CtlBin is the built ctl; AdminConfig the client config it uses.
	CtlBin      string
	AdminConfig string
	log         *slog.Logger
	// hostChains are the host's iptables chains before Up, so the check
	// after Down sees exactly what the cluster added.
	hostChains map[string]bool

	// Etcd is the external etcd cluster the apiserver stores in (nil: the
	// apiserver's embedded etcd).
	Etcd *etcdtest.Cluster

	// lock is WorkDir's lock file, held while the cluster exists.
	lock *os.File

	mu    sync.Mutex
	procs map[string]localcluster.Process // by name; replaced on restart
	// restarted are the processes the harness started itself: Down stops
	// them before localcluster.Down, which knows only its own record.
	restarted []localcluster.Process
	// dumped are the keys DumpOnce has dumped for.
	dumped map[string]bool
}

// Build compiles the commands into dir/bin and writes the demo images into
// dir/images.
func Build(ctx context.Context, repoRoot, dir string) (binDir, imageDir string, err error) {
	binDir, imageDir = filepath.Join(dir, "bin"), filepath.Join(dir, "images")
	for _, d := range []string{binDir, imageDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", "", fmt.Errorf("build: %w", err)
		}
	}
	args := []string{"build", "-o", binDir + "/"}
	for _, c := range Commands() {
		args = append(args, "./"+c)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	images := map[string]func(io.Writer, string) error{"busybox": imagebuild.Busybox, "nginx": imagebuild.Nginx}
	for name, build := range images {
		if err := imagebuild.WriteFile(filepath.Join(imageDir, name+".tar"), name+":latest", build); err != nil {
			return "", "", fmt.Errorf("build image %s: %w", name, err)
		}
	}
	return binDir, imageDir, nil
}

// Start builds everything and brings the cluster up, after removing what a
// previous run of the same WorkDir may have left. On error the returned
// Cluster (when not nil) is still there to dump and to Down.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := localcluster.Config{
		Name:          o.Name,
		StateDir:      filepath.Join(o.WorkDir, "state"),
		Nodes:         o.Nodes,
		Subnet:        o.Subnet,
		ClusterCIDR:   o.ClusterCIDR,
		APIServerPort: o.APIServerPort,
		AdminConfig:   "-",
		Wait:          true,
		WaitTimeout:   3 * time.Minute,
		Logger:        log,
	}
	lock, err := lockWorkDir(o.WorkDir)
	if err != nil {
		return nil, err
	}
	// A previous run killed before its Down (a test binary timeout) left
	// its cluster behind: remove it first, by the same names.
	if err := localcluster.Down(ctx, cfg); err != nil {
		lock.Close()
		return nil, fmt.Errorf("remove a previous e2e cluster: %w", err)
	}
	binDir, imageDir := o.BinDir, o.ImageDir
	if binDir == "" {
		log.Info("building binaries and images", "dir", o.WorkDir)
		if binDir, imageDir, err = Build(ctx, o.RepoRoot, o.WorkDir); err != nil {
			lock.Close()
			return nil, err
		}
	}
	cfg.BinDir, cfg.ImageDir = binDir, imageDir
	cfg = cfg.WithDefaults()
	chains, err := hostChains(ctx)
	if err != nil {
		lock.Close()
		return nil, err
	}
	c := &Cluster{
		Config:      cfg,
		CtlBin:      filepath.Join(binDir, "ctl"),
		AdminConfig: cfg.AdminConfigCopy(),
		log:         log,
		hostChains:  chains,
		lock:        lock,
		procs:       map[string]localcluster.Process{},
	}
	if o.EtcdMembers > 0 {
		// Under the state dir, so Down's sweep of processes naming it
		// also ends members a killed run left behind.
		log.Info("starting an external etcd cluster", "members", o.EtcdMembers)
		etcd, err := etcdtest.Start(ctx, etcdtest.Options{
			Members: o.EtcdMembers, Dir: filepath.Join(cfg.StateDir, "etcd"), LogDir: c.LogDir(), Token: cfg.Name,
		})
		if err != nil {
			lock.Close()
			return nil, err
		}
		c.Etcd = etcd
		c.Config.EtcdServers = etcd.Endpoints()
		cfg = c.Config
	}
	log.Info("starting the cluster", "name", cfg.Name, "stateDir", cfg.StateDir)
	st, err := localcluster.Up(ctx, cfg)
	if st != nil {
		for _, p := range st.Processes {
			c.procs[p.Name] = p
		}
	}
	if err != nil {
		return c, fmt.Errorf("local cluster up: %w", err)
	}
	return c, nil
}

// Down stops the processes the harness restarted (node agents first, as
// localcluster does) and then removes the cluster with localcluster.Down.
func (c *Cluster) Down(ctx context.Context) error {
	c.mu.Lock()
	restarted := append([]localcluster.Process(nil), c.restarted...)
	c.mu.Unlock()
	var errs []error
	for _, agents := range []bool{true, false} {
		for i := len(restarted) - 1; i >= 0; i-- {
			if p := restarted[i]; isNodeAgent(p.Name) == agents {
				if err := p.Stop(ctx, 10*time.Second); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if err := localcluster.Down(ctx, c.Config); err != nil {
		errs = append(errs, err)
	}
	// After the apiserver: Down has stopped it, and swept the members as
	// processes naming the state dir; this waits for them.
	if c.Etcd != nil {
		c.Etcd.Stop()
	}
	if len(errs) == 0 {
		c.lock.Close() // releases the lock
	}
	return errors.Join(errs...)
}

func isNodeAgent(name string) bool {
	return strings.HasSuffix(name, "/kubelet") || strings.HasSuffix(name, "/proxy")
}

// NodeNames are the nodes' names, node-1 first.
func (c *Cluster) NodeNames() []string {
	var out []string
	for i := 1; i <= c.Config.Nodes; i++ {
		out = append(out, c.Config.NodeName(i))
	}
	return out
}

// NodeIndex is the 1-based index of a node name, 0 when unknown.
func (c *Cluster) NodeIndex(node string) int {
	for i := 1; i <= c.Config.Nodes; i++ {
		if c.Config.NodeName(i) == node {
			return i
		}
	}
	return 0
}

// LogDir is where every component logs.
func (c *Cluster) LogDir() string { return filepath.Join(c.Config.StateDir, "logs") }

// ContainerdSocket is node i's containerd socket (as localcluster lays
// out the state dir).
func (c *Cluster) ContainerdSocket(i int) string {
	return filepath.Join(c.NodeDir(i), "containerd", "containerd.sock")
}

// NodeDir is node i's directory in the state dir.
func (c *Cluster) NodeDir(i int) string {
	return filepath.Join(c.Config.StateDir, "nodes", c.Config.NodeName(i))
}

// lockWorkDir takes WorkDir's lock, so two runs of the suite (two go test
// invocations) never drive, or tear down, the same cluster.
func lockWorkDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("work dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("work dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another run of the e2e suite holds %s (%w): wait for it to finish", f.Name(), err)
	}
	return f, nil
}
