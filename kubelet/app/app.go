// Package app assembles the kubelet: containerd runtime, image preload,
// node registration and lease, pod network, pod volumes, pod workers fed
// by an informer on the pods bound to this node, orphan clean-up, and the
// exec/logs server. kubelet/main.go fills Config from flags and calls Run;
// tests start it in-process the same way.
//
// It must never parse flags or exit the process.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/events"
	"github.com/skiff-dev/skiff/internal/informer"
	"github.com/skiff-dev/skiff/internal/pki"
	"github.com/skiff-dev/skiff/internal/version"
	"github.com/skiff-dev/skiff/kubelet/cni"
	"github.com/skiff-dev/skiff/kubelet/nodestatus"
	"github.com/skiff-dev/skiff/kubelet/pods"
	"github.com/skiff-dev/skiff/kubelet/runtime"
	"github.com/skiff-dev/skiff/kubelet/server"
	"github.com/skiff-dev/skiff/kubelet/status"
	"github.com/skiff-dev/skiff/kubelet/volumes"
	"github.com/skiff-dev/skiff/proto/api"
)

// Config is the kubelet's configuration; Defaults gives the flag defaults.
type Config struct {
	NodeName          string
	NodeIP            string // empty: the default route's interface address
	ContainerdAddress string
	// ContainerdNamespace isolates the kubelet's containers.
	ContainerdNamespace string
	RootDir             string
	CNIBinDir           string
	CNIConfDir          string
	// NetworkName names the CNI network; one per node.
	NetworkName string
	Bridge      string
	// PodCIDR overrides the node's spec.podCIDR (standalone use).
	PodCIDR       string
	ClusterDNS    string
	ClusterDomain string
	SyncFrequency time.Duration
	// ImagePreloadDir holds image tarballs imported at start.
	ImagePreloadDir    string
	InsecureRegistries []string
	// Port serves exec and logs on Address (all interfaces when empty).
	Port    int
	Address string
	// Listener, when set, is used instead of listening on Address:Port
	// (tests pass one on 127.0.0.1:0); Port must then be its port.
	Listener net.Listener
	// TLSCertFile and TLSPrivateKeyFile are the exec/logs server's
	// serving certificate: the node's, for its name and InternalIP, which
	// is the address the apiserver dials and verifies.
	TLSCertFile       string
	TLSPrivateKeyFile string
	// ClientCAFile verifies callers' client certificates; a caller without
	// one of this CA is refused at the TLS handshake.
	ClientCAFile string
	// AuthorizedClientNames are the users (client certificate CN) allowed
	// to call exec and logs; every other verified caller, the admin and
	// other nodes included, gets PermissionDenied. Default: the
	// apiserver's kubelet client, pki.UserAPIServer.
	AuthorizedClientNames []string
	// Insecure serves exec and logs in plaintext to anyone, for tests
	// against an --insecure apiserver. Never the default: without it the
	// TLS files are required.
	Insecure bool
	// CPU overrides the cpu capacity; 0 counts the CPUs.
	CPU int
	// Backoff is the restart and image pull back-off.
	Backoff status.Backoff
	// NodeStatusPeriod is how often the node status is written.
	NodeStatusPeriod time.Duration
	Logger           *slog.Logger
}

// Defaults are the kubelet's defaults, as its flags show them.
func Defaults() Config {
	host, _ := os.Hostname()
	return Config{
		NodeName:              host,
		ContainerdAddress:     "/run/containerd/containerd.sock",
		ContainerdNamespace:   runtime.DefaultNamespace,
		RootDir:               "/var/lib/skiff/kubelet",
		CNIBinDir:             "/usr/lib/cni",
		CNIConfDir:            "/etc/skiff/cni/net.d",
		NetworkName:           "skiff",
		Bridge:                "skiff0",
		ClusterDomain:         "cluster.local",
		SyncFrequency:         20 * time.Second,
		Port:                  10250,
		AuthorizedClientNames: []string{pki.UserAPIServer},
		Backoff:               status.DefaultBackoff(),
		NodeStatusPeriod:      10 * time.Second,
	}
}

// Kubelet is a running kubelet.
type Kubelet struct {
	cfg      Config
	c        *client.Client
	log      *slog.Logger
	informer *informer.Informer[*api.Pod]
	// security is who may call the exec/logs server.
	security server.Security
	// networkReady is set once the pod network is configured: the node
	// is Ready from then on.
	networkReady atomic.Bool
}

