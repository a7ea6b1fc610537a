// Package etcdtest runs a real multi-member etcd cluster (the etcd binary,
// Debian's etcd-server) on loopback, for tests that need an external etcd:
// the apiserver's integration tests and the end-to-end suite. Members are
// killed with SIGKILL and restarted on their data, as a crash and a
// supervisor would.
//
// It must only be used by tests and test harnesses, and it never signals
// a process it did not start.
package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Options describe a cluster. The zero value of every field but Dir has a
// default.
type Options struct {
	// Members is the member count (default 3).
	Members int
	// Dir holds each member's data dir, Dir/<member>.
	Dir string
	// LogDir holds each member's log, LogDir/etcd-<member>.log (default
	// Dir).
	LogDir string
	// Bin is the etcd binary (default: etcd on PATH).
	Bin string
	// LogLevel is etcd's --log-level (default warn: elections and lost
	// peers, not every request).
	LogLevel string
	// Token is the --initial-cluster-token (default skiff-test).
	Token string
	// StartTimeout bounds the wait for a leader (default 60s).
	StartTimeout time.Duration
	// TLS serves clients and peers over TLS with client certificate auth,
	// as a deployed cluster does; Cluster.TLS has the certificates.
	TLS bool
}

func (o Options) withDefaults() Options {
	if o.Members <= 0 {
		o.Members = 3
	}
	if o.LogDir == "" {
		o.LogDir = o.Dir
	}
	if o.LogLevel == "" {
		o.LogLevel = "warn"
	}
	if o.Token == "" {
		o.Token = "skiff-test"
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = time.Minute
	}
	return o
}

// Cluster is a running etcd cluster.
type Cluster struct {
	Members []*Member
	// TLS is set when the cluster was started with Options.TLS.
	TLS *TLSFiles
}

// Member is one etcd process.
type Member struct {
	Name      string
	ClientURL string
	PeerURL   string
	DataDir   string
	Log       string
	argv      []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed when cmd has exited and been reaped
	killed bool          // the current process was stopped by Kill
}

// Binary finds the etcd binary on PATH, with what to install when missing.
func Binary() (string, error) {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		return "", fmt.Errorf("etcd binary missing (Debian package etcd-server, deploy/deps.sh): %w", err)
	}
	return bin, nil
}

// Start runs the members and returns once they have elected a leader. On
// error every member started so far is stopped.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	o = o.withDefaults()
	if o.Dir == "" {
		return nil, errors.New("etcdtest: Options.Dir is required")
	}
	if o.Bin == "" {
		bin, err := Binary()
		if err != nil {
			return nil, err
		}
		o.Bin = bin
	}
	for _, d := range []string{o.Dir, o.LogDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("etcd cluster: %w", err)
		}
	}
	ports, err := freePorts(2 * o.Members)
	if err != nil {
		return nil, err
	}
	c := &Cluster{}
	scheme := "http"
	if o.TLS {
		scheme = "https"
	}
	var initial []string
	for i := range o.Members {
		m := &Member{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i]),
			PeerURL:   fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i+1]),
		}
		m.DataDir = filepath.Join(o.Dir, m.Name)
		m.Log = filepath.Join(o.LogDir, "etcd-"+m.Name+".log")
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	if o.TLS {
		if c.TLS, err = makeTLS(filepath.Join(o.Dir, "pki"), c.Members); err != nil {
			return nil, err
		}
	}
	for _, m := range c.Members {
		m.argv = []string{o.Bin,
			"--name", m.Name, "--data-dir", m.DataDir,
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", o.Token,
			"--logger", "zap", "--log-outputs", "stderr", "--log-level", o.LogLevel,
		}
		if c.TLS != nil {
			m.argv = append(m.argv, c.TLS.memberArgs(m)...)
		}
		if err := m.start(); err != nil {
			c.Stop()
			return nil, err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	if _, err := c.WaitLeader(wctx); err != nil {
		c.Stop()
		return nil, fmt.Errorf("etcd cluster did not elect a leader: %w", err)
	}
	return c, nil
}

// StartT starts a cluster in a temporary directory of t and stops it when
// t ends, printing the members' logs if t failed. Without the etcd binary
// it skips t, except under CI, where it fails.
func StartT(t testing.TB, o Options) *Cluster {
	t.Helper()
	if _, err := Binary(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	c, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			for _, m := range c.Members {
				if data, err := os.ReadFile(m.Log); err == nil {
					t.Logf("etcd %s log:\n%s", m.Name, data)
				}
			}
		}
	})
	return c
}

