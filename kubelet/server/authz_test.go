package server_test

import (
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/skiff-dev/skiff/internal/pki"
	"github.com/skiff-dev/skiff/kubelet/server"
	"github.com/skiff-dev/skiff/kubelet/server/servertest"
	"github.com/skiff-dev/skiff/proto/api"
)

// cluster is a PKI with the control plane's and node-a's certificates, a
// client certificate from another CA, and an expired one.
type cluster struct {
	dir, otherCA string
}

func newCluster(t *testing.T) cluster {
	t.Helper()
	dir, other := t.TempDir(), t.TempDir()
	loopback := []net.IP{net.ParseIP("127.0.0.1")}
	if err := pki.ControlPlane(dir, []string{"localhost"}, loopback, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, node := range []string{"node-a", "node-b"} {
		if err := pki.Node(dir, node, loopback, pki.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	past := func() time.Time { return time.Now().Add(-48 * time.Hour) }
	if _, err := pki.IssueClient(dir, "expired-apiserver", pki.UserAPIServer, []string{pki.GroupMasters}, pki.Options{Validity: time.Hour, Now: past}); err != nil {
		t.Fatal(err)
	}
	// Another CA's certificate for the very same identity.
	if _, _, err := pki.InitCA(other, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.IssueClient(other, pki.FileAPIServerKubeletClient, pki.UserAPIServer, []string{pki.GroupMasters}, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	return cluster{dir: dir, otherCA: other}
}

func (c cluster) file(name string) string { return filepath.Join(c.dir, name) }

// kubeletSecurity is node-a's exec/logs server security, as the kubelet's
// flags make it.
func (c cluster) kubeletSecurity(t *testing.T) server.Security {
	t.Helper()
	serving := pki.KubeletServingFile("node-a")
	tc, err := pki.ServerTLS(c.file(serving+".crt"), c.file(serving+".key"), c.file(pki.CACertFile), tls.RequireAndVerifyClientCert)
	if err != nil {
		t.Fatal(err)
	}
	return server.Security{TLS: tc, AuthorizedUsers: []string{pki.UserAPIServer}}
}

// dial connects to addr verifying the kubelet's serving certificate for
// 127.0.0.1, presenting dir/name.crt when name is set.
func dial(t *testing.T, addr, caDir, dir, name string) api.KubeletClient {
	t.Helper()
	certFile, keyFile := "", ""
	if name != "" {
		certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	}
	tc, err := pki.ClientTLS(filepath.Join(caDir, pki.CACertFile), certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return dialCreds(t, addr, credentials.NewTLS(tc))
}

func dialCreds(t *testing.T, addr string, creds credentials.TransportCredentials) api.KubeletClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return api.NewKubeletClient(conn)
}

func TestStreamsServeOnlyTheAPIServer(t *testing.T) {
	c := newCluster(t)
	rt := servertest.NewRuntime(t)
	if err := rt.AddContainer("default", "web", "nginx", "started\nserving\n"); err != nil {
		t.Fatal(err)
	}
	addr := servertest.Serve(t, rt, c.kubeletSecurity(t))
	echo := servertest.UpperEcho(t)

	tests := []struct {
		name   string
		client func(t *testing.T) api.KubeletClient
		// want is the code of every call; codes.OK serves them.
		want codes.Code
		// handshake says the TLS handshake refuses the caller, so
		// no request reaches the server at all.
		handshake bool
	}{
		{
			name: "the apiserver's kubelet client certificate is served",
			client: func(t *testing.T) api.KubeletClient {
				return dial(t, addr, c.dir, c.dir, pki.FileAPIServerKubeletClient)
			},
			want: codes.OK,
		},
		{
			name:      "no client certificate is refused at the handshake",
			client:    func(t *testing.T) api.KubeletClient { return dial(t, addr, c.dir, c.dir, "") },
			handshake: true,
		},
		{
			name: "the apiserver's identity from another CA is refused at the handshake",
			client: func(t *testing.T) api.KubeletClient {
				// Trusts the real kubelet, presents the other CA's certificate.
				return dial(t, addr, c.dir, c.otherCA, pki.FileAPIServerKubeletClient)
			},
			handshake: true,
		},
		{
			name:      "an expired apiserver certificate is refused at the handshake",
			client:    func(t *testing.T) api.KubeletClient { return dial(t, addr, c.dir, c.dir, "expired-apiserver") },
			handshake: true,
		},
		{
			name:      "plaintext is refused",
			client:    func(t *testing.T) api.KubeletClient { return dialCreds(t, addr, insecure.NewCredentials()) },
			handshake: true,
		},
		{
			name: "another node's valid certificate is denied",
			client: func(t *testing.T) api.KubeletClient {
				return dial(t, addr, c.dir, c.dir, pki.KubeletClientFile("node-b"))
			},
			want: codes.PermissionDenied,
		},
		{
			name: "the node's own certificate is denied",
			client: func(t *testing.T) api.KubeletClient {
				return dial(t, addr, c.dir, c.dir, pki.KubeletClientFile("node-a"))
			},
			want: codes.PermissionDenied,
		},
		{
			// system:masters like the apiserver, but not the apiserver.
			name:   "the admin's valid certificate is denied",
			client: func(t *testing.T) api.KubeletClient { return dial(t, addr, c.dir, c.dir, pki.FileAdmin) },
			want:   codes.PermissionDenied,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			k := tt.client(t)
			execsBefore := rt.Execs()
			out, code, execErr := servertest.Exec(ctx, k, "default", "web", "nginx", "echo", "hi")
			log, logsErr := servertest.Logs(ctx, k, "default", "web", "nginx")
			fwd, fwdErr := servertest.PortForward(ctx, k, "default", "web", echo, "ping")
			if tt.want == codes.OK && !tt.handshake {
				if execErr != nil || out != "echo hi\n" || code != 0 {
					t.Errorf("exec: out %q code %d err %v, want \"echo hi\\n\" 0", out, code, execErr)
				}
				if logsErr != nil || log != "started\nserving\n" {
					t.Errorf("logs: %q %v", log, logsErr)
				}
				if fwdErr != nil || fwd != "PING" {
					t.Errorf("port-forward: %q %v, want PING", fwd, fwdErr)
				}
				return
			}
			if rt.Execs() != execsBefore {
				t.Errorf("a refused caller ran a command in the container")
			}
			if out != "" || log != "" || fwd != "" {
				t.Errorf("a refused caller got output: exec %q logs %q port-forward %q", out, log, fwd)
			}
			for call, err := range map[string]error{"exec": execErr, "logs": logsErr, "port-forward": fwdErr} {
				got := status.Code(err)
				switch {
				case tt.handshake && (got == codes.OK || got == codes.PermissionDenied):
					t.Errorf("%s: %v, want the connection refused", call, err)
				case tt.handshake && got != codes.Unavailable:
					t.Errorf("%s: code %v (%v), want Unavailable", call, got, err)
				case !tt.handshake && got != tt.want:
					t.Errorf("%s: code %v (%v), want %v", call, got, err, tt.want)
				}
			}
		})
	}
}

func TestDeniedCallerIsToldWhoMayCall(t *testing.T) {
	c := newCluster(t)
	rt := servertest.NewRuntime(t)
	if err := rt.AddContainer("default", "web", "nginx", ""); err != nil {
		t.Fatal(err)
	}
	addr := servertest.Serve(t, rt, c.kubeletSecurity(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := servertest.Logs(ctx, dial(t, addr, c.dir, c.dir, pki.FileAdmin), "default", "web", "nginx")
	if msg := status.Convert(err).Message(); !strings.Contains(msg, `"admin"`) || !strings.Contains(msg, pki.UserAPIServer) {
		t.Fatalf("denial %q should name the caller and who may call", msg)
	}
}

func TestSecurityRefusesUnsafeSettings(t *testing.T) {
	c := newCluster(t)
	good := c.kubeletSecurity(t)
	optional := good.TLS.Clone()
	optional.ClientAuth = tls.VerifyClientCertIfGiven
	noCA := good.TLS.Clone()
	noCA.ClientCAs = nil
	tests := []struct {
		name string
		sec  server.Security
		want string // empty: valid
	}{
		{"mutual TLS for the apiserver", good, ""},
		{"insecure alone (tests)", server.Security{Insecure: true}, ""},
		{"nothing at all", server.Security{}, "TLS is required"},
		{"insecure and TLS", server.Security{Insecure: true, TLS: good.TLS, AuthorizedUsers: good.AuthorizedUsers}, "mutually exclusive"},
		{"client certificates optional", server.Security{TLS: optional, AuthorizedUsers: good.AuthorizedUsers}, "require and verify"},
		{"no client CA", server.Security{TLS: noCA, AuthorizedUsers: good.AuthorizedUsers}, "require and verify"},
		{"nobody authorized", server.Security{TLS: good.TLS}, "authorized users"},
		{"an empty user", server.Security{TLS: good.TLS, AuthorizedUsers: []string{""}}, "authorized users"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.sec.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// A server wired without TLS must still not hand exec to a caller without
// a verified certificate: the interceptor checks on its own.
func TestAuthorizerWithoutVerifiedCertificateIsUnauthenticated(t *testing.T) {
	az, err := server.NewAuthorizer([]string{pki.UserAPIServer}, nil)
	if err != nil {
		t.Fatal(err)
	}
	called := false
	_, err = az.Unary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/skiff.api.Kubelet/Any"},
		func(context.Context, any) (any, error) { called = true; return nil, nil })
	if status.Code(err) != codes.Unauthenticated || called {
		t.Fatalf("Unary without a peer: %v, handler called %v", err, called)
	}
}
