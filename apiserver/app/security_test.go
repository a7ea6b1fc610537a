package app

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skiff-dev/skiff/apiserver/server"
	"github.com/skiff-dev/skiff/internal/pki"
	"github.com/skiff-dev/skiff/proto/api"
)

// TestKubeletDialerIsPlaintextOnlyWhenInsecure protects the rule that a
// secure apiserver never calls a kubelet without mutual TLS: with no
// client certificate it has no dialer at all.
func TestKubeletDialerIsPlaintextOnlyWhenInsecure(t *testing.T) {
	dir := t.TempDir()
	if err := pki.ControlPlane(dir, []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	secure := Security{TLSCertFile: f("apiserver.crt"), TLSKeyFile: f("apiserver.key"), ClientCAFile: f(pki.CACertFile)}
	withClient := secure
	withClient.KubeletClientCert, withClient.KubeletClientKey = f(pki.FileAPIServerKubeletClient+".crt"), f(pki.FileAPIServerKubeletClient+".key")
	badKey := withClient
	badKey.KubeletClientKey = f("missing.key")
	tests := []struct {
		name    string
		sec     Security
		want    string // "plaintext", "tls", "none", or an error substring
		wantErr bool
	}{
		{"insecure apiserver", Security{Insecure: true}, "plaintext", false},
		{"secure with the kubelet client certificate", withClient, "tls", false},
		{"secure without it: no exec and logs rather than plaintext", secure, "none", false},
		{"unreadable kubelet client key", badKey, "--kubelet-client-key", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.sec.kubeletDialer()
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("kubeletDialer = %v, want an error containing %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := "none"
			if g, ok := d.(server.GRPCKubeletDialer); ok {
				switch {
				case g.Creds != nil && g.Creds.Info().SecurityProtocol == "tls":
					got = "tls"
				case g.Creds == nil && g.Insecure:
					got = "plaintext"
				default:
					got = "unexpected"
				}
			} else if d != nil {
				got = "unexpected"
			}
			if got != tt.want {
				t.Fatalf("dialer %#v is %s, want %s", d, got, tt.want)
			}
		})
	}
	// The dialer itself refuses plaintext it was not told to use.
	node := &api.Node{Metadata: &api.ObjectMeta{Name: "n1"}, Status: &api.NodeStatus{
		Addresses:       []*api.NodeAddress{{Type: "InternalIP", Address: "127.0.0.1"}},
		DaemonEndpoints: &api.NodeDaemonEndpoints{KubeletPort: 10250}}}
	if _, _, err := (server.GRPCKubeletDialer{}).Dial(context.Background(), node); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("zero dialer: %v, want FailedPrecondition", err)
	}
}
