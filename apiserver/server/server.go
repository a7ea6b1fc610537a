// Package server implements Skiff's generic API service: the same verbs for
// every kind, over the etcd store and the watch caches. Kind-specific rules
// (pod graceful deletion, service IP allocation, namespace finalization) are
// small hooks here; defaulting and validation are in package admission.
//
// It must never talk to etcd except through package storage and the caches.
package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skiff-dev/skiff/apiserver/admission"
	"github.com/skiff-dev/skiff/apiserver/storage"
	"github.com/skiff-dev/skiff/apiserver/watchcache"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/internal/selectors"
	"github.com/skiff-dev/skiff/internal/version"
	"github.com/skiff-dev/skiff/proto/api"
)

// Protected namespaces exist from the start and cannot be deleted.
const (
	DefaultNamespace = "default"
	SystemNamespace  = "skiff-system"
)

// MaxObjectBytes is the largest object etcd is asked to store.
const MaxObjectBytes = 1 << 20

// Config holds the server's policy knobs.
type Config struct {
	Services         ServiceAllocator
	BookmarkInterval time.Duration
	KubeletDialer    KubeletDialer
	Now              func() time.Time
	Logger           *slog.Logger
}

// Server is the API service.
type Server struct {
	api.UnimplementedAPIServer
	store  *storage.Store
	caches map[string]*watchcache.Cache
	cfg    Config
	log    *slog.Logger
	// typeURLs: computing a kind's type URL allocates; every response
	// needs one.
	typeURLs map[*kinds.Info]string
}

// New makes the service over a store and one cache per resource.
func New(store *storage.Store, caches map[string]*watchcache.Cache, cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BookmarkInterval <= 0 {
		cfg.BookmarkInterval = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Server{store: store, caches: caches, cfg: cfg, log: cfg.Logger, typeURLs: typeURLs()}
}

func (s *Server) resource(resource string) (*kinds.Info, error) {
	info, ok := kinds.ByResource(resource)
	if !ok {
		return nil, status.Errorf(codes.NotFound, "the server doesn't have a resource type %q", resource)
	}
	return info, nil
}

func (s *Server) unpack(a *anypb.Any) (*kinds.Info, kinds.Object, error) {
	if a == nil {
		return nil, nil, invalidArg("object: Required value")
	}
	info, ok := kinds.ForMessageName(a.MessageName())
	if !ok {
		return nil, nil, invalidArg("object: %q is not an API kind", a.GetTypeUrl())
	}
	if len(a.GetValue()) > MaxObjectBytes {
		return nil, nil, status.Errorf(codes.ResourceExhausted, "object: request is too large (%d bytes, limit %d)", len(a.GetValue()), MaxObjectBytes)
	}
	obj := info.New()
	if err := a.UnmarshalTo(obj); err != nil {
		return nil, nil, invalidArg("object: cannot decode %s: %v", info.Kind, err)
	}
	return info, obj, nil
}

func (s *Server) key(info *kinds.Info, namespace, name string) string {
	if !info.Namespaced {
		namespace = ""
	}
	return s.store.Key(info.Resource, namespace, name)
}

func encode(obj kinds.Object) (*anypb.Any, error) {
	a, err := anypb.New(obj)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode: %v", err)
	}
	return a, nil
}

func withRV(obj kinds.Object, rev int64) *anypb.Any {
	kinds.Meta(obj).ResourceVersion = storage.FormatRevision(rev)
	a, _ := anypb.New(obj)
	return a
}

const nameAlphabet = "bcdfghjklmnpqrstvwxz2456789"

func randomSuffix(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = nameAlphabet[int(b[i])%len(nameAlphabet)]
	}
	return string(b)
}

// namespaceUsable checks that objects may be created in namespace. The
// watch cache answers without a round trip to etcd; only a namespace the
// cache does not know yet is worth a consistent read.
func (s *Server) namespaceUsable(ctx context.Context, namespace string) error {
	nsInfo, _ := kinds.ByResource("namespaces")
	key := s.store.Key("namespaces", "", namespace)
	c := s.caches["namespaces"]
	obj, ok := c.Peek(key)
	if !ok {
		var err error
		if obj, _, ok, err = s.getFresh(ctx, nsInfo, key); err != nil {
			return apiError(nsInfo, namespace, err)
		}
	}
	if !ok {
		return status.Errorf(codes.NotFound, "namespaces %q not found", namespace)
	}
	if obj.GetMetadata().GetDeletionTimestamp() != nil {
		return status.Errorf(codes.FailedPrecondition, "unable to create new content in namespace %s because it is being terminated", namespace)
	}
	return nil
}

