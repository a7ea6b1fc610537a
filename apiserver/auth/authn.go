// Package auth is the apiserver's front door: who is calling
// (authentication by client certificate or bearer token), may they do this
// (authorization by built-in roles bound to users and groups, with node
// restriction), and the audit log and per-user rate limits.
//
// It must never let a request through on an error: every failure denies.
package auth

import (
	"context"
	"crypto/subtle"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// User is an authenticated caller.
type User struct {
	Name   string
	Groups []string
}

// InGroup reports membership of group.
func (u User) InGroup(group string) bool {
	for _, g := range u.Groups {
		if g == group {
			return true
		}
	}
	return false
}

type userKey struct{}

// WithUser returns ctx carrying u.
func WithUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the caller set by the authentication interceptor.
func UserFrom(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(userKey{}).(User)
	return u, ok
}

type tokenEntry struct {
	token []byte
	user  User
}

// Authenticator identifies callers by verified client certificate (CN =
// user, O = groups) or by a bearer token from a static token file.
type Authenticator struct {
	tokens []tokenEntry
}

// NewAuthenticator reads the token file, if any: CSV lines of
// token,user,uid[,"group1,group2"] as Kubernetes' --token-auth-file.
func NewAuthenticator(tokenFile string) (*Authenticator, error) {
	a := &Authenticator{}
	if tokenFile == "" {
		return a, nil
	}
	f, err := os.Open(tokenFile)
	if err != nil {
		return nil, fmt.Errorf("--token-auth-file: %w", err)
	}
	defer f.Close()
	tokens, err := parseTokens(f)
	if err != nil {
		return nil, fmt.Errorf("--token-auth-file %s: %w", tokenFile, err)
	}
	a.tokens = tokens
	return a, nil
}

func parseTokens(r io.Reader) ([]tokenEntry, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	records, err := cr.ReadAll()
	if err != nil {
		return nil, err
	}
	var out []tokenEntry
	for i, rec := range records {
		if len(rec) < 3 {
			return nil, fmt.Errorf("line %d: want token,user,uid[,groups], got %d fields", i+1, len(rec))
		}
		if len(rec[0]) < 16 {
			return nil, fmt.Errorf("line %d: token is shorter than 16 characters", i+1)
		}
		if rec[1] == "" {
			return nil, fmt.Errorf("line %d: user is empty", i+1)
		}
		u := User{Name: rec[1]}
		if len(rec) > 3 && rec[3] != "" {
			for _, g := range strings.Split(rec[3], ",") {
				u.Groups = append(u.Groups, strings.TrimSpace(g))
			}
		}
		out = append(out, tokenEntry{token: []byte(rec[0]), user: u})
	}
	return out, nil
}

// Authenticate identifies the caller of ctx.
func (a *Authenticator) Authenticate(ctx context.Context) (User, error) {
	if p, ok := peer.FromContext(ctx); ok {
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.VerifiedChains) > 0 && len(info.State.VerifiedChains[0]) > 0 {
			cert := info.State.VerifiedChains[0][0]
			if cert.Subject.CommonName == "" {
				return User{}, status.Error(codes.Unauthenticated, "client certificate has no common name")
			}
			return User{Name: cert.Subject.CommonName, Groups: append([]string(nil), cert.Subject.Organization...)}, nil
		}
	}
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		token, ok := strings.CutPrefix(v, "Bearer ")
		if !ok {
			continue
		}
		for _, e := range a.tokens {
			if subtle.ConstantTimeCompare(e.token, []byte(token)) == 1 {
				return e.user, nil
			}
		}
		return User{}, status.Error(codes.Unauthenticated, "invalid bearer token")
	}
	return User{}, status.Error(codes.Unauthenticated, "no client certificate or bearer token: configure one in your client config (ctl config)")
}