// New checks the configuration.
func New(cfg Config, c *client.Client) (*Kubelet, error) {
	sec, err := cfg.check()
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	k := &Kubelet{cfg: cfg, c: c, log: cfg.Logger.With("node", cfg.NodeName), security: sec}
	k.informer = informer.New(c.Pods(), informer.Options{
		FieldSelector: "spec.nodeName=" + cfg.NodeName,
		ResyncPeriod:  cfg.SyncFrequency,
		Logger:        k.log,
	})
	return k, nil
}

// Validate checks the configuration, the exec/logs server's TLS files
// included, so a kubelet without them refuses to start before it connects
// anywhere.
func (cfg Config) Validate() error {
	_, err := cfg.check()
	return err
}

// check validates the configuration and loads the exec/logs server's
// security.
func (cfg Config) check() (server.Security, error) {
	if cfg.NodeName == "" {
		return server.Security{}, errors.New("--node-name is required")
	}
	if cfg.SyncFrequency <= 0 {
		return server.Security{}, fmt.Errorf("--sync-frequency %v: must be positive", cfg.SyncFrequency)
	}
	return cfg.serverSecurity()
}

// serverSecurity loads the exec/logs server's TLS files: mutual TLS is
// required unless Insecure says otherwise, and the two never mix.
func (cfg Config) serverSecurity() (server.Security, error) {
	files := cfg.TLSCertFile != "" || cfg.TLSPrivateKeyFile != "" || cfg.ClientCAFile != ""
	if cfg.Insecure {
		if files {
			return server.Security{}, errors.New("--insecure and the TLS flags (--tls-cert-file, --tls-private-key-file, --client-ca-file) are mutually exclusive")
		}
		return server.Security{Insecure: true}, nil
	}
	if cfg.TLSCertFile == "" || cfg.TLSPrivateKeyFile == "" || cfg.ClientCAFile == "" {
		return server.Security{}, errors.New("--tls-cert-file, --tls-private-key-file and --client-ca-file are required: exec and logs are served only to the apiserver over mutual TLS (--insecure serves plaintext to anyone, for tests only)")
	}
	tc, err := pki.ServerTLS(cfg.TLSCertFile, cfg.TLSPrivateKeyFile, cfg.ClientCAFile, tls.RequireAndVerifyClientCert)
	if err != nil {
		return server.Security{}, fmt.Errorf("--tls-cert-file/--tls-private-key-file/--client-ca-file: %w", err)
	}
	sec := server.Security{TLS: tc, AuthorizedUsers: cfg.AuthorizedClientNames}
	if err := sec.Validate(); err != nil {
		return server.Security{}, fmt.Errorf("--authorized-client-names: %w", err)
	}
	return sec, nil
}

// Ready is nil once the kubelet has synced the pods bound to it.
func (k *Kubelet) Ready() error {
	if !k.informer.HasSynced() {
		return errors.New("pods not synced yet")
	}
	return nil
}

// nodeReady is the node's Ready condition: the pod network is configured.
func (k *Kubelet) nodeReady() error {
	if !k.networkReady.Load() {
		return errors.New("pod network not configured: waiting for the node's pod CIDR")
	}
	return nil
}

