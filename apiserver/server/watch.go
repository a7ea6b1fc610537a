package server

import (
	"time"

	"google.golang.org/grpc"

	"github.com/skiff-dev/skiff/apiserver/storage"
	"github.com/skiff-dev/skiff/apiserver/watchcache"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/selectors"
	"github.com/skiff-dev/skiff/proto/api"
)

// Watch implements api.APIServer: events from the resource's watch cache,
// filtered by namespace and selectors.
func (s *Server) Watch(req *api.WatchRequest, stream grpc.ServerStreamingServer[api.WatchEvent]) error {
	ctx := stream.Context()
	info, err := s.resource(req.GetResource())
	if err != nil {
		return err
	}
	sel, err := selectors.Parse(info, req.GetLabelSelector(), req.GetFieldSelector())
	if err != nil {
		return invalidArg("%v", err)
	}
	fromRev, err := client.ParseResourceVersion(req.GetResourceVersion())
	if err != nil {
		return invalidArg("resourceVersion: Invalid value: %v", err)
	}
	namespace := req.GetNamespace()
	if !info.Namespaced {
		namespace = ""
	}
	w, initial, rev, err := s.caches[info.Resource].Watch(ctx, s.store.NamespacePrefix(info.Resource, namespace), sel, fromRev)
	if err != nil {
		return apiError(info, "", err)
	}
	defer w.Stop()
	send := func(ev *watchcache.Event) error {
		return stream.SendMsg(s.watchEvent(info, ev))
	}
	for _, ev := range initial {
		if err := send(ev); err != nil {
			return err
		}
	}
	lastSent := rev
	if n := len(initial); n > 0 && initial[n-1].Rev > lastSent {
		lastSent = initial[n-1].Rev
	}
	var bookmarks <-chan time.Time
	if req.GetAllowBookmarks() {
		t := time.NewTicker(s.cfg.BookmarkInterval)
		defer t.Stop()
		bookmarks = t.C
		// The first bookmark tells the client where the initial state ends.
		if err := stream.Send(&api.WatchEvent{Type: api.WatchEvent_BOOKMARK, ResourceVersion: storage.FormatRevision(lastSent)}); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-w.Events():
			if err := send(ev); err != nil {
				return err
			}
			lastSent = ev.Rev
		case <-w.Done():
			// Deliver what was queued before the cut, then say why.
			for {
				select {
				case ev := <-w.Events():
					if err := send(ev); err != nil {
						return err
					}
				default:
					return apiError(info, "", w.Err())
				}
			}
		case <-bookmarks:
			cur := s.caches[info.Resource].Revision()
			if cur >= lastSent && len(w.Events()) == 0 {
				if err := stream.Send(&api.WatchEvent{Type: api.WatchEvent_BOOKMARK, ResourceVersion: storage.FormatRevision(cur)}); err != nil {
					return err
				}
				lastSent = cur
			}
		}
	}
}
