// Package client is the typed gRPC client for Skiff's API, used by every
// component and by ctl. One generic ResourceClient serves every kind.
//
// It must never cache or retry on its own: informers cache, callers retry.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// Client talks to one apiserver (or a set of them behind one connection).
type Client struct {
	conn grpc.ClientConnInterface
	API  api.APIClient
}

// New wraps an open connection.
func New(conn grpc.ClientConnInterface) *Client {
	return &Client{conn: conn, API: api.NewAPIClient(conn)}
}

// ListOptions select objects for List and Watch.
type ListOptions struct {
	LabelSelector string
	FieldSelector string
	// ResourceVersion is where a Watch starts; empty sends current objects
	// first as ADDED events.
	ResourceVersion string
	AllowBookmarks  bool
}

// DeleteOptions mirror Kubernetes' delete options.
type DeleteOptions struct {
	GracePeriodSeconds *int64
	// PropagationPolicy is "Background" (default), "Foreground" or "Orphan".
	PropagationPolicy string
	Preconditions     *api.Preconditions
}

// ResourceClient is the client for one kind.
type ResourceClient[T kinds.Object] struct {
	api  api.APIClient
	info *kinds.Info
}

// For returns the client for the kind of T, e.g. For[*api.Pod](c).
func For[T kinds.Object](c *Client) *ResourceClient[T] {
	var zero T
	info, err := kinds.For(zero.ProtoReflect().Type().New().Interface())
	if err != nil {
		panic(err) // a programming error: T is not a registered kind
	}
	return &ResourceClient[T]{api: c.API, info: info}
}

// ForKind returns an untyped client for a kind known only at run time (ctl).
func ForKind(c *Client, info *kinds.Info) *ResourceClient[kinds.Object] {
	return &ResourceClient[kinds.Object]{api: c.API, info: info}
}

// Info describes the client's kind.
func (r *ResourceClient[T]) Info() *kinds.Info { return r.info }

func (r *ResourceClient[T]) decode(a *anypb.Any) (T, error) {
	var zero T
	obj := r.info.New()
	if err := a.UnmarshalTo(obj); err != nil {
		return zero, fmt.Errorf("decode %s: %w", r.info.Kind, err)
	}
	return obj.(T), nil
}

// Get reads one object.
func (r *ResourceClient[T]) Get(ctx context.Context, namespace, name string) (T, error) {
	a, err := r.api.Get(ctx, &api.GetRequest{Resource: r.info.Resource, Namespace: namespace, Name: name})
	if err != nil {
		var zero T
		return zero, err
	}
	return r.decode(a)
}

// List reads every matching object and the resource version to watch from.
func (r *ResourceClient[T]) List(ctx context.Context, namespace string, opts ListOptions) ([]T, string, error) {
	resp, err := r.api.List(ctx, &api.ListRequest{
		Resource: r.info.Resource, Namespace: namespace,
		LabelSelector: opts.LabelSelector, FieldSelector: opts.FieldSelector,
	})
	if err != nil {
		return nil, "", err
	}
	out := make([]T, 0, len(resp.Items))
	for _, a := range resp.Items {
		obj, err := r.decode(a)
		if err != nil {
			return nil, "", err
		}
		out = append(out, obj)
	}
	return out, resp.ResourceVersion, nil
}

func (r *ResourceClient[T]) encode(obj T) (*anypb.Any, error) {
	a, err := anypb.New(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", r.info.Kind, err)
	}
	return a, nil
}

// Create stores a new object and returns it as stored.
func (r *ResourceClient[T]) Create(ctx context.Context, obj T) (T, error) {
	var zero T
	a, err := r.encode(obj)
	if err != nil {
		return zero, err
	}
	out, err := r.api.Create(ctx, &api.CreateRequest{Object: a})
	if err != nil {
		return zero, err
	}
	return r.decode(out)
}

// Update replaces the object's spec and metadata if its resourceVersion is
// still current; a stale one fails with codes.Aborted (see IsConflict).
func (r *ResourceClient[T]) Update(ctx context.Context, obj T) (T, error) {
	var zero T
	a, err := r.encode(obj)
	if err != nil {
		return zero, err
	}
	out, err := r.api.Update(ctx, &api.UpdateRequest{Object: a})
	if err != nil {
		return zero, err
	}
	return r.decode(out)
}

// UpdateStatus replaces only the object's status, under the same
// resourceVersion rule as Update.
func (r *ResourceClient[T]) UpdateStatus(ctx context.Context, obj T) (T, error) {
	var zero T
	a, err := r.encode(obj)
	if err != nil {
		return zero, err
	}
	out, err := r.api.UpdateStatus(ctx, &api.UpdateRequest{Object: a})
	if err != nil {
		return zero, err
	}
	return r.decode(out)
}

// Delete deletes an object, or marks it for deletion when a grace period or
// finalizers hold it; it returns the object as it was last stored.
func (r *ResourceClient[T]) Delete(ctx context.Context, namespace, name string, opts DeleteOptions) (T, error) {
	var zero T
	out, err := r.api.Delete(ctx, &api.DeleteRequest{
		Resource: r.info.Resource, Namespace: namespace, Name: name,
		GracePeriodSeconds: opts.GracePeriodSeconds, PropagationPolicy: opts.PropagationPolicy,
		Preconditions: opts.Preconditions,
	})
	if err != nil {
		return zero, err
	}
	return r.decode(out)
}

