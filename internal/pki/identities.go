package pki

import (
	"fmt"
	"net"
	"path/filepath"
)

// Well-known users and groups carried by the certificates this package
// issues (CN = user, O = groups). The apiserver's authorizer binds roles to
// these names; they follow Kubernetes' system: names.
const (
	UserAdmin             = "admin"
	UserAPIServer         = "system:apiserver"
	UserControllerManager = "system:controller-manager"
	UserScheduler         = "system:scheduler"
	UserProxy             = "system:proxy"
	// UserAPIServerEtcdClient is the apiserver towards etcd (kubeadm's
	// kube-apiserver-etcd-client).
	UserAPIServerEtcdClient = "system:apiserver-etcd-client"

	GroupMasters = "system:masters"
	GroupNodes   = "system:nodes"
)

// File names (without .crt/.key) of the standard certificates.
const (
	FileAPIServer              = "apiserver"
	FileAPIServerKubeletClient = "apiserver-kubelet-client"
	FileAdmin                  = "admin"
	FileControllerManager      = "controller-manager"
	FileScheduler              = "scheduler"
	FileProxy                  = "proxy"
	// FileAPIServerEtcdClient lives in EtcdDir, signed by the etcd CA.
	FileAPIServerEtcdClient = "apiserver-etcd-client"
)

// EtcdDir is the subdirectory of a PKI directory that holds the etcd CA
// (its own ca.crt and ca.key) and the certificates it signs: each member's
// etcd-<node> serving and peer certificate and the apiserver's client
// certificate. etcd trusts only this CA, as kubeadm's etcd-ca: etcd does
// no authorization of its own, so a certificate of the cluster CA (any
// kubelet's, the admin's) that etcd accepted would read and write every
// object past the apiserver's authorization and node restriction.
const EtcdDir = "etcd"

// EtcdMemberFile is the file name, in EtcdDir, of node's etcd member
// certificate: serving on the client port and both ways between peers.
func EtcdMemberFile(node string) string { return "etcd-" + node }

// NodeUser is the user name of a node's kubelet: "system:node:<node>".
func NodeUser(node string) string { return "system:node:" + node }

// KubeletClientFile is the file name of node's kubelet client certificate.
func KubeletClientFile(node string) string { return "kubelet-" + node }

// KubeletServingFile is the file name of node's kubelet serving certificate.
func KubeletServingFile(node string) string { return "kubelet-" + node + "-serving" }

// ControlPlane issues everything a control plane needs, in dir, making the
// CA first if there is none: the apiserver's serving certificate for
// dnsNames and ips, its client certificate towards kubelets, and the admin,
// controller-manager, scheduler and proxy client certificates; and in
// dir/EtcdDir the etcd CA (made if missing) and the apiserver's client
// certificate towards etcd. It is idempotent like every function here.
func ControlPlane(dir string, dnsNames []string, ips []net.IP, opts Options) error {
	if _, _, err := InitCA(dir, opts); err != nil {
		return err
	}
	if _, err := IssueServing(dir, FileAPIServer, dnsNames, ips, opts); err != nil {
		return err
	}
	clients := []struct {
		file, user string
		groups     []string
	}{
		{FileAPIServerKubeletClient, UserAPIServer, []string{GroupMasters}},
		{FileAdmin, UserAdmin, []string{GroupMasters}},
		{FileControllerManager, UserControllerManager, nil},
		{FileScheduler, UserScheduler, nil},
		{FileProxy, UserProxy, nil},
	}
	for _, c := range clients {
		if _, err := IssueClient(dir, c.file, c.user, c.groups, opts); err != nil {
			return fmt.Errorf("control plane certificates: %w", err)
		}
	}
	etcdDir := filepath.Join(dir, EtcdDir)
	if _, _, err := InitCA(etcdDir, etcdCAOptions(opts)); err != nil {
		return fmt.Errorf("etcd CA: %w", err)
	}
	if _, err := IssueClient(etcdDir, FileAPIServerEtcdClient, UserAPIServerEtcdClient, nil, opts); err != nil {
		return fmt.Errorf("control plane certificates: %w", err)
	}
	return nil
}

// etcdCAOptions names the etcd CA apart from the cluster CA, so an
// operator reading a certificate sees which of the two signed it.
func etcdCAOptions(opts Options) Options {
	if opts.CACommonName == "" {
		opts.CACommonName = "skiff-etcd-ca"
	} else {
		opts.CACommonName += "-etcd"
	}
	return opts
}

// Node issues node's kubelet client certificate (system:node:<node> in
// system:nodes) and its serving certificate for the node name and ips. ips
// must hold the node's InternalIP: the apiserver dials the kubelet there
// for exec and logs and verifies the certificate against that address.
func Node(dir, node string, ips []net.IP, opts Options) error {
	if node == "" {
		return fmt.Errorf("node certificates: empty node name")
	}
	if len(ips) == 0 {
		return fmt.Errorf("node %s certificates: the node's InternalIP is required (the apiserver verifies the kubelet's serving certificate against it)", node)
	}
	if _, err := IssueClient(dir, KubeletClientFile(node), NodeUser(node), []string{GroupNodes}, opts); err != nil {
		return err
	}
	if _, err := IssueServing(dir, KubeletServingFile(node), []string{node}, ips, opts); err != nil {
		return err
	}
	return nil
}
