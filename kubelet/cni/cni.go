// Package cni gives pods their network: a network namespace per pod,
// bind-mounted under the kubelet's run directory, wired by Debian's CNI
// plugins (bridge + host-local IPAM from the node's pod CIDR, portmap,
// loopback) through go-cni, with a conflist the kubelet writes itself.
//
// It must never keep state of its own: the netns path and IP live in the
// runtime's sandbox records, the IP leases in host-local's data directory.
package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"

	gocni "github.com/containerd/go-cni"
)

// Config configures the pod network.
type Config struct {
	// NetworkName names the CNI network (and host-local's lease directory).
	NetworkName string
	// Bridge is the Linux bridge the pods attach to.
	Bridge string
	// PodCIDR is the node's pod subnet, e.g. 10.244.1.0/24.
	PodCIDR string
	// PluginDirs hold the plugin binaries (/usr/lib/cni on Debian).
	PluginDirs []string
	// ConfDir receives the conflist the kubelet writes.
	ConfDir string
	// DataDir is host-local's lease store.
	DataDir string
	// NetNSDir is where pod network namespaces are bind-mounted.
	NetNSDir string
}

// Network sets pod network namespaces up and tears them down.
type Network struct {
	cfg  Config
	cni  gocni.CNI
	conf []byte
}

// PortMapping is a container port published on the node (hostPort).
type PortMapping struct {
	HostPort      int32
	ContainerPort int32
	Protocol      string // tcp or udp
	HostIP        string
}

// New writes the conflist and loads it.
func New(cfg Config) (*Network, error) {
	if _, _, err := net.ParseCIDR(cfg.PodCIDR); err != nil {
		return nil, fmt.Errorf("pod CIDR %q: %w", cfg.PodCIDR, err)
	}
	conf, err := ConfList(cfg)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{cfg.ConfDir, cfg.DataDir, cfg.NetNSDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("cni: %w", err)
		}
	}
	path := filepath.Join(cfg.ConfDir, "10-"+cfg.NetworkName+".conflist")
	if err := os.WriteFile(path, conf, 0o644); err != nil {
		return nil, fmt.Errorf("write CNI config: %w", err)
	}
	l, err := gocni.New(gocni.WithPluginDir(cfg.PluginDirs), gocni.WithInterfacePrefix("eth"), gocni.WithMinNetworkCount(2))
	if err != nil {
		return nil, fmt.Errorf("cni: %w", err)
	}
	// The pod network first, so its interface is eth0; then loopback, or lo
	// stays down.
	if err := l.Load(gocni.WithConfListBytes(conf), gocni.WithLoNetwork); err != nil {
		return nil, fmt.Errorf("load CNI config %s: %w", path, err)
	}
	return &Network{cfg: cfg, cni: l, conf: conf}, nil
}

// ConfList is the conflist for cfg: bridge with host-local IPAM, then
// portmap.
func ConfList(cfg Config) ([]byte, error) {
	ipam := map[string]any{
		"type":    "host-local",
		"ranges":  [][]map[string]string{{{"subnet": cfg.PodCIDR}}},
		"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
		"dataDir": cfg.DataDir,
	}
	list := map[string]any{
		"cniVersion": "1.0.0",
		"name":       cfg.NetworkName,
		"plugins": []map[string]any{
			{"type": "bridge", "bridge": cfg.Bridge, "isGateway": true, "ipMasq": true, "hairpinMode": true, "ipam": ipam},
			{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("CNI config: %w", err)
	}
	return b, nil
}

// NewNetNSPath names a new network namespace under NetNSDir without
// making it, so the caller can record the path before the namespace
// exists: a namespace is then never left without a record to find it by,
// whenever the kubelet stops.
func (n *Network) NewNetNSPath() (string, error) {
	path, err := newNetNSPath(n.cfg.NetNSDir)
	if err != nil {
		return "", fmt.Errorf("name network namespace: %w", err)
	}
	return path, nil
}

// CreateNetNS makes a bind-mounted network namespace at path, a name from
// NewNetNSPath.
func (n *Network) CreateNetNS(path string) error {
	return createNetNS(path)
}

// RemoveNetNS unmounts and removes a network namespace; a missing one is
// fine.
func (n *Network) RemoveNetNS(path string) error {
	if path == "" {
		return nil
	}
	if err := removeNetNS(path); err != nil {
		return fmt.Errorf("remove network namespace %s: %w", path, err)
	}
	return nil
}

// SetUp attaches the namespace to the pod network and returns the pod IP.
func (n *Network) SetUp(ctx context.Context, podUID, nsPath string, ports []PortMapping, labels map[string]string) (net.IP, error) {
	res, err := n.cni.Setup(ctx, podUID, nsPath, n.opts(ports, labels)...)
	if err != nil {
		return nil, fmt.Errorf("CNI ADD: %w", err)
	}
	iface, ok := res.Interfaces["eth0"]
	if !ok || len(iface.IPConfigs) == 0 {
		return nil, fmt.Errorf("CNI ADD: no IP on eth0")
	}
	return iface.IPConfigs[0].IP, nil
}

// TearDown detaches the namespace (CNI DEL): removes the veth, the portmap
// and masquerade rules, and releases the IP lease. It is safe to repeat.
func (n *Network) TearDown(ctx context.Context, podUID, nsPath string, ports []PortMapping, labels map[string]string) error {
	if err := n.cni.Remove(ctx, podUID, nsPath, n.opts(ports, labels)...); err != nil {
		return fmt.Errorf("CNI DEL: %w", err)
	}
	return nil
}

func (n *Network) opts(ports []PortMapping, labels map[string]string) []gocni.NamespaceOpts {
	// IgnoreUnknown lets plugins that do not know the K8S_POD_* args
	// (bridge, host-local) accept them, as containerd's CRI does.
	args := map[string]string{"IgnoreUnknown": "1"}
	for k, v := range labels {
		args[k] = v
	}
	opts := []gocni.NamespaceOpts{gocni.WithLabels(args)}
	if len(ports) > 0 {
		pm := make([]gocni.PortMapping, 0, len(ports))
		for _, p := range ports {
			pm = append(pm, gocni.PortMapping{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: p.Protocol, HostIP: p.HostIP})
		}
		opts = append(opts, gocni.WithCapabilityPortMap(pm))
	}
	return opts
}

// Leases lists the IPs host-local holds for the network, for checks.
func (n *Network) Leases() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(n.cfg.DataDir, n.cfg.NetworkName))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ips []string
	for _, e := range entries {
		if net.ParseIP(e.Name()) != nil {
			ips = append(ips, e.Name())
		}
	}
	return ips, nil
}