// EventType is what happened to an object in a watch.
type EventType = api.WatchEvent_Type

const (
	Added    = api.WatchEvent_ADDED
	Modified = api.WatchEvent_MODIFIED
	Deleted  = api.WatchEvent_DELETED
	Bookmark = api.WatchEvent_BOOKMARK
)

// Event is one watch event; Object is nil for bookmarks.
type Event[T kinds.Object] struct {
	Type            EventType
	Object          T
	ResourceVersion string
}

// Watcher yields watch events until its context ends or the stream fails.
type Watcher[T kinds.Object] struct {
	stream grpc.ServerStreamingClient[api.WatchEvent]
	rc     *ResourceClient[T]
	// frames: the stream is a gRPC stream using watchCodec, which decodes
	// each event's object straight from the received bytes; other
	// api.APIClient implementations (fakes in tests) yield WatchEvents.
	frames bool
	frame  watchFrame // reused by Next: one fewer allocation per event
}

// Watch opens a watch stream. Next returns an error satisfying IsExpired when
// the resource version is too old: list again and watch from the new one.
func (r *ResourceClient[T]) Watch(ctx context.Context, namespace string, opts ListOptions) (*Watcher[T], error) {
	stream, err := r.api.Watch(ctx, &api.WatchRequest{
		Resource: r.info.Resource, Namespace: namespace,
		LabelSelector: opts.LabelSelector, FieldSelector: opts.FieldSelector,
		ResourceVersion: opts.ResourceVersion, AllowBookmarks: opts.AllowBookmarks,
	}, grpc.ForceCodecV2(newWatchCodec()))
	if err != nil {
		return nil, err
	}
	_, frames := stream.(*grpc.GenericClientStream[api.WatchRequest, api.WatchEvent])
	typeURL := "type.googleapis.com/" + string(r.info.New().ProtoReflect().Descriptor().FullName())
	return &Watcher[T]{stream: stream, rc: r, frames: frames, frame: watchFrame{info: r.info, typeURL: typeURL}}, nil
}

// Next blocks for the next event. io.EOF means the server ended the stream.
func (w *Watcher[T]) Next() (Event[T], error) {
	if w.frames {
		f := &w.frame
		f.reset()
		if err := w.stream.RecvMsg(f); err != nil {
			return Event[T]{}, err
		}
		out := Event[T]{Type: f.typ, ResourceVersion: f.rv}
		if f.object != nil {
			out.Object = f.object.(T)
		}
		return out, nil
	}
	ev, err := w.stream.Recv()
	if err != nil {
		return Event[T]{}, err
	}
	out := Event[T]{Type: ev.Type, ResourceVersion: ev.ResourceVersion}
	if ev.Object != nil {
		obj, err := w.rc.decode(ev.Object)
		if err != nil {
			return Event[T]{}, err
		}
		out.Object = obj
	}
	return out, nil
}

// Bind assigns a pending pod to a node.
func (c *Client) Bind(ctx context.Context, namespace, name, uid, node string) (*api.Pod, error) {
	a, err := c.API.Bind(ctx, &api.BindRequest{Namespace: namespace, Name: name, Uid: uid, NodeName: node})
	if err != nil {
		return nil, err
	}
	pod := &api.Pod{}
	if err := a.UnmarshalTo(pod); err != nil {
		return nil, fmt.Errorf("decode bound pod: %w", err)
	}
	return pod, nil
}

// Typed shortcuts for the kinds components use most.
func (c *Client) Pods() *ResourceClient[*api.Pod]               { return For[*api.Pod](c) }
func (c *Client) Nodes() *ResourceClient[*api.Node]             { return For[*api.Node](c) }
func (c *Client) Namespaces() *ResourceClient[*api.Namespace]   { return For[*api.Namespace](c) }
func (c *Client) Services() *ResourceClient[*api.Service]       { return For[*api.Service](c) }
func (c *Client) Endpoints() *ResourceClient[*api.Endpoints]    { return For[*api.Endpoints](c) }
func (c *Client) Events() *ResourceClient[*api.Event]           { return For[*api.Event](c) }
func (c *Client) Deployments() *ResourceClient[*api.Deployment] { return For[*api.Deployment](c) }
func (c *Client) ReplicaSets() *ResourceClient[*api.ReplicaSet] { return For[*api.ReplicaSet](c) }
func (c *Client) Leases() *ResourceClient[*api.Lease]           { return For[*api.Lease](c) }

// IsNotFound, IsAlreadyExists, IsConflict and IsExpired classify API errors.
func IsNotFound(err error) bool      { return status.Code(err) == codes.NotFound }
func IsAlreadyExists(err error) bool { return status.Code(err) == codes.AlreadyExists }
func IsConflict(err error) bool      { return status.Code(err) == codes.Aborted }
func IsExpired(err error) bool       { return status.Code(err) == codes.OutOfRange }

// IsStreamEnd reports a watch stream that ended normally or by cancellation.
func IsStreamEnd(err error) bool {
	return errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled
}

// ParseResourceVersion turns a resourceVersion into the etcd revision it is.
func ParseResourceVersion(rv string) (int64, error) {
	if rv == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("resourceVersion %q is not a revision number", rv)
	}
	return n, nil
}
