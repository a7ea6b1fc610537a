// Package localcluster runs a whole Skiff cluster on one Linux machine, the
// code behind `make up` and `make down` and the end-to-end suite: the
// control plane (apiserver with embedded etcd, controller-manager,
// scheduler) runs on the host, and each node is a network namespace on a
// host bridge with its own containerd, kubelet and proxy.
//
// Everything it makes is named from Config.Name and recorded in the state
// directory, so Down removes every process, mount, namespace, link and
// iptables chain even after a crash, from the record and from the names.
// It must never touch a process, link, namespace or chain whose name or
// command line does not carry the cluster's name or state directory.
package localcluster

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config describes one local cluster. The zero value of every field but
// Logger has a default (see WithDefaults).
type Config struct {
	// Name prefixes every host object: bridge <name>br0, namespaces
	// <name>-node-<i>, host veths <name>v<i>, iptables chains
	// <NAME>-LOCAL-*. At most 8 characters so link names fit in 15.
	Name string
	// StateDir holds PKI, client configs, logs, pids and per-node data.
	StateDir string
	// BinDir holds apiserver, controller-manager, scheduler, kubelet and
	// proxy.
	BinDir string
	// ImageDir holds docker-archive tarballs every kubelet imports at
	// start (busybox.tar, nginx.tar); empty or missing imports nothing.
	ImageDir string
	// Nodes is the number of nodes.
	Nodes int
	// Subnet is the host bridge's network: the host takes .1, node i
	// takes .(10+i).
	Subnet string
	// ClusterCIDR is the pod network split per node by the
	// controller-manager; ServiceCIDR holds Service cluster IPs and
	// ClusterDNS is the DNS Service IP given to pods.
	ClusterCIDR, ServiceCIDR, ClusterDNS string
	// APIServerPort is the apiserver's gRPC port on the bridge IP.
	APIServerPort int
	// EtcdServers, when set, are the client URLs (http://host:port) of an
	// external etcd cluster the apiserver stores in, instead of its
	// embedded etcd in the state dir. The local cluster neither starts nor
	// stops that cluster.
	EtcdServers []string
	// ContainerdBin, Runc and CNIBinDir locate the node runtime.
	ContainerdBin string
	CNIBinDir     string
	// AdminConfig is where the admin client config is also written for
	// ctl (default ~/.skiff/config); "-" writes only the state dir copy.
	AdminConfig string
	// Wait makes Up wait until the apiserver answers and every node is
	// Ready; without it Up returns once every process runs.
	Wait        bool
	WaitTimeout time.Duration
	Logger      *slog.Logger
}

// Defaults of Config.
const (
	DefaultName          = "skiff"
	DefaultStateDir      = "/var/lib/skiff-local"
	DefaultSubnet        = "10.250.0.0/24"
	DefaultClusterCIDR   = "10.244.0.0/16"
	DefaultServiceCIDR   = "10.96.0.0/12"
	DefaultClusterDNS    = "10.96.0.10"
	DefaultAPIServerPort = 6443
	DefaultNodes         = 2
)

// Components lists the Skiff binaries a local cluster runs from BinDir.
func Components() []string {
	return []string{"apiserver", "controller-manager", "scheduler", "kubelet", "proxy"}
}

