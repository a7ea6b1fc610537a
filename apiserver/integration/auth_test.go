package integration

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/skiff-dev/skiff/apiserver/app"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/clientconfig"
	"github.com/skiff-dev/skiff/internal/pki"
	"github.com/skiff-dev/skiff/internal/testcluster"
	kubeletserver "github.com/skiff-dev/skiff/kubelet/server"
	"github.com/skiff-dev/skiff/kubelet/server/servertest"
	"github.com/skiff-dev/skiff/proto/api"
)

const adminToken = "0123456789abcdef-admin-token"

// secureCluster is an apiserver with TLS, client certificates, a token file
// and an audit log, and the PKI to call it as anyone.
type secureCluster struct {
	*testcluster.Cluster
	pkiDir, auditLog string
}

func startSecure(t *testing.T) *secureCluster {
	t.Helper()
	dir := t.TempDir()
	ips := []net.IP{net.ParseIP("127.0.0.1")}
	if err := pki.ControlPlane(dir, []string{"localhost"}, ips, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, node := range []string{"node-a", "node-b"} {
		if err := pki.Node(dir, node, ips, pki.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pki.IssueClient(dir, "viewer", "vera", []string{"system:viewers"}, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(adminToken+",alice,1,system:masters\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	audit := filepath.Join(dir, "audit.log")
	c := testcluster.Start(t, func(cfg *app.Config) {
		cfg.Security = app.Security{
			TLSCertFile: filepath.Join(dir, "apiserver.crt"), TLSKeyFile: filepath.Join(dir, "apiserver.key"),
			ClientCAFile: filepath.Join(dir, "ca.crt"), TokenAuthFile: tokens, AuditLogPath: audit,
			KubeletClientCert: filepath.Join(dir, pki.FileAPIServerKubeletClient+".crt"),
			KubeletClientKey:  filepath.Join(dir, pki.FileAPIServerKubeletClient+".key"),
		}
	})
	return &secureCluster{Cluster: c, pkiDir: dir, auditLog: audit}
}

// as dials the apiserver as the owner of a certificate (file name in the
// PKI dir) and/or a bearer token.
func (s *secureCluster) as(t *testing.T, certFile, token string) *client.Client {
	t.Helper()
	cur := clientconfig.Context{Name: "t", Servers: []string{s.Addr}, CertificateAuthority: filepath.Join(s.pkiDir, "ca.crt"), Token: token}
	if certFile != "" {
		cur.ClientCertificate = filepath.Join(s.pkiDir, certFile+".crt")
		cur.ClientKey = filepath.Join(s.pkiDir, certFile+".key")
	}
	conn, err := cur.Conn()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return client.New(conn)
}

func TestAuthenticationIsRequired(t *testing.T) {
	s := startSecure(t)
	ctx := ctx(t)
	_, _, err := s.as(t, "", "").Pods().List(ctx, "default", client.ListOptions{})
	wantCode(t, err, codes.Unauthenticated, "")
	_, _, err = s.as(t, "", "not-the-token-at-all").Pods().List(ctx, "default", client.ListOptions{})
	wantCode(t, err, codes.Unauthenticated, "invalid bearer token")
	// Plaintext to the TLS server does not get through at all.
	conn, err := grpc.NewClient(s.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, _, err := client.New(conn).Pods().List(sctx, "default", client.ListOptions{}); err == nil {
		t.Fatal("plaintext request to the TLS apiserver succeeded")
	}
	if _, _, err := s.as(t, "", adminToken).Pods().List(ctx, "default", client.ListOptions{}); err != nil {
		t.Fatalf("admin token: %v", err)
	}
	if _, _, err := s.as(t, "admin", "").Pods().List(ctx, "default", client.ListOptions{}); err != nil {
		t.Fatalf("admin certificate: %v", err)
	}
}

func TestCertificateFromAnotherCAIsRefused(t *testing.T) {
	s := startSecure(t)
	other := t.TempDir()
	if _, _, err := pki.InitCA(other, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.IssueClient(other, "mallory", "admin", []string{"system:masters"}, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	cur := clientconfig.Context{Name: "t", Servers: []string{s.Addr}, CertificateAuthority: filepath.Join(s.pkiDir, "ca.crt"),
		ClientCertificate: filepath.Join(other, "mallory.crt"), ClientKey: filepath.Join(other, "mallory.key")}
	conn, err := cur.Conn()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sctx, cancel := context.WithTimeout(ctx(t), 5*time.Second)
	defer cancel()
	if _, _, err := client.New(conn).Pods().List(sctx, "default", client.ListOptions{}); err == nil {
		t.Fatal("a certificate from another CA was accepted")
	}
}

func TestExpiredCertificateIsRefused(t *testing.T) {
	s := startSecure(t)
	past := func() time.Time { return time.Now().Add(-48 * time.Hour) }
	if _, err := pki.IssueClient(s.pkiDir, "expired", "admin", []string{"system:masters"}, pki.Options{Validity: time.Hour, Now: past}); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx(t), 5*time.Second)
	defer cancel()
	if _, _, err := s.as(t, "expired", "").Pods().List(sctx, "default", client.ListOptions{}); err == nil {
		t.Fatal("an expired certificate was accepted")
	}
}

func TestViewerCanReadButNotWrite(t *testing.T) {
	s := startSecure(t)
	ctx := ctx(t)
	admin := s.as(t, "admin", "")
	if _, err := admin.Pods().Create(ctx, nginxPod("web")); err != nil {
		t.Fatal(err)
	}
	viewer := s.as(t, "viewer", "")
	if _, err := viewer.Pods().Get(ctx, "default", "web"); err != nil {
		t.Fatalf("viewer get: %v", err)
	}
	_, err := viewer.Pods().Create(ctx, nginxPod("mine"))
	wantCode(t, err, codes.PermissionDenied, `User "vera" cannot create pods`)
	_, err = viewer.Pods().Delete(ctx, "default", "web", client.DeleteOptions{})
	wantCode(t, err, codes.PermissionDenied, "cannot delete pods")
	_, err = servertest.PortForward(ctx, viewer.API, "default", "web", 80, "")
	wantCode(t, err, codes.PermissionDenied, "cannot create pods/portforward")
	// A RoleBinding object grants more, as soon as the cache has it.
	rb := &api.RoleBinding{Metadata: &api.ObjectMeta{Name: "vera-edit"}, Subjects: []*api.Subject{{Kind: "User", Name: "vera"}}, RoleRef: &api.RoleRef{Name: "edit"}}
	if _, err := client.For[*api.RoleBinding](admin).Create(ctx, rb); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, err = viewer.Pods().Create(ctx, nginxPod("mine"))
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("after binding edit: %v", err)
	}
}

func TestNodeTouchesOnlyItselfAndItsPods(t *testing.T) {
	s := startSecure(t)
	ctx := ctx(t)
	admin := s.as(t, "admin", "")
	nodeA := s.as(t, pki.KubeletClientFile("node-a"), "")
	for _, n := range []string{"node-a", "node-b"} {
		c := s.as(t, pki.KubeletClientFile(n), "")
		if _, err := c.Nodes().Create(ctx, &api.Node{Metadata: &api.ObjectMeta{Name: n}, Spec: &api.NodeSpec{}}); err != nil {
			t.Fatalf("%s registering itself: %v", n, err)
		}
	}
	nodeB, err := nodeA.Nodes().Get(ctx, "", "node-b")
	if err != nil {
		t.Fatalf("node-a reading node-b: %v", err)
	}
	nodeB.Spec.Unschedulable = true
	_, err = nodeA.Nodes().Update(ctx, nodeB)
	wantCode(t, err, codes.PermissionDenied, "may only modify its own Node")
	for _, n := range []string{"node-a", "node-b"} {
		name := fmt.Sprintf("on-%s", n)
		if _, err := admin.Pods().Create(ctx, nginxPod(name)); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Bind(ctx, "default", name, "", n); err != nil {
			t.Fatal(err)
		}
	}
	// Node restriction reads the pod's binding from the watch cache.
	own, err := nodeA.Pods().Get(ctx, "default", "on-node-a")
	if err != nil {
		t.Fatal(err)
	}
	own.Status.Phase = "Running"
	if _, err := nodeA.Pods().UpdateStatus(ctx, own); err != nil {
		t.Fatalf("node-a updating its own pod: %v", err)
	}
	other, err := nodeA.Pods().Get(ctx, "default", "on-node-b")
	if err != nil {
		t.Fatal(err)
	}
	other.Status.Phase = "Failed"
	_, err = nodeA.Pods().UpdateStatus(ctx, other)
	wantCode(t, err, codes.PermissionDenied, "may only modify pods bound to it")
	_, err = nodeA.Pods().Delete(ctx, "default", "on-node-b", client.DeleteOptions{})
	wantCode(t, err, codes.PermissionDenied, "may only modify pods bound to it")
	_, err = nodeA.Pods().Create(ctx, nginxPod("sneaky"))
	wantCode(t, err, codes.PermissionDenied, "cannot create pods")
	lease := &api.Lease{Metadata: &api.ObjectMeta{Name: "node-b", Namespace: "skiff-system"}, Spec: &api.LeaseSpec{HolderIdentity: "node-b"}}
	_, err = nodeA.Leases().Create(ctx, lease)
	wantCode(t, err, codes.PermissionDenied, "may only modify its own Lease")

	// Every mutating request is in the audit log, allowed or not.
	data, err := os.ReadFile(s.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	log := string(data)
	for _, want := range []string{`"user":"system:node:node-a"`, `"verb":"update"`, `"code":"PermissionDenied"`, `"code":"OK"`, `"name":"on-node-b"`} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %s:\n%s", want, log)
		}
	}
}

func TestRateLimitAnswersResourceExhausted(t *testing.T) {
	c := testcluster.Start(t, func(cfg *app.Config) {
		dir := t.TempDir()
		if err := pki.ControlPlane(dir, []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, pki.Options{}); err != nil {
			t.Fatal(err)
		}
		tokens := filepath.Join(dir, "tokens.csv")
		if err := os.WriteFile(tokens, []byte(adminToken+",alice,1,system:masters\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.Security = app.Security{
			TLSCertFile: filepath.Join(dir, "apiserver.crt"), TLSKeyFile: filepath.Join(dir, "apiserver.key"),
			ClientCAFile: filepath.Join(dir, "ca.crt"), TokenAuthFile: tokens,
			RequestsPerUserQPS: 1, RequestsPerUserBurst: 3,
		}
		t.Setenv("SKIFF_TEST_CA", filepath.Join(dir, "ca.crt"))
	})
	cur := clientconfig.Context{Name: "t", Servers: []string{c.Addr}, CertificateAuthority: os.Getenv("SKIFF_TEST_CA"), Token: adminToken}
	conn, err := cur.Conn()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	alice := client.New(conn)
	var limited error
	for i := 0; i < 10 && limited == nil; i++ {
		_, _, err := alice.Pods().List(ctx(t), "default", client.ListOptions{})
		if err != nil {
			limited = err
		}
	}
	wantCode(t, limited, codes.ResourceExhausted, `too many requests from user "alice"`)
}

// startKubelet serves node's exec/logs on loopback with the kubelet's real
// server over a fake runtime, presenting the serving certificate
// <pkiDir>/<serving>.crt and admitting only the apiserver, and registers
// the node (as the node) at that address.
func (s *secureCluster) startKubelet(t *testing.T, node, pkiDir, serving string) *servertest.Runtime {
	t.Helper()
	tc, err := pki.ServerTLS(filepath.Join(pkiDir, serving+".crt"), filepath.Join(pkiDir, serving+".key"),
		filepath.Join(s.pkiDir, pki.CACertFile), tls.RequireAndVerifyClientCert)
	if err != nil {
		t.Fatal(err)
	}
	rt := servertest.NewRuntime(t)
	addr := servertest.Serve(t, rt, kubeletserver.Security{TLS: tc, AuthorizedUsers: []string{pki.UserAPIServer}})
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	kubeletPort, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctx(t)
	nc := s.as(t, pki.KubeletClientFile(node), "")
	n, err := nc.Nodes().Create(ctx, &api.Node{Metadata: &api.ObjectMeta{Name: node}, Spec: &api.NodeSpec{}})
	if err != nil {
		t.Fatal(err)
	}
	n.Status = &api.NodeStatus{Addresses: []*api.NodeAddress{{Type: "InternalIP", Address: "127.0.0.1"}},
		DaemonEndpoints: &api.NodeDaemonEndpoints{KubeletPort: int32(kubeletPort)}}
	if _, err := nc.Nodes().UpdateStatus(ctx, n); err != nil {
		t.Fatal(err)
	}
	return rt
}

func TestExecLogsAndPortForwardRelayToKubeletsOverMutualTLS(t *testing.T) {
	s := startSecure(t)
	ctx := ctx(t)
	admin := s.as(t, "admin", "")
	// node-a is a real kubelet of the cluster; node-b's "kubelet" presents
	// a serving certificate of another CA, as an impostor on its address
	// would.
	impostorCA := t.TempDir()
	if _, _, err := pki.InitCA(impostorCA, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.IssueServing(impostorCA, "node-b", []string{"node-b"}, []net.IP{net.ParseIP("127.0.0.1")}, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	// node-c's serving certificate is the cluster CA's, but for another
	// address than its InternalIP.
	if err := pki.Node(s.pkiDir, "node-c", []net.IP{net.ParseIP("10.9.9.9")}, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	kubelets := map[string]*servertest.Runtime{
		"node-a": s.startKubelet(t, "node-a", s.pkiDir, pki.KubeletServingFile("node-a")),
		"node-b": s.startKubelet(t, "node-b", impostorCA, "node-b"),
		"node-c": s.startKubelet(t, "node-c", s.pkiDir, pki.KubeletServingFile("node-c")),
	}
	for node, rt := range kubelets {
		pod := "web-" + node
		if err := rt.AddContainer("default", pod, "nginx", "hello from "+node+"\n"); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Pods().Create(ctx, nginxPod(pod)); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Bind(ctx, "default", pod, "", node); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("the apiserver relays to a kubelet of the cluster with its client certificate", func(t *testing.T) {
		out, code, err := servertest.Exec(ctx, admin.API, "default", "web-node-a", "nginx", "echo", "hi")
		if err != nil || out != "echo hi\n" || code != 0 {
			t.Fatalf("exec: out %q code %d err %v", out, code, err)
		}
		log, err := servertest.Logs(ctx, admin.API, "default", "web-node-a", "nginx")
		if err != nil || log != "hello from node-a\n" {
			t.Fatalf("logs: %q %v", log, err)
		}
		fwd, err := servertest.PortForward(ctx, admin.API, "default", "web-node-a", servertest.UpperEcho(t), "through the apiserver")
		if err != nil || fwd != "THROUGH THE APISERVER" {
			t.Fatalf("port-forward: %q %v", fwd, err)
		}
		_, err = servertest.PortForward(ctx, admin.API, "default", "web-node-a", 0, "")
		wantCode(t, err, codes.InvalidArgument, "start.port")
	})
	t.Run("the apiserver refuses a kubelet whose serving certificate the cluster CA did not sign", func(t *testing.T) {
		_, _, err := servertest.Exec(ctx, admin.API, "default", "web-node-b", "nginx", "echo", "hi")
		wantCode(t, err, codes.Unavailable, "certificate signed by unknown authority")
		_, err = servertest.Logs(ctx, admin.API, "default", "web-node-b", "nginx")
		wantCode(t, err, codes.Unavailable, "certificate signed by unknown authority")
		if n := kubelets["node-b"].Execs(); n != 0 {
			t.Fatalf("the impostor kubelet got %d exec requests", n)
		}
	})
	t.Run("the apiserver refuses a kubelet whose serving certificate does not name its InternalIP", func(t *testing.T) {
		_, _, err := servertest.Exec(ctx, admin.API, "default", "web-node-c", "nginx", "echo", "hi")
		wantCode(t, err, codes.Unavailable, "not 127.0.0.1")
		if n := kubelets["node-c"].Execs(); n != 0 {
			t.Fatalf("the kubelet got %d exec requests", n)
		}
	})
	t.Run("a node calling another node's kubelet directly is denied", func(t *testing.T) {
		// Node objects are readable by every node: what stops node-b is
		// the kubelet's authorization, not the address being secret.
		nodeA, err := admin.Nodes().Get(ctx, "", "node-a")
		if err != nil {
			t.Fatal(err)
		}
		addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(nodeA.GetStatus().GetDaemonEndpoints().GetKubeletPort()))
		cur := clientconfig.Context{Name: "t", Servers: []string{addr}, CertificateAuthority: filepath.Join(s.pkiDir, pki.CACertFile),
			ClientCertificate: filepath.Join(s.pkiDir, pki.KubeletClientFile("node-b")+".crt"), ClientKey: filepath.Join(s.pkiDir, pki.KubeletClientFile("node-b")+".key")}
		conn, err := cur.Conn()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		_, _, err = servertest.Exec(ctx, api.NewKubeletClient(conn), "default", "web-node-a", "nginx", "echo", "hi")
		wantCode(t, err, codes.PermissionDenied, "system:node:node-b")
	})
}
