package app

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"google.golang.org/grpc/credentials"

	"github.com/skiff-dev/skiff/apiserver/auth"
	"github.com/skiff-dev/skiff/apiserver/server"
	"github.com/skiff-dev/skiff/apiserver/storage"
	"github.com/skiff-dev/skiff/apiserver/watchcache"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/internal/pki"
	"github.com/skiff-dev/skiff/proto/api"
)

// Security is how the apiserver authenticates, authorizes and audits.
type Security struct {
	TLSCertFile, TLSKeyFile string
	// ClientCAFile verifies client certificates (and kubelets' serving
	// certificates).
	ClientCAFile  string
	TokenAuthFile string
	AuditLogPath  string
	// KubeletClientCert/Key is the apiserver's identity towards kubelets.
	KubeletClientCert, KubeletClientKey string
	// RequestsPerUserQPS and Burst rate-limit each user; 0 disables.
	RequestsPerUserQPS   float64
	RequestsPerUserBurst int
	// Insecure serves plaintext with no authentication or authorization.
	// For tests and throwaway experiments only; never the default.
	Insecure bool
}

// readPool reads a CA bundle.
func readPool(path string) (*x509.CertPool, error) { return pki.ReadPool(path) }

// validate checks the flags before anything starts.
func (s Security) validate() error {
	if s.Insecure {
		return nil
	}
	if s.TLSCertFile == "" || s.TLSKeyFile == "" || s.ClientCAFile == "" {
		return fmt.Errorf("--tls-cert-file, --tls-private-key-file and --client-ca-file are required (or --insecure for a throwaway test server)")
	}
	if (s.KubeletClientCert == "") != (s.KubeletClientKey == "") {
		return fmt.Errorf("--kubelet-client-certificate and --kubelet-client-key go together")
	}
	return nil
}

// serverCreds is the TLS the API serves: client certificates are verified
// against the cluster CA when given; bearer tokens cover the rest.
func (s Security) serverCreds() (credentials.TransportCredentials, error) {
	tc, err := pki.ServerTLS(s.TLSCertFile, s.TLSKeyFile, s.ClientCAFile, tls.VerifyClientCertIfGiven)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert-file/--tls-private-key-file/--client-ca-file: %w", err)
	}
	return credentials.NewTLS(tc), nil
}

// kubeletDialer reaches kubelets with the apiserver's client certificate,
// verifying their serving certificates against the cluster CA for the
// node's InternalIP. Only an --insecure apiserver dials kubelets in
// plaintext (they then run with --insecure too); a secure one without
// --kubelet-client-certificate has no dialer, and exec and logs say so.
func (s Security) kubeletDialer() (server.KubeletDialer, error) {
	if s.Insecure {
		return server.GRPCKubeletDialer{Insecure: true}, nil
	}
	if s.KubeletClientCert == "" {
		return nil, nil
	}
	tc, err := pki.ClientTLS(s.ClientCAFile, s.KubeletClientCert, s.KubeletClientKey)
	if err != nil {
		return nil, fmt.Errorf("--client-ca-file/--kubelet-client-certificate/--kubelet-client-key: %w", err)
	}
	return server.GRPCKubeletDialer{Creds: credentials.NewTLS(tc)}, nil
}

// gate builds the authentication, authorization and audit interceptors.
func (s Security) gate(store *storage.Store, caches map[string]*watchcache.Cache, log *slog.Logger) (*auth.Gate, func(), error) {
	authn, err := auth.NewAuthenticator(s.TokenAuthFile)
	if err != nil {
		return nil, nil, err
	}
	bindings := func() []*api.RoleBinding {
		objs := caches["rolebindings"].Snapshot()
		out := make([]*api.RoleBinding, len(objs))
		for i, o := range objs {
			out[i] = o.(*api.RoleBinding)
		}
		return out
	}
	lookup := func(resource, namespace, name string) (kinds.Object, bool) {
		c, ok := caches[resource]
		if !ok {
			return nil, false
		}
		return c.Peek(store.Key(resource, namespace, name))
	}
	g := &auth.Gate{Authn: authn, Authz: auth.NewAuthorizer(bindings, lookup), QPS: s.RequestsPerUserQPS, Burst: s.RequestsPerUserBurst}
	closeAudit := func() {}
	if s.AuditLogPath != "" {
		f, err := os.OpenFile(s.AuditLogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("--audit-log-path: %w", err)
		}
		g.Audit = slog.New(slog.NewJSONHandler(f, nil))
		closeAudit = func() { f.Close() }
	}
	log.Info("authentication and authorization enabled", "tokens", s.TokenAuthFile != "", "audit", s.AuditLogPath)
	return g, closeAudit, nil
}