// WithDefaults fills every empty field.
func (c Config) WithDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if abs, err := filepath.Abs(c.StateDir); err == nil {
		c.StateDir = abs
	}
	if c.BinDir == "" {
		c.BinDir = "bin"
	}
	if abs, err := filepath.Abs(c.BinDir); err == nil {
		c.BinDir = abs
	}
	if c.ImageDir != "" {
		if abs, err := filepath.Abs(c.ImageDir); err == nil {
			c.ImageDir = abs
		}
	}
	if c.Nodes <= 0 {
		c.Nodes = DefaultNodes
	}
	if c.Subnet == "" {
		c.Subnet = DefaultSubnet
	}
	if c.ClusterCIDR == "" {
		c.ClusterCIDR = DefaultClusterCIDR
	}
	if c.ServiceCIDR == "" {
		c.ServiceCIDR = DefaultServiceCIDR
	}
	if c.ClusterDNS == "" {
		c.ClusterDNS = DefaultClusterDNS
	}
	if c.APIServerPort == 0 {
		c.APIServerPort = DefaultAPIServerPort
	}
	if c.ContainerdBin == "" {
		c.ContainerdBin = "containerd"
	}
	if c.CNIBinDir == "" {
		c.CNIBinDir = "/usr/lib/cni"
	}
	if c.WaitTimeout <= 0 {
		c.WaitTimeout = 3 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate checks names and addresses before anything is made.
func (c Config) Validate() error {
	if len(c.Name) > 8 || strings.ContainsAny(c.Name, "/ .") || c.Name == "" {
		return fmt.Errorf("name %q: 1 to 8 characters, no '/', ' ' or '.'", c.Name)
	}
	_, subnet, err := net.ParseCIDR(c.Subnet)
	if err != nil || subnet.IP.To4() == nil {
		return fmt.Errorf("subnet %q: an IPv4 CIDR is needed", c.Subnet)
	}
	if ones, _ := subnet.Mask.Size(); ones > 24 {
		return fmt.Errorf("subnet %q: at least a /24 is needed", c.Subnet)
	}
	if c.Nodes > 200 {
		return fmt.Errorf("nodes %d: at most 200", c.Nodes)
	}
	for _, cidr := range []string{c.ClusterCIDR, c.ServiceCIDR} {
		if _, _, err := net.ParseCIDR(cidr); err != nil {
			return fmt.Errorf("cidr %q: %w", cidr, err)
		}
	}
	if err := validateEtcdServers(c.EtcdServers); err != nil {
		return err
	}
	if net.ParseIP(c.ClusterDNS) == nil {
		return fmt.Errorf("cluster DNS %q: not an IP", c.ClusterDNS)
	}
	if !filepath.IsAbs(c.StateDir) || c.StateDir == "/" {
		return fmt.Errorf("state dir %q: an absolute directory other than / is needed", c.StateDir)
	}
	// containerd listens on <socket>.ttrpc too; unix socket paths end at
	// 104 bytes.
	if sock := c.containerdSocket(c.Nodes) + ".ttrpc"; len(sock) > 104 {
		return fmt.Errorf("state dir %q: too long for containerd's socket %s (at most 104 bytes)", c.StateDir, sock)
	}
	return nil
}

// Names of the host objects of the cluster.

// Bridge is the host bridge every node's veth joins.
func (c Config) Bridge() string { return c.Name + "br0" }

// NodeName is node i's name (1-based), as registered by its kubelet.
func (c Config) NodeName(i int) string { return fmt.Sprintf("node-%d", i) }

// Netns is node i's network namespace under /run/netns.
func (c Config) Netns(i int) string { return fmt.Sprintf("%s-node-%d", c.Name, i) }

// NetnsPrefix starts every namespace name of the cluster.
func (c Config) NetnsPrefix() string { return c.Name + "-node-" }

// HostVeth is the host end of node i's veth.
func (c Config) HostVeth(i int) string { return fmt.Sprintf("%sv%d", c.Name, i) }

// ChainPrefix starts every host iptables chain the cluster makes.
func (c Config) ChainPrefix() string { return strings.ToUpper(c.Name) + "-LOCAL-" }

// HostIP is the bridge's address, where the apiserver listens.
func (c Config) HostIP() net.IP {
	_, subnet, _ := net.ParseCIDR(c.Subnet)
	return offset(subnet.IP, 1)
}

// NodeIP is node i's InternalIP.
func (c Config) NodeIP(i int) net.IP {
	_, subnet, _ := net.ParseCIDR(c.Subnet)
	return offset(subnet.IP, 10+i)
}

// PrefixLen is the bridge subnet's prefix length.
func (c Config) PrefixLen() int {
	_, subnet, _ := net.ParseCIDR(c.Subnet)
	ones, _ := subnet.Mask.Size()
	return ones
}

// APIServer is the apiserver's address as clients dial it.
func (c Config) APIServer() string {
	return net.JoinHostPort(c.HostIP().String(), fmt.Sprint(c.APIServerPort))
}

func offset(ip net.IP, n int) net.IP {
	v4 := ip.To4()
	out := make(net.IP, 4)
	copy(out, v4)
	v := uint32(out[0])<<24 | uint32(out[1])<<16 | uint32(out[2])<<8 | uint32(out[3])
	v += uint32(n)
	return net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).To4()
}

// Paths inside the state directory.

func (c Config) pkiDir() string       { return filepath.Join(c.StateDir, "pki") }
func (c Config) logDir() string       { return filepath.Join(c.StateDir, "logs") }
func (c Config) stateFile() string    { return filepath.Join(c.StateDir, "state.json") }
func (c Config) configDir() string    { return filepath.Join(c.StateDir, "configs") }
func (c Config) nodeDir(i int) string { return filepath.Join(c.StateDir, "nodes", c.NodeName(i)) }
func (c Config) containerdSocket(i int) string {
	return filepath.Join(c.nodeDir(i), "containerd", "containerd.sock")
}

// AdminConfigCopy is the admin client config kept in the state dir.
func (c Config) AdminConfigCopy() string { return filepath.Join(c.configDir(), "admin.config") }

func (c Config) adminConfigPath() (string, error) {
	if c.AdminConfig == "-" {
		return "", nil
	}
	if c.AdminConfig != "" {
		return c.AdminConfig, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("admin config: no home directory: %w", err)
	}
	return filepath.Join(home, ".skiff", "config"), nil
}