// Create implements api.APIServer.
func (s *Server) Create(ctx context.Context, req *api.CreateRequest) (*anypb.Any, error) {
	info, obj, err := s.unpack(req.GetObject())
	if err != nil {
		return nil, err
	}
	meta := kinds.Meta(obj)
	if info.Namespaced {
		if meta.Namespace == "" {
			return nil, invalidArg("metadata.namespace: Required value")
		}
		if err := s.namespaceUsable(ctx, meta.Namespace); err != nil {
			return nil, err
		}
	} else {
		meta.Namespace = ""
	}
	generated := meta.Name == "" && meta.GenerateName != ""
	now := timestamppb.New(s.cfg.Now().UTC().Truncate(time.Second))
	meta.Uid = uuid.NewString()
	meta.CreationTimestamp = now
	meta.DeletionTimestamp = nil
	meta.DeletionGracePeriodSeconds = nil
	meta.Generation = 1
	meta.ResourceVersion = ""
	kinds.SetTypeMeta(obj)
	prepareForCreate(obj)
	admission.Default(obj)
	template := obj
	// Only a Service's allocations change the object between attempts
	// (a generated name is drawn afresh each time): other kinds need no
	// copy, which costs about as much CPU as validation.
	_, allocates := template.(*api.Service)
	for attempt := 0; ; attempt++ {
		// Each attempt starts from the request: a retry draws a new name
		// and new allocations.
		if allocates {
			obj = proto.Clone(template).(kinds.Object)
		}
		meta = kinds.Meta(obj)
		if generated {
			meta.Name = meta.GenerateName + randomSuffix(5)
		}
		if err := admission.ValidateCreate(obj); err != nil {
			return nil, apiError(info, meta.Name, err)
		}
		if req.GetDryRun() {
			// As a real create would, a dry run refuses a name taken.
			key := s.key(info, meta.Namespace, meta.Name)
			if exists, err := s.store.Exists(ctx, key); err != nil {
				return nil, apiError(info, meta.Name, err)
			} else if exists && !generated {
				return nil, apiError(info, meta.Name, storage.ErrAlreadyExists)
			}
			return encode(obj)
		}
		sides, err := s.allocate(ctx, info, obj)
		if err != nil {
			return nil, err
		}
		key := s.key(info, meta.Namespace, meta.Name)
		data, err := storage.Encode(obj)
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		rev, err := s.store.Create(ctx, key, data, sides...)
		if errors.Is(err, storage.ErrAlreadyExists) && attempt < 8 {
			if generated {
				continue
			}
			// With allocations, the name or an address may be what was
			// taken: only the name is the client's problem.
			if len(sides) > 0 {
				if exists, _ := s.store.Exists(ctx, key); !exists {
					continue
				}
			}
		}
		if err != nil {
			return nil, apiError(info, meta.Name, err)
		}
		return s.rawAny(info, watchcache.WithResourceVersion(data, rev)), nil
	}
}

// prepareForCreate resets fields a client may not set on create.
func prepareForCreate(obj kinds.Object) {
	switch o := obj.(type) {
	case *api.Pod:
		if o.Status == nil {
			o.Status = &api.PodStatus{}
		}
		if o.Status.Phase == "" {
			o.Status.Phase = "Pending"
		}
	case *api.Namespace:
		if o.Spec == nil {
			o.Spec = &api.NamespaceSpec{}
		}
		if len(o.Spec.Finalizers) == 0 {
			o.Spec.Finalizers = []string{"kubernetes"}
		}
		o.Status = &api.NamespaceStatus{Phase: "Active"}
	case *api.Deployment:
		o.Status = &api.DeploymentStatus{}
	case *api.ReplicaSet:
		o.Status = &api.ReplicaSetStatus{}
	}
}

// Get implements api.APIServer.
func (s *Server) Get(ctx context.Context, req *api.GetRequest) (*anypb.Any, error) {
	info, err := s.resource(req.GetResource())
	if err != nil {
		return nil, err
	}
	if req.GetName() == "" {
		return nil, invalidArg("name: Required value")
	}
	_, encoded, ok, err := s.getFresh(ctx, info, s.key(info, req.GetNamespace(), req.GetName()))
	if err != nil {
		return nil, apiError(info, req.GetName(), err)
	}
	if !ok {
		return nil, apiError(info, req.GetName(), storage.ErrNotFound)
	}
	return s.rawAny(info, encoded), nil
}