// freePorts reserves n distinct loopback ports, all held at once so none
// is handed out twice, and releases them for etcd to take.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a port for etcd: %w", err)
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Endpoints are the members' client URLs, for --etcd-servers.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, m.ClientURL)
	}
	return out
}

// Member returns the member called name.
func (c *Cluster) Member(name string) (*Member, bool) {
	for _, m := range c.Members {
		if m.Name == name {
			return m, true
		}
	}
	return nil, false
}

// Leader asks the running members which of them leads, once.
func (c *Cluster) Leader(ctx context.Context) (*Member, error) {
	var live []string
	for _, m := range c.Members {
		if m.Alive() {
			live = append(live, m.ClientURL)
		}
	}
	if len(live) == 0 {
		return nil, errors.New("no etcd member runs")
	}
	tlsConfig, err := c.ClientTLS()
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: live, DialTimeout: 2 * time.Second, Logger: zap.NewNop(), TLS: tlsConfig})
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	defer cli.Close()
	var errs []error
	for _, m := range c.Members {
		if !m.Alive() {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := cli.Status(sctx, m.ClientURL)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("status of %s: %w", m.Name, err))
			continue
		}
		if st.Leader != 0 && st.Leader == st.Header.MemberId {
			return m, nil
		}
	}
	return nil, fmt.Errorf("no member is leader: %w", errors.Join(errs...))
}

// WaitLeader polls until a running member leads, or ctx ends.
func (c *Cluster) WaitLeader(ctx context.Context) (*Member, error) {
	for {
		m, err := c.Leader(ctx)
		if err == nil {
			return m, nil
		}
		for _, m := range c.Members {
			if m.exited() {
				return nil, fmt.Errorf("etcd %s exited: %s", m.Name, tail(m.Log))
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Stop kills every member and waits for them; data dirs stay.
func (c *Cluster) Stop() {
	for _, m := range c.Members {
		_ = m.Kill()
	}
}

// start runs the member's process with output appended to its log. The
// process dies with the thread that started it (Pdeathsig) so a test
// binary killed by its timeout leaves no etcd behind.
func (m *Member) start() error {
	logf, err := os.OpenFile(m.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("etcd %s: %w", m.Name, err)
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(m.argv[0], m.argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start etcd %s: %w", m.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	m.mu.Lock()
	m.cmd, m.done, m.killed = cmd, done, false
	m.mu.Unlock()
	return nil
}

// Pid is the member's current process id (0 before it ever started).
func (m *Member) Pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// Alive says whether the member's process runs.
func (m *Member) Alive() bool {
	m.mu.Lock()
	done := m.done
	m.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// exited says the member ran and stopped on its own, not by Kill.
func (m *Member) exited() bool {
	m.mu.Lock()
	killed := m.killed
	m.mu.Unlock()
	return m.Pid() != 0 && !killed && !m.Alive()
}

// Kill sends SIGKILL, as a crash, and waits until the process is gone. A
// member that does not run is left as it is.
func (m *Member) Kill() error {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	if cmd != nil {
		m.killed = true
	}
	m.mu.Unlock()
	if cmd == nil || !m.Alive() {
		return nil
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill etcd %s: %w", m.Name, err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("etcd %s (pid %d) survived SIGKILL", m.Name, cmd.Process.Pid)
	}
}

// Restart starts a killed member again on its data dir, where it rejoins
// the cluster.
func (m *Member) Restart() error {
	if m.Alive() {
		return fmt.Errorf("restart etcd %s: pid %d still runs: kill it first", m.Name, m.Pid())
	}
	if f, err := os.OpenFile(m.Log, os.O_WRONLY|os.O_APPEND, 0); err == nil {
		fmt.Fprintf(f, "\n===== etcdtest: restarting %s at %s =====\n", m.Name, time.Now().UTC().Format(time.RFC3339))
		f.Close()
	}
	return m.start()
}

// tail is the end of a log, for errors.
func tail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	const keep = 2000
	if len(data) > keep {
		data = data[len(data)-keep:]
	}
	return string(data)
}
