package cmd

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skiff-dev/skiff/internal/backoff"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
)

// errWatchExpired ends a watch whose resourceVersion the server no longer
// keeps: the object must be listed again.
var errWatchExpired = errors.New("watch expired")

// followedObject is one object a command follows by name (rollout status,
// wait), as kubectl's ListWatch with a metadata.name field selector does.
type followedObject struct {
	rc   *client.ResourceClient[kinds.Object]
	ns   string
	name string
}

func followRef(cl *client.Client, ref objectRef) followedObject {
	return followedObject{rc: client.ForKind(cl, ref.info), ns: ref.namespace, name: ref.name}
}

func (o followedObject) options(rv string) client.ListOptions {
	return client.ListOptions{FieldSelector: "metadata.name=" + o.name, ResourceVersion: rv}
}

// follow calls seen with every state the object takes, until seen reports
// done or fails, or ctx ends (with ctx's error): first its state now, from
// a list, then each change after the list's resourceVersion, so that no
// change between the two is missed. A nil object means there is none by
// that name (not yet, or no longer). A watch the server ends is reopened
// from the last version seen; one that expired starts over from a new list.
func (o followedObject) follow(ctx context.Context, seen func(kinds.Object) (bool, error)) error {
	for {
		rv, done, err := o.current(ctx, seen)
		if done || err != nil {
			return err
		}
		err = o.watchFrom(ctx, rv, seen)
		if !errors.Is(err, errWatchExpired) {
			return err
		}
	}
}

// current passes the object as a list finds it to seen and returns the
// list's resourceVersion.
func (o followedObject) current(ctx context.Context, seen func(kinds.Object) (bool, error)) (string, bool, error) {
	objs, rv, err := o.rc.List(ctx, o.ns, o.options(""))
	if err != nil {
		return "", false, ctxOr(ctx, err)
	}
	var obj kinds.Object
	if len(objs) > 0 {
		obj = objs[0]
	}
	done, err := seen(obj)
	return rv, done, err
}

// watchFrom passes every change after rv to seen; nil means seen is done.
// A stream that ends having delivered nothing (a rate limit's refusal, a
// server going away) is reopened after a back-off (250 ms doubling to 10 s,
// jittered), not at once.
func (o followedObject) watchFrom(ctx context.Context, rv string, seen func(kinds.Object) (bool, error)) error {
	bo := backoff.Backoff{Initial: 250 * time.Millisecond, Max: 10 * time.Second}
	for {
		next, done, err := o.watchStream(ctx, rv, seen)
		if done || err != nil {
			return err
		}
		if next != rv {
			rv = next
			bo.Reset()
			continue
		}
		if err := backoff.Sleep(ctx, bo.Next()); err != nil {
			return err
		}
	}
}

// watchStream reads one watch stream from rv until seen is done or the
// server ends the stream; it returns the last version seen.
func (o followedObject) watchStream(ctx context.Context, rv string, seen func(kinds.Object) (bool, error)) (string, bool, error) {
	// The stream ends with this function, not with the command.
	streamCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := o.rc.Watch(streamCtx, o.ns, o.options(rv))
	if err != nil {
		return rv, false, ctxOr(ctx, err)
	}
	for {
		ev, err := w.Next()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return rv, false, ctx.Err()
		case client.IsExpired(err):
			return rv, false, errWatchExpired
		case client.IsStreamEnd(err) || isResourceExhausted(err):
			return rv, false, nil // re-watch from the last version seen
		default:
			return rv, false, err
		}
		if ev.ResourceVersion != "" {
			rv = ev.ResourceVersion
		}
		var obj kinds.Object
		switch ev.Type {
		case client.Bookmark:
			continue
		case client.Deleted:
		default:
			obj = ev.Object
		}
		if done, err := seen(obj); done || err != nil {
			return rv, done, err
		}
	}
}

// ctxOr is ctx's error once ctx has ended (a request cut short by it
// fails with a transport error that says less), else err.
func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// timedOut reports that err ended a wait because wctx's deadline passed,
// not because ctx, the command's own, was interrupted. The server may see
// the deadline a moment before the client's context does.
func timedOut(ctx, wctx context.Context, err error) bool {
	return ctx.Err() == nil && (wctx.Err() != nil || status.Code(err) == codes.DeadlineExceeded)
}