// List implements api.APIServer.
func (s *Server) List(ctx context.Context, req *api.ListRequest) (*api.ListResponse, error) {
	info, err := s.resource(req.GetResource())
	if err != nil {
		return nil, err
	}
	sel, err := selectors.Parse(info, req.GetLabelSelector(), req.GetFieldSelector())
	if err != nil {
		return nil, invalidArg("%v", err)
	}
	namespace := req.GetNamespace()
	if !info.Namespaced {
		namespace = ""
	}
	prefix := s.store.NamespacePrefix(info.Resource, namespace)
	items, rev, err := s.caches[info.Resource].List(ctx, prefix, sel)
	if errors.Is(err, watchcache.ErrNotFresh) {
		items, rev, err = s.listFromEtcd(ctx, info, prefix, sel)
	}
	if err != nil {
		return nil, apiError(info, "", err)
	}
	resp := &api.ListResponse{ResourceVersion: storage.FormatRevision(rev), Items: make([]*anypb.Any, len(items))}
	for i, it := range items {
		resp.Items[i] = s.rawAny(info, it.Encoded)
	}
	return resp, nil
}

// getFresh reads one object consistently: from the watch cache when it can
// prove it is as fresh as etcd, from etcd when it cannot.
func (s *Server) getFresh(ctx context.Context, info *kinds.Info, key string) (kinds.Object, []byte, bool, error) {
	obj, encoded, ok, err := s.caches[info.Resource].Get(ctx, key)
	if !errors.Is(err, watchcache.ErrNotFresh) {
		return obj, encoded, ok, err
	}
	raw, rev, err := s.store.GetRaw(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	obj, encoded, err = watchcache.Decode(info, raw, rev)
	if err != nil {
		return nil, nil, false, fmt.Errorf("decode %s: %w", key, err)
	}
	return obj, encoded, true, nil
}

// listFromEtcd is List's consistent fallback when the cache cannot prove
// it is fresh.
func (s *Server) listFromEtcd(ctx context.Context, info *kinds.Info, prefix string, sel selectors.Selector) ([]watchcache.Item, int64, error) {
	raws, rev, err := s.store.List(ctx, prefix)
	if err != nil {
		return nil, 0, err
	}
	items := make([]watchcache.Item, 0, len(raws))
	for _, r := range raws {
		obj, encoded, err := watchcache.Decode(info, r.Value, r.Revision)
		if err != nil {
			return nil, 0, fmt.Errorf("decode %s: %w", r.Key, err)
		}
		if sel.Matches(obj) {
			items = append(items, watchcache.Item{Object: obj, Encoded: encoded})
		}
	}
	return items, rev, nil
}

// Version implements api.APIServer.
func (s *Server) Version(context.Context, *api.VersionRequest) (*api.VersionInfo, error) {
	return versionInfo(), nil
}

func versionInfo() *api.VersionInfo {
	return &api.VersionInfo{GitVersion: version.GitVersion, GoVersion: version.GoVersion(), Platform: version.Platform()}
}

// field returns a message's top-level field by name, or nil.
func field(obj kinds.Object, name protoreflect.Name) protoreflect.FieldDescriptor {
	return obj.ProtoReflect().Descriptor().Fields().ByName(name)
}

// specEqual compares the spec (or, for kinds without one, everything but
// metadata and status) of two objects, to decide whether generation moves.
func specEqual(a, b kinds.Object) bool {
	if f := field(a, "spec"); f != nil {
		return proto.Equal(a.ProtoReflect().Get(f).Message().Interface(), b.ProtoReflect().Get(f).Message().Interface())
	}
	ac, bc := proto.Clone(a).(kinds.Object), proto.Clone(b).(kinds.Object)
	kinds.Meta(ac).Reset()
	kinds.Meta(bc).Reset()
	return proto.Equal(ac, bc)
}

// copyStatus sets dst's status to src's (nil-safe), for kinds with a status.
func copyStatus(dst, src kinds.Object) {
	f := field(dst, "status")
	if f == nil {
		return
	}
	if src.ProtoReflect().Has(f) {
		dst.ProtoReflect().Set(f, protoreflect.ValueOfMessage(proto.Clone(src.ProtoReflect().Get(f).Message().Interface()).ProtoReflect()))
	} else {
		dst.ProtoReflect().Clear(f)
	}
}

// EnsureNamespace creates a namespace unless it exists.
func (s *Server) EnsureNamespace(ctx context.Context, name string) error {
	a, err := anypb.New(&api.Namespace{Metadata: &api.ObjectMeta{Name: name}})
	if err != nil {
		return err
	}
	_, err = s.Create(ctx, &api.CreateRequest{Object: a})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}
