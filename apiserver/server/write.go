package server

import (
	"context"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skiff-dev/skiff/apiserver/admission"
	"github.com/skiff-dev/skiff/apiserver/storage"
	"github.com/skiff-dev/skiff/apiserver/watchcache"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// Finalizers the garbage collector honours, as in Kubernetes.
const (
	FinalizerOrphan     = "orphan"
	FinalizerForeground = "foregroundDeletion"
)

// Update implements api.APIServer: spec and metadata, never status.
func (s *Server) Update(ctx context.Context, req *api.UpdateRequest) (*anypb.Any, error) {
	return s.update(ctx, req, false)
}

// UpdateStatus implements api.APIServer: status only.
func (s *Server) UpdateStatus(ctx context.Context, req *api.UpdateRequest) (*anypb.Any, error) {
	return s.update(ctx, req, true)
}

func (s *Server) update(ctx context.Context, req *api.UpdateRequest, statusOnly bool) (*anypb.Any, error) {
	info, obj, err := s.unpack(req.GetObject())
	if err != nil {
		return nil, err
	}
	if statusOnly && !info.HasStatus {
		return nil, status.Errorf(codes.InvalidArgument, "%s have no status", info.Resource)
	}
	meta := kinds.Meta(obj)
	if !info.Namespaced {
		meta.Namespace = ""
	}
	if meta.Name == "" {
		return nil, invalidArg("metadata.name: Required value")
	}
	if meta.ResourceVersion == "" {
		return nil, invalidArg("metadata.resourceVersion: Required value: must be the version last read, for optimistic concurrency")
	}
	wantRev, err := client.ParseResourceVersion(meta.ResourceVersion)
	if err != nil {
		return nil, invalidArg("metadata.resourceVersion: Invalid value: %v", err)
	}
	key := s.key(info, meta.Namespace, meta.Name)
	cur, rev, err := s.current(ctx, info, key, wantRev)
	if err != nil {
		return nil, apiError(info, meta.Name, err)
	}
	if rev != wantRev {
		return nil, apiError(info, meta.Name, storage.ErrConflict)
	}
	kinds.Meta(cur).ResourceVersion = storage.FormatRevision(rev)
	var next kinds.Object
	if statusOnly {
		next = proto.Clone(cur).(kinds.Object)
		copyStatus(next, obj)
	} else {
		next = obj
		if info.HasStatus {
			copyStatus(next, cur)
		}
		preserveSystemMeta(kinds.Meta(next), kinds.Meta(cur))
		if !specEqual(next, cur) {
			kinds.Meta(next).Generation = kinds.Meta(cur).GetGeneration() + 1
		}
		kinds.SetTypeMeta(next)
		admission.DefaultUpdate(next, cur)
	}
	if err := admission.ValidateUpdate(next, cur); err != nil {
		return nil, apiError(info, meta.Name, err)
	}
	if req.GetDryRun() {
		return encode(next)
	}
	if readyToRemove(next) {
		newRev, err := s.store.Delete(ctx, key, rev, s.sideKeys(next)...)
		if err != nil {
			return nil, apiError(info, meta.Name, err)
		}
		return withRV(next, newRev), nil
	}
	data, err := storage.Encode(next)
	if err != nil {
		return nil, apiError(info, meta.Name, err)
	}
	newRev, err := s.store.Update(ctx, key, rev, data)
	if err != nil {
		return nil, apiError(info, meta.Name, err)
	}
	return s.rawAny(info, watchcache.WithResourceVersion(data, newRev)), nil
}

// current returns the stored object for an update that read wantRev. The
// watch cache answers when it holds exactly that revision (or a newer one:
// a conflict either way); only a cache lagging behind the client costs a
// read from etcd.
func (s *Server) current(ctx context.Context, info *kinds.Info, key string, wantRev int64) (kinds.Object, int64, error) {
	if obj, rev, ok := s.caches[info.Resource].PeekRevision(key); ok && rev >= wantRev {
		return proto.Clone(obj).(kinds.Object), rev, nil
	}
	cur := info.New()
	rev, err := s.store.Get(ctx, key, cur)
	if err != nil {
		return nil, 0, err
	}
	kinds.Meta(cur).ResourceVersion = storage.FormatRevision(rev)
	return cur, rev, nil
}

// hint is the watch cache's copy of an object, for a first write attempt
// without reading etcd.
func (s *Server) hint(info *kinds.Info, key string) *storage.Cached {
	if obj, rev, ok := s.caches[info.Resource].PeekRevision(key); ok {
		return &storage.Cached{Object: obj, Revision: rev}
	}
	return nil
}

// preserveSystemMeta keeps the fields only the server sets.
func preserveSystemMeta(next, cur *api.ObjectMeta) {
	next.Uid = cur.GetUid()
	next.CreationTimestamp = cur.GetCreationTimestamp()
	next.DeletionTimestamp = cur.GetDeletionTimestamp()
	next.DeletionGracePeriodSeconds = cur.DeletionGracePeriodSeconds
	next.Generation = cur.GetGeneration()
	next.GenerateName = cur.GetGenerateName()
}

// readyToRemove reports an object whose deletion no longer waits for
// anything: deletion requested, no finalizers, and (for pods) the kubelet's
// grace period already confirmed as zero.
func readyToRemove(obj kinds.Object) bool {
	meta := obj.GetMetadata()
	if meta.GetDeletionTimestamp() == nil || len(meta.GetFinalizers()) > 0 {
		return false
	}
	switch o := obj.(type) {
	case *api.Namespace:
		return len(o.GetSpec().GetFinalizers()) == 0
	case *api.Pod:
		return meta.GetDeletionGracePeriodSeconds() == 0
	}
	return true
}

// Delete implements api.APIServer.
func (s *Server) Delete(ctx context.Context, req *api.DeleteRequest) (*anypb.Any, error) {
	info, err := s.resource(req.GetResource())
	if err != nil {
		return nil, err
	}
	name, namespace := req.GetName(), req.GetNamespace()
	if name == "" {
		return nil, invalidArg("name: Required value")
	}
	if info.Kind == "Namespace" && (name == DefaultNamespace || name == SystemNamespace) {
		return nil, status.Errorf(codes.PermissionDenied, "namespaces %q is forbidden: this namespace may not be deleted", name)
	}
	policy := req.GetPropagationPolicy()
	switch policy {
	case "", "Background", "Foreground", "Orphan":
	default:
		return nil, invalidArg("propagationPolicy: Unsupported value: %q: supported values: \"Background\", \"Foreground\", \"Orphan\"", policy)
	}
	if g := req.GracePeriodSeconds; g != nil && *g < 0 {
		return nil, invalidArg("gracePeriodSeconds: Invalid value: %d: must be >= 0", *g)
	}
	key := s.key(info, namespace, name)
	obj, rev, err := s.store.GuaranteedUpdate(ctx, key, info.New, s.hint(info, key), func(cur kinds.Object, rev int64) (storage.Change, error) {
		if p := req.GetPreconditions(); p != nil {
			if p.GetUid() != "" && p.GetUid() != cur.GetMetadata().GetUid() {
				return storage.Change{}, status.Errorf(codes.Aborted, "Precondition failed: UID in precondition: %s, UID in object meta: %s", p.GetUid(), cur.GetMetadata().GetUid())
			}
			if p.GetResourceVersion() != "" && p.GetResourceVersion() != storage.FormatRevision(rev) {
				return storage.Change{}, apiError(info, name, storage.ErrConflict)
			}
		}
		next := proto.Clone(cur).(kinds.Object)
		s.markDeleted(next, policy, req.GracePeriodSeconds)
		switch {
		case readyToRemove(next):
			return storage.Change{Object: next, Delete: true, SideKeys: s.sideKeys(cur)}, nil
		case proto.Equal(next, cur):
			return storage.Change{}, nil // already marked as this delete would
		}
		return storage.Change{Object: next}, nil
	}, storage.DryRun(req.GetDryRun()))
	if err != nil {
		return nil, apiError(info, name, err)
	}
	return withRV(obj, rev), nil
}

// markDeleted sets deletionTimestamp and the finalizers a delete asks for.
func (s *Server) markDeleted(obj kinds.Object, policy string, grace *int64) {
	meta := kinds.Meta(obj)
	now := s.cfg.Now().UTC().Truncate(time.Second)
	addFinalizer := func(f string) {
		if !slices.Contains(meta.Finalizers, f) {
			meta.Finalizers = append(meta.Finalizers, f)
		}
	}
	if meta.DeletionTimestamp == nil {
		switch policy {
		case "Orphan":
			addFinalizer(FinalizerOrphan)
		case "Foreground":
			addFinalizer(FinalizerForeground)
		}
	}
	pod, isPod := obj.(*api.Pod)
	if !isPod {
		if meta.DeletionTimestamp == nil {
			meta.DeletionTimestamp = timestamppb.New(now)
			zero := int64(0)
			meta.DeletionGracePeriodSeconds = &zero
		}
		if ns, ok := obj.(*api.Namespace); ok {
			if ns.Status == nil {
				ns.Status = &api.NamespaceStatus{}
			}
			ns.Status.Phase = "Terminating"
		}
		return
	}
	// Pods: graceful unless unbound or asked for zero. A shorter grace
	// period may replace a longer one, never the other way round.
	g := int64(30)
	if pod.GetSpec().TerminationGracePeriodSeconds != nil {
		g = pod.GetSpec().GetTerminationGracePeriodSeconds()
	}
	if grace != nil {
		g = *grace
	}
	if pod.GetSpec().GetNodeName() == "" || pod.GetStatus().GetPhase() == "Succeeded" || pod.GetStatus().GetPhase() == "Failed" {
		g = 0
	}
	if meta.DeletionGracePeriodSeconds != nil && *meta.DeletionGracePeriodSeconds <= g {
		return
	}
	meta.DeletionGracePeriodSeconds = &g
	meta.DeletionTimestamp = timestamppb.New(now.Add(time.Duration(g) * time.Second))
}

// Bind implements api.APIServer.
func (s *Server) Bind(ctx context.Context, req *api.BindRequest) (*anypb.Any, error) {
	info, _ := kinds.ByResource("pods")
	if req.GetNodeName() == "" {
		return nil, invalidArg("nodeName: Required value")
	}
	if req.GetName() == "" || req.GetNamespace() == "" {
		return nil, invalidArg("name and namespace: Required value")
	}
	key := s.key(info, req.GetNamespace(), req.GetName())
	obj, rev, err := s.store.GuaranteedUpdate(ctx, key, info.New, s.hint(info, key), func(cur kinds.Object, _ int64) (storage.Change, error) {
		pod := cur.(*api.Pod)
		switch {
		case req.GetUid() != "" && pod.GetMetadata().GetUid() != req.GetUid():
			return storage.Change{}, status.Errorf(codes.Aborted, "pod %s/%s was replaced (uid %s, binding for %s)", req.GetNamespace(), req.GetName(), pod.GetMetadata().GetUid(), req.GetUid())
		case pod.GetSpec().GetNodeName() != "":
			return storage.Change{}, status.Errorf(codes.FailedPrecondition, "pod %s/%s is already assigned to node %q", req.GetNamespace(), req.GetName(), pod.GetSpec().GetNodeName())
		case pod.GetMetadata().GetDeletionTimestamp() != nil:
			return storage.Change{}, status.Errorf(codes.FailedPrecondition, "pod %s/%s is being deleted", req.GetNamespace(), req.GetName())
		}
		if pod.Spec == nil {
			pod.Spec = &api.PodSpec{}
		}
		pod.Spec.NodeName = req.GetNodeName()
		if pod.Status == nil {
			pod.Status = &api.PodStatus{}
		}
		setCondition(pod.Status, &api.Condition{Type: "PodScheduled", Status: "True", LastTransitionTime: timestamppb.New(s.cfg.Now().UTC().Truncate(time.Second))})
		return storage.Change{Object: pod}, nil
	})
	if err != nil {
		return nil, apiError(info, req.GetName(), err)
	}
	return withRV(obj, rev), nil
}

func setCondition(st *api.PodStatus, c *api.Condition) {
	for i, existing := range st.Conditions {
		if existing.GetType() == c.GetType() {
			st.Conditions[i] = c
			return
		}
	}
	st.Conditions = append(st.Conditions, c)
}
