package auth

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// Gate runs authentication, rate limiting, authorization and audit for
// every API call.
type Gate struct {
	Authn *Authenticator
	Authz *Authorizer
	// Audit, when set, receives one JSON line per mutating request.
	Audit *slog.Logger
	// QPS and Burst limit each user's requests; QPS 0 disables the limit.
	QPS   float64
	Burst int

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

func (g *Gate) allow(u User) error {
	if g.QPS <= 0 {
		return nil
	}
	g.mu.Lock()
	if g.limiters == nil {
		g.limiters = map[string]*rate.Limiter{}
	}
	l, ok := g.limiters[u.Name]
	if !ok {
		l = rate.NewLimiter(rate.Limit(g.QPS), max(g.Burst, 1))
		g.limiters[u.Name] = l
	}
	g.mu.Unlock()
	if !l.Allow() {
		return status.Errorf(codes.ResourceExhausted, "too many requests from user %q (limit %.0f/s): retry later", u.Name, g.QPS)
	}
	return nil
}

func objectAttributes(a *anypb.Any) (resource, namespace, name string, obj kinds.Object, err error) {
	info, ok := kinds.ForMessageName(a.MessageName())
	if !ok {
		return "", "", "", nil, status.Errorf(codes.InvalidArgument, "object: %q is not an API kind", a.GetTypeUrl())
	}
	obj = info.New()
	if err := a.UnmarshalTo(obj); err != nil {
		return "", "", "", nil, status.Errorf(codes.InvalidArgument, "object: cannot decode %s: %v", info.Kind, err)
	}
	ns := obj.GetMetadata().GetNamespace()
	if !info.Namespaced {
		ns = ""
	}
	return info.Resource, ns, obj.GetMetadata().GetName(), obj, nil
}

// attributes says what a request asks to do; ok is false for calls every
// authenticated user may make.
func attributes(req any) (attr Attributes, ok bool, err error) {
	switch r := req.(type) {
	case *api.CreateRequest:
		attr.Verb = "create"
		attr.Resource, attr.Namespace, attr.Name, attr.Object, err = objectAttributes(r.GetObject())
	case *api.UpdateRequest:
		attr.Verb = "update"
		attr.Resource, attr.Namespace, attr.Name, attr.Object, err = objectAttributes(r.GetObject())
	case *api.GetRequest:
		attr = Attributes{Verb: "get", Resource: r.GetResource(), Namespace: r.GetNamespace(), Name: r.GetName()}
	case *api.ListRequest:
		attr = Attributes{Verb: "list", Resource: r.GetResource(), Namespace: r.GetNamespace()}
	case *api.WatchRequest:
		attr = Attributes{Verb: "watch", Resource: r.GetResource(), Namespace: r.GetNamespace()}
	case *api.DeleteRequest:
		attr = Attributes{Verb: "delete", Resource: r.GetResource(), Namespace: r.GetNamespace(), Name: r.GetName()}
	case *api.BindRequest:
		attr = Attributes{Verb: "create", Resource: "pods/binding", Namespace: r.GetNamespace(), Name: r.GetName()}
	case *api.ExecInput:
		s := r.GetStart()
		attr = Attributes{Verb: "create", Resource: "pods/exec", Namespace: s.GetNamespace(), Name: s.GetPod()}
	case *api.PortForwardInput:
		s := r.GetStart()
		attr = Attributes{Verb: "create", Resource: "pods/portforward", Namespace: s.GetNamespace(), Name: s.GetPod()}
	case *api.LogsRequest:
		attr = Attributes{Verb: "get", Resource: "pods/log", Namespace: r.GetNamespace(), Name: r.GetPod()}
	case *api.VersionRequest:
		return Attributes{}, false, nil
	default:
		// A call added without a rule here is refused, never open to
		// every authenticated user.
		return Attributes{}, false, status.Errorf(codes.PermissionDenied, "no authorization rule for %T", req)
	}
	return attr, true, err
}

func statusSubresource(method string, attr *Attributes) {
	if method == "/skiff.v1.API/UpdateStatus" {
		attr.Resource += "/status"
	}
}

// authorize says whether u may make the call req asks for.
func (g *Gate) authorize(u User, method string, req any) (*Attributes, error) {
	attr, ok, err := attributes(req)
	if err != nil || !ok {
		return nil, err
	}
	attr.User = u
	statusSubresource(method, &attr)
	if err := g.Authz.Authorize(attr); err != nil {
		g.audit(&attr, err, 0)
		return nil, err
	}
	return &attr, nil
}

// authenticate identifies the caller and applies their rate limit.
func (g *Gate) authenticate(ctx context.Context) (User, error) {
	u, err := g.Authn.Authenticate(ctx)
	if err != nil {
		return User{}, err
	}
	return u, g.allow(u)
}

func (g *Gate) audit(attr *Attributes, err error, took time.Duration) {
	if g.Audit == nil || attr == nil {
		return
	}
	switch attr.Verb {
	case "create", "update", "delete":
	default:
		return
	}
	g.Audit.Info("request",
		"user", attr.User.Name, "groups", attr.User.Groups, "verb", attr.Verb, "resource", attr.Resource,
		"namespace", attr.Namespace, "name", attr.Name, "code", status.Code(err).String(), "latencyMs", took.Milliseconds())
}

// Unary is the interceptor for unary calls.
func (g *Gate) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	u, err := g.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	attr, err := g.authorize(u, info.FullMethod, req)
	if err != nil {
		return nil, err
	}
	ctx = WithUser(ctx, u)
	start := time.Now()
	resp, err := handler(ctx, req)
	if attr != nil && attr.Name == "" {
		if a, ok := resp.(*anypb.Any); ok {
			// generateName: record the name the server chose.
			if _, _, name, _, derr := objectAttributes(a); derr == nil {
				attr.Name = name
			}
		}
	}
	g.audit(attr, err, time.Since(start))
	return resp, err
}

// Stream is the interceptor for streaming calls: it authorizes on the first
// message, which says what the stream is for.
func (g *Gate) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	u, err := g.authenticate(ss.Context())
	if err != nil {
		return err
	}
	w := &gatedStream{ServerStream: ss, gate: g, method: info.FullMethod, user: u, ctx: WithUser(ss.Context(), u)}
	start := time.Now()
	err = handler(srv, w)
	g.audit(w.attr, err, time.Since(start))
	return err
}

type gatedStream struct {
	grpc.ServerStream
	gate    *Gate
	method  string
	user    User
	ctx     context.Context
	checked bool
	attr    *Attributes
}

func (s *gatedStream) Context() context.Context { return s.ctx }

func (s *gatedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if s.checked {
		return nil
	}
	s.checked = true
	attr, err := s.gate.authorize(s.user, s.method, m)
	s.attr = attr
	return err
}