// Run runs the kubelet until ctx ends. Containers keep running after it
// returns.
func (k *Kubelet) Run(ctx context.Context) error {
	cfg := k.cfg
	rt, err := runtime.New(runtime.Config{
		Address: cfg.ContainerdAddress, Namespace: cfg.ContainerdNamespace,
		InsecureRegistries: cfg.InsecureRegistries, StateDir: filepath.Join(cfg.RootDir, "fifo"), Logger: k.log,
	})
	if err != nil {
		return err
	}
	defer rt.Close()
	if cfg.ImagePreloadDir != "" {
		if _, err := rt.ImportDir(ctx, cfg.ImagePreloadDir); err != nil {
			return err
		}
	}
	nodeIP := cfg.NodeIP
	if nodeIP == "" {
		if nodeIP, err = nodestatus.DefaultRouteIP(); err != nil {
			return err
		}
	}
	lis := cfg.Listener
	if lis == nil {
		if lis, err = net.Listen("tcp", net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.Port))); err != nil {
			return fmt.Errorf("listen on --port: %w", err)
		}
	}
	defer lis.Close()

	reg := nodestatus.New(nodestatus.Config{
		NodeName: cfg.NodeName, NodeIP: nodeIP, CPU: cfg.CPU, KubeletPort: int32(cfg.Port),
		KubeletVersion: version.GitVersion, RuntimeVersion: rt.Version, Images: images(rt),
		Ready: k.nodeReady, StatusPeriod: cfg.NodeStatusPeriod, Logger: k.log,
	}, k.c)
	if err := retry(ctx, k.log, "register node", func() error { _, err := reg.Register(ctx); return err }); err != nil {
		return err
	}
	podCIDR := cfg.PodCIDR
	if podCIDR == "" {
		if podCIDR, err = reg.WaitForPodCIDR(ctx); err != nil {
			return err
		}
	}
	network, err := cni.New(cfg.networkConfig(podCIDR))
	if err != nil {
		return err
	}
	k.networkReady.Store(true)
	k.log.Info("pod network configured", "podCIDR", podCIDR, "bridge", cfg.Bridge)

	recorder := events.NewRecorder(k.c, "kubelet", cfg.NodeName, events.WithLogger(k.log))
	mgr := pods.NewManager(pods.Config{
		NodeName: cfg.NodeName, NodeIP: nodeIP, RootDir: cfg.RootDir,
		ClusterDNS: cfg.ClusterDNS, ClusterDomain: cfg.ClusterDomain, Backoff: cfg.Backoff,
		Recorder: recorder, Logger: k.log,
		Volumes: volumes.New(volumes.Config{
			RootDir:    cfg.RootDir,
			ConfigMaps: client.For[*api.ConfigMap](k.c),
			Secrets:    client.For[*api.Secret](k.c),
			Logger:     k.log,
		}),
	}, rt, network, k.c.Pods())
	k.informer.AddEventHandler(informer.Handler[*api.Pod]{
		OnAdd:    mgr.UpdatePod,
		OnUpdate: func(_, pod *api.Pod) { mgr.UpdatePod(pod) },
		OnDelete: mgr.DeletePod,
	})
	srv := server.New(mgr, rt, mgr, k.log)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { recorder.Run(gctx); return nil })
	g.Go(func() error { return mgr.Run(gctx) })
	g.Go(func() error { k.informer.Run(gctx); return nil })
	g.Go(func() error { reg.Run(gctx); return nil })
	g.Go(func() error { return srv.Serve(gctx, lis, k.security) })
	g.Go(func() error { return k.housekeeping(gctx, mgr) })
	err = g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// housekeeping removes pods containerd runs that the apiserver no longer
// has, and then the directories and volumes of pods that left nothing in
// containerd, once the pod cache is synced and then every sync period.
func (k *Kubelet) housekeeping(ctx context.Context, mgr *pods.Manager) error {
	if !k.informer.WaitForSync(ctx) {
		return nil
	}
	t := time.NewTicker(k.cfg.SyncFrequency)
	defer t.Stop()
	for {
		known := map[string]bool{}
		for _, p := range k.informer.Lister().List(nil) {
			known[p.GetMetadata().GetUid()] = true
		}
		if err := mgr.CleanupOrphans(ctx, func(uid string) bool { return known[uid] }); err != nil && ctx.Err() == nil {
			k.log.Warn("orphan clean-up", "err", err)
		} else if err := mgr.CleanupOrphanedPodDirs(ctx, func(uid string) bool { return known[uid] }); err != nil && ctx.Err() == nil {
			k.log.Warn("orphaned pod directory clean-up", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func images(rt *runtime.Runtime) func(context.Context) ([]*api.ContainerImage, error) {
	return func(ctx context.Context) ([]*api.ContainerImage, error) {
		imgs, err := rt.Images(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]*api.ContainerImage, 0, len(imgs))
		for _, i := range imgs {
			out = append(out, &api.ContainerImage{Names: i.Names, SizeBytes: i.Size})
		}
		return out, nil
	}
}

// retry runs fn until it succeeds or ctx ends, waiting up to 10s between
// tries.
func retry(ctx context.Context, log *slog.Logger, what string, fn func() error) error {
	wait := 250 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return nil
		}
		log.Warn(what, "err", err, "retryIn", wait)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// networkConfig is the pod network's configuration on podCIDR.
func (cfg Config) networkConfig(podCIDR string) cni.Config {
	return cni.Config{
		NetworkName: cfg.NetworkName, Bridge: cfg.Bridge, PodCIDR: podCIDR,
		PluginDirs: []string{cfg.CNIBinDir}, ConfDir: cfg.CNIConfDir,
		DataDir: filepath.Join(cfg.RootDir, "cni", "networks"), NetNSDir: filepath.Join(cfg.RootDir, "netns"),
	}
}
