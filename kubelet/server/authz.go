package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Security says who may call the server. In Kubernetes the kubelet asks
// the apiserver (SubjectAccessReview) whether a caller may use exec and
// logs; Skiff's kubelet has one legitimate caller, the apiserver relaying
// `ctl exec` and `ctl logs` after its own authorization of pods/exec and
// pods/log, so it admits the users named in AuthorizedUsers and nobody
// else: not the admin, not another node.
type Security struct {
	// TLS presents the node's serving certificate and must require and
	// verify client certificates (tls.RequireAndVerifyClientCert): a
	// caller without one, or with one from another CA or expired, is
	// refused at the handshake.
	TLS *tls.Config
	// AuthorizedUsers are the users (client certificate CN) allowed to
	// call; any other verified caller gets PermissionDenied.
	AuthorizedUsers []string
	// Insecure serves plaintext to anyone. For tests against an
	// --insecure apiserver only; never the default.
	Insecure bool
}

// Validate checks the settings before anything starts.
func (sec Security) Validate() error {
	if sec.Insecure {
		if sec.TLS != nil {
			return errors.New("kubelet server: TLS and insecure are mutually exclusive")
		}
		return nil
	}
	if sec.TLS == nil {
		return errors.New("kubelet server: TLS is required (insecure only for tests)")
	}
	if sec.TLS.ClientAuth != tls.RequireAndVerifyClientCert || sec.TLS.ClientCAs == nil {
		return errors.New("kubelet server: TLS must require and verify client certificates against a CA")
	}
	if len(sec.AuthorizedUsers) == 0 || slices.Contains(sec.AuthorizedUsers, "") {
		return fmt.Errorf("kubelet server: authorized users %q: at least one, none empty", sec.AuthorizedUsers)
	}
	return nil
}

// serverOptions turns the settings into the gRPC server's transport
// credentials and authorization interceptors.
func (sec Security) serverOptions(log *slog.Logger) ([]grpc.ServerOption, error) {
	if err := sec.Validate(); err != nil {
		return nil, err
	}
	if sec.Insecure {
		log.Warn("serving exec and logs in plaintext to any caller (--insecure)")
		return nil, nil
	}
	az, err := NewAuthorizer(sec.AuthorizedUsers, log)
	if err != nil {
		return nil, err
	}
	return []grpc.ServerOption{
		grpc.Creds(credentials.NewTLS(sec.TLS)),
		grpc.ChainUnaryInterceptor(az.Unary),
		grpc.ChainStreamInterceptor(az.Stream),
	}, nil
}

// Authorizer admits only callers whose verified client certificate names
// an authorized user. It is the server's only access check: handlers
// never look at the caller.
type Authorizer struct {
	users []string
	log   *slog.Logger
}

// NewAuthorizer admits the given users (client certificate CNs).
func NewAuthorizer(users []string, log *slog.Logger) (*Authorizer, error) {
	if len(users) == 0 || slices.Contains(users, "") {
		return nil, fmt.Errorf("kubelet server: authorized users %q: at least one, none empty", users)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Authorizer{users: slices.Clone(users), log: log}, nil
}

// Unary is the unary interceptor.
func (a *Authorizer) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := a.authorize(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// Stream is the stream interceptor (exec and logs are streams).
func (a *Authorizer) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := a.authorize(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}

func (a *Authorizer) authorize(ctx context.Context, method string) error {
	user, ok := verifiedUser(ctx)
	if !ok {
		// The TLS configuration refuses such callers at the handshake;
		// this guards a server wired without it.
		return status.Error(codes.Unauthenticated, "the kubelet requires a client certificate signed by the cluster CA")
	}
	if !slices.Contains(a.users, user) {
		a.log.Warn("denied a caller that is not the apiserver", "user", user, "method", method)
		return status.Errorf(codes.PermissionDenied, "user %q may not call the kubelet's %s: only %s may", user, method, strings.Join(a.users, ", "))
	}
	return nil
}

// verifiedUser is the CN of the caller's client certificate, if the TLS
// handshake verified one against the client CA.
func verifiedUser(ctx context.Context) (string, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", false
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return "", false
	}
	return info.State.VerifiedChains[0][0].Subject.CommonName, true
}
