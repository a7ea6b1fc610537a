package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/clientconfig"
	"github.com/skiff-dev/skiff/internal/pki"
	"github.com/skiff-dev/skiff/proto/api"
)

// ErrPartlyUp is returned by Up when a previous cluster of the same state
// dir is only partly running: Down must run first.
var ErrPartlyUp = errors.New("a previous local cluster is partly running: run down first")

// HTTP ports of the daemons' /healthz, /readyz and /metrics. The control
// plane's listen on the bridge IP, so two clusters on one host (a
// developer's and a test's) never collide.
const (
	apiserverHTTPPort  = 6080
	cmHTTPPort         = 10257
	schedulerHTTPPort  = 10259
	kubeletHTTPPort    = 10248
	kubeletServerPort  = 10250
	proxyHTTPPort      = 10256
	kubeletSyncSeconds = "10s"
)

type upper struct {
	cfg   Config
	state *State
}

func (u *upper) save() error { return u.state.save(u.cfg.stateFile()) }

// Up starts the cluster described by cfg and returns when every process
// runs (and, with cfg.Wait, when every node is Ready). Up on a running
// cluster changes nothing; on a partly running one it returns ErrPartlyUp.
// On any other failure the processes and objects made so far stay for
// inspection, recorded for Down.
func Up(ctx context.Context, cfg Config) (*State, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkPrerequisites(cfg); err != nil {
		return nil, err
	}
	prev, err := loadState(cfg.stateFile())
	if err != nil {
		return nil, err
	}
	if prev != nil && len(prev.Processes) > 0 {
		alive := 0
		for _, p := range prev.Processes {
			if p.Alive() {
				alive++
			}
		}
		if alive == len(prev.Processes) {
			if prev.Config.Nodes != cfg.Nodes {
				return nil, fmt.Errorf("the local cluster in %s runs %d nodes, not %d: run down first to change the node count", cfg.StateDir, prev.Config.Nodes, cfg.Nodes)
			}
			cfg.Logger.Info("local cluster already up", "stateDir", cfg.StateDir, "processes", alive)
			return prev, nil
		}
		return nil, fmt.Errorf("%w (%d of %d processes alive; state in %s)", ErrPartlyUp, alive, len(prev.Processes), cfg.StateDir)
	}
	if prev == nil && linkExists(cfg.Bridge()) {
		return nil, fmt.Errorf("bridge %s exists but %s records no cluster: another local cluster named %q runs from another state dir, or one was left behind (run down with that name)", cfg.Bridge(), cfg.StateDir, cfg.Name)
	}
	for _, dir := range []string{cfg.StateDir, cfg.logDir(), cfg.configDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	u := &upper{cfg: cfg, state: &State{Config: StateConfig{Name: cfg.Name, Nodes: cfg.Nodes}}}
	if prev != nil { // an earlier Up died before starting anything
		u.state = prev
		u.state.Config.Nodes = max(prev.Config.Nodes, cfg.Nodes)
	}
	if err := u.save(); err != nil {
		return nil, err
	}
	if err := u.up(ctx); err != nil {
		return u.state, err
	}
	return u.state, nil
}

func (u *upper) up(ctx context.Context) error {
	c, log := u.cfg, u.cfg.Logger
	log.Info("certificates", "dir", c.pkiDir())
	if err := u.certificates(ctx); err != nil {
		return err
	}
	log.Info("host bridge", "bridge", c.Bridge(), "ip", c.HostIP())
	if err := u.setUpBridge(ctx); err != nil {
		return err
	}
	for i := 1; i <= c.Nodes; i++ {
		log.Info("node namespace", "node", c.NodeName(i), "netns", c.Netns(i), "ip", c.NodeIP(i))
		if err := u.setUpNode(ctx, i); err != nil {
			return err
		}
	}
	if err := u.startControlPlane(ctx); err != nil {
		return err
	}
	for i := 1; i <= c.Nodes; i++ {
		if err := u.startNode(ctx, i); err != nil {
			return err
		}
	}
	if err := u.writeAdminConfig(); err != nil {
		return err
	}
	if !c.Wait {
		return u.checkAlive()
	}
	return u.waitNodesReady(ctx)
}

func checkPrerequisites(c Config) error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, b := range []string{"ip", "iptables", "nsenter", "sysctl", c.ContainerdBin, "runc"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	for _, b := range Components() {
		if _, err := os.Stat(filepath.Join(c.BinDir, b)); err != nil {
			missing = append(missing, filepath.Join(c.BinDir, b)+" (make build)")
		}
	}
	if c.ImageDir != "" {
		if st, err := os.Stat(c.ImageDir); err != nil || !st.IsDir() {
			missing = append(missing, c.ImageDir+" (make images, or no --image-dir)")
		}
	}
	if _, err := os.Stat(filepath.Join(c.CNIBinDir, "bridge")); err != nil {
		missing = append(missing, filepath.Join(c.CNIBinDir, "bridge")+" (containernetworking-plugins)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("local cluster needs: %s", strings.Join(missing, ", "))
	}
	return nil
}

// certificates makes the CA, the control plane's and every node's
// certificates, and a client config per identity.
func (u *upper) certificates(ctx context.Context) error {
	c := u.cfg
	dir := c.pkiDir()
	ips := []net.IP{net.ParseIP("127.0.0.1"), c.HostIP()}
	if err := pki.ControlPlane(dir, []string{"localhost", "skiff-apiserver"}, ips, pki.Options{}); err != nil {
		return err
	}
	for i := 1; i <= c.Nodes; i++ {
		if err := pki.Node(dir, c.NodeName(i), []net.IP{c.NodeIP(i)}, pki.Options{}); err != nil {
			return err
		}
	}
	files := []string{pki.FileAdmin, pki.FileControllerManager, pki.FileScheduler, pki.FileProxy}
	tls, err := supportsTLS(ctx, u.bin("apiserver"))
	if err != nil {
		return err
	}
	if !tls {
		c.Logger.Warn("the apiserver has no TLS flags yet: the local cluster runs its API in plaintext", "flags", tlsFlags())
	}
	u.state.TLS = tls
	kubeletTLS, err := supportsTLS(ctx, u.bin("kubelet"))
	if err != nil {
		return err
	}
	if tls && !kubeletTLS {
		return fmt.Errorf("%s has no %s: rebuild the binaries (make build); kubelets serve exec and logs only over mutual TLS", u.bin("kubelet"), strings.Join(tlsFlags(), ", "))
	}
	u.state.KubeletTLS = tls
	for i := 1; i <= c.Nodes; i++ {
		files = append(files, pki.KubeletClientFile(c.NodeName(i)))
	}
	for _, f := range files {
		if err := c.clientConfig(f, tls).Save(filepath.Join(c.configDir(), f+".config")); err != nil {
			return err
		}
	}
	return nil
}

// clientConfig is the client config of the identity whose certificate is
// <pki>/<file>.crt; without tls it names only the server.
func (c Config) clientConfig(file string, tls bool) *clientconfig.Config {
	ctx := clientconfig.Context{Name: "skiff-local", Servers: []string{c.APIServer()}, Namespace: "default"}
	if tls {
		ctx.CertificateAuthority = filepath.Join(c.pkiDir(), pki.CACertFile)
		ctx.ClientCertificate = filepath.Join(c.pkiDir(), file+".crt")
		ctx.ClientKey = filepath.Join(c.pkiDir(), file+".key")
	}
	return &clientconfig.Config{CurrentContext: ctx.Name, Contexts: []clientconfig.Context{ctx}}
}

func (c Config) hostAddr(port int) string {
	return net.JoinHostPort(c.HostIP().String(), fmt.Sprint(port))
}

func (c Config) componentConfig(file string) string {
	return filepath.Join(c.configDir(), file+".config")
}

// start runs one daemon and records it before anything waits on it.
func (u *upper) start(name, netns, bin string, args ...string) (Process, error) {
	logPath := filepath.Join(u.cfg.logDir(), strings.ReplaceAll(name, "/", "-")+".log")
	p, err := startProcess(name, netns, logPath, bin, args...)
	if err != nil {
		return Process{}, err
	}
	u.state.Processes = append(u.state.Processes, p)
	u.cfg.Logger.Info("started", "process", name, "pid", p.Pid, "log", logPath)
	return p, u.save()
}

func (u *upper) bin(name string) string { return filepath.Join(u.cfg.BinDir, name) }

// APIServerArgs are the apiserver's flags: gRPC on the bridge IP, embedded
// etcd in the state dir (or the external Config.EtcdServers), and with tls
// the serving certificate and client certificates verified against the
// cluster CA; with kubeletTLS also the apiserver's certificate towards
// kubelets.
func (c Config) APIServerArgs(tls, kubeletTLS bool) []string {
	p := c.pkiDir()
	args := []string{
		"--listen", c.APIServer(),
		"--http-addr", c.hostAddr(apiserverHTTPPort),
		"--service-cluster-ip-range", c.ServiceCIDR,
	}
	args = append(args, c.etcdArgs()...)
	if tls {
		args = append(args,
			"--tls-cert-file", filepath.Join(p, pki.FileAPIServer+".crt"),
			"--tls-private-key-file", filepath.Join(p, pki.FileAPIServer+".key"),
			"--client-ca-file", filepath.Join(p, pki.CACertFile),
			"--audit-log-path", filepath.Join(c.logDir(), "audit.log"),
		)
	}
	if tls && kubeletTLS {
		args = append(args,
			"--kubelet-client-certificate", filepath.Join(p, pki.FileAPIServerKubeletClient+".crt"),
			"--kubelet-client-key", filepath.Join(p, pki.FileAPIServerKubeletClient+".key"),
		)
	}
	return args
}

// tlsFlags are the flags a daemon serving TLS with client certificates
// takes, the apiserver and the kubelet alike.
func tlsFlags() []string {
	return []string{"--tls-cert-file", "--tls-private-key-file", "--client-ca-file"}
}

// supportsTLS asks a daemon's binary whether it has the TLS flags. The
// local cluster always uses TLS when it can; a binary built before TLS
// support runs plaintext, with a warning.
func supportsTLS(ctx context.Context, bin string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--help").CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("%s --help: %w: %s", bin, err, out)
	}
	for _, f := range tlsFlags() {
		if !strings.Contains(string(out), f+" ") {
			return false, nil
		}
	}
	return true, nil
}

// ControllerManagerArgs are the controller-manager's flags.
func (c Config) ControllerManagerArgs() []string {
	return []string{
		"--client-config", c.componentConfig(pki.FileControllerManager),
		"--cluster-cidr", c.ClusterCIDR,
		"--http-addr", c.hostAddr(cmHTTPPort),
	}
}

// SchedulerArgs are the scheduler's flags.
func (c Config) SchedulerArgs() []string {
	return []string{
		"--client-config", c.componentConfig(pki.FileScheduler),
		"--http-addr", c.hostAddr(schedulerHTTPPort),
	}
}

// KubeletArgs are node i's kubelet flags. Its health endpoint listens on
// the node IP so the host can probe it across the bridge. With tls its
// exec/logs server presents the node's serving certificate (for the node
// name and IP, which the apiserver dials and verifies) and serves only the
// apiserver's client certificate (the kubelet's --authorized-client-names
// default). Without tls the apiserver itself is plaintext, and the kubelet
// must be told --insecure to match.
func (c Config) KubeletArgs(i int, tls bool) []string {
	node, dir := c.NodeName(i), c.nodeDir(i)
	args := []string{
		"--client-config", c.componentConfig(pki.KubeletClientFile(node)),
		"--node-name", node,
		"--node-ip", c.NodeIP(i).String(),
		"--containerd-address", c.containerdSocket(i),
		"--root-dir", filepath.Join(dir, "kubelet"),
		"--cni-bin-dir", c.CNIBinDir,
		"--cni-conf-dir", filepath.Join(dir, "cni"),
		"--bridge", "skiff0",
		"--cluster-dns", c.ClusterDNS,
		"--sync-frequency", kubeletSyncSeconds,
		"--port", fmt.Sprint(kubeletServerPort),
		"--http-addr", net.JoinHostPort(c.NodeIP(i).String(), fmt.Sprint(kubeletHTTPPort)),
	}
	if c.ImageDir != "" {
		args = append(args, "--image-preload-dir", c.ImageDir)
	}
	if tls {
		p := c.pkiDir()
		args = append(args,
			"--tls-cert-file", filepath.Join(p, pki.KubeletServingFile(node)+".crt"),
			"--tls-private-key-file", filepath.Join(p, pki.KubeletServingFile(node)+".key"),
			"--client-ca-file", filepath.Join(p, pki.CACertFile),
		)
	} else {
		args = append(args, "--insecure")
	}
	return args
}

// ProxyArgs are node i's proxy flags.
func (c Config) ProxyArgs(i int) []string {
	return []string{
		"--client-config", c.componentConfig(pki.FileProxy),
		"--node-name", c.NodeName(i),
		"--cluster-cidr", c.ClusterCIDR,
		"--service-cidr", c.ServiceCIDR,
		"--cluster-dns", c.ClusterDNS,
		"--http-addr", net.JoinHostPort(c.NodeIP(i).String(), fmt.Sprint(proxyHTTPPort)),
	}
}

func (u *upper) startControlPlane(ctx context.Context) error {
	c := u.cfg
	api, err := u.start("apiserver", "", u.bin("apiserver"), c.APIServerArgs(u.state.TLS, u.state.KubeletTLS)...)
	if err != nil {
		return err
	}
	if c.Wait {
		if err := waitHTTP(ctx, "http://"+c.hostAddr(apiserverHTTPPort)+"/readyz", api, time.Minute); err != nil {
			return err
		}
	}
	if _, err := u.start("controller-manager", "", u.bin("controller-manager"), c.ControllerManagerArgs()...); err != nil {
		return err
	}
	_, err = u.start("scheduler", "", u.bin("scheduler"), c.SchedulerArgs()...)
	return err
}

func (u *upper) startNode(ctx context.Context, i int) error {
	c := u.cfg
	node, ns := c.NodeName(i), c.Netns(i)
	ctrdDir := filepath.Join(c.nodeDir(i), "containerd")
	if err := os.MkdirAll(ctrdDir, 0o755); err != nil {
		return fmt.Errorf("node %s: %w", node, err)
	}
	conf := filepath.Join(ctrdDir, "config.toml")
	if err := os.WriteFile(conf, []byte(c.containerdConfig(i)), 0o644); err != nil {
		return fmt.Errorf("node %s: %w", node, err)
	}
	ctrd, err := u.start(node+"/containerd", ns, c.ContainerdBin, "--config", conf)
	if err != nil {
		return err
	}
	if err := waitSocket(ctx, c.containerdSocket(i), ctrd, 30*time.Second); err != nil {
		return err
	}
	for _, d := range []string{"kubelet", "cni"} {
		if err := os.MkdirAll(filepath.Join(c.nodeDir(i), d), 0o755); err != nil {
			return fmt.Errorf("node %s: %w", node, err)
		}
	}
	if _, err := u.start(node+"/kubelet", ns, u.bin("kubelet"), c.KubeletArgs(i, u.state.KubeletTLS)...); err != nil {
		return err
	}
	_, err = u.start(node+"/proxy", ns, u.bin("proxy"), c.ProxyArgs(i)...)
	return err
}

// writeAdminConfig keeps the admin client config in the state dir and
// installs it for ctl, backing up a different config already there.
func (u *upper) writeAdminConfig() error {
	c := u.cfg
	admin := c.clientConfig(pki.FileAdmin, u.state.TLS)
	if err := admin.Save(c.AdminConfigCopy()); err != nil {
		return err
	}
	path, err := c.adminConfigPath()
	if err != nil || path == "" {
		return err
	}
	want, err := os.ReadFile(c.AdminConfigCopy())
	if err != nil {
		return fmt.Errorf("admin config: %w", err)
	}
	if have, err := os.ReadFile(path); err == nil && string(have) != string(want) {
		backup := fmt.Sprintf("%s.bak-%s", path, time.Now().Format("20060102-150405"))
		if err := os.Rename(path, backup); err != nil {
			return fmt.Errorf("back up %s: %w", path, err)
		}
		c.Logger.Warn("backed up the existing client config", "path", path, "backup", backup)
	}
	if err := admin.Save(path); err != nil {
		return err
	}
	u.state.AdminConfig = path
	return u.save()
}

func (u *upper) checkAlive() error {
	time.Sleep(500 * time.Millisecond) // let an immediate crash show
	for _, p := range u.state.Processes {
		if !p.Alive() {
			return fmt.Errorf("%s exited: %s", p.Name, tail(p.Log))
		}
	}
	return nil
}

// waitHTTP polls url until it answers 200, the process dies or timeout.
func waitHTTP(ctx context.Context, url string, p Process, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := hc.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if !p.Alive() {
			return fmt.Errorf("%s exited: %s", p.Name, tail(p.Log))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s after %v: %s", p.Name, url, timeout, tail(p.Log))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitNodesReady waits until every node reports Ready, checking that every
// process still runs meanwhile.
func (u *upper) waitNodesReady(ctx context.Context) error {
	c := u.cfg
	ctx, cancel := context.WithTimeout(ctx, c.WaitTimeout)
	defer cancel()
	cl, err := c.clientConfig(pki.FileAdmin, u.state.TLS).Dial(ctx)
	if err != nil {
		return fmt.Errorf("dial apiserver: %w", err)
	}
	nodes := client.For[*api.Node](cl)
	var last string
	for {
		for _, p := range u.state.Processes {
			if !p.Alive() {
				return fmt.Errorf("%s exited: %s", p.Name, tail(p.Log))
			}
		}
		list, _, err := nodes.List(ctx, "", client.ListOptions{})
		if err != nil {
			last = err.Error()
		} else {
			ready := readyNodes(list)
			last = fmt.Sprintf("%d of %d nodes Ready", len(ready), c.Nodes)
			if len(ready) >= c.Nodes {
				c.Logger.Info("nodes ready", "nodes", strings.Join(ready, ","))
				return u.routePodCIDRs(ctx, list)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodes not ready after %v (%s); logs in %s", c.WaitTimeout, last, c.logDir())
		case <-time.After(time.Second):
		}
	}
}

// routePodCIDRs lets the host reach pods as a machine on the nodes'
// network would: each node's pod CIDR via its InternalIP. The routes go
// with the bridge.
func (u *upper) routePodCIDRs(ctx context.Context, nodes []*api.Node) error {
	for _, n := range nodes {
		cidr := n.GetSpec().GetPodCidr()
		var ip string
		for _, a := range n.GetStatus().GetAddresses() {
			if a.GetType() == "InternalIP" {
				ip = a.GetAddress()
			}
		}
		if cidr == "" || ip == "" {
			u.cfg.Logger.Info("no pod CIDR yet: the host has no route to its pods", "node", n.GetMetadata().GetName())
			continue
		}
		if err := run(ctx, u.cfg.Logger, "ip", "route", "replace", cidr, "via", ip, "dev", u.cfg.Bridge()); err != nil {
			return err
		}
	}
	return nil
}

// readyNodes lists the nodes that are Ready and that the node lifecycle
// controller has untainted, so a deployment created right after Up can be
// spread over every node.
func readyNodes(nodes []*api.Node) []string {
	var ready []string
	for _, n := range nodes {
		if schedulable(n) {
			ready = append(ready, n.GetMetadata().GetName())
		}
	}
	return ready
}

func schedulable(n *api.Node) bool {
	for _, t := range n.GetSpec().GetTaints() {
		if t.GetEffect() == "NoSchedule" || t.GetEffect() == "NoExecute" {
			return false
		}
	}
	for _, cond := range n.GetStatus().GetConditions() {
		if cond.GetType() == "Ready" && cond.GetStatus() == "True" {
			return true
		}
	}
	return false
}
