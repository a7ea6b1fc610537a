package cmd

import (
	"context"
	"errors"

	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
)

// updateRetries bounds how often a read-modify-write is retried when the
// object changed under it.
const updateRetries = 5

// errNoChange tells updateObject that mutate left the object as it was, so
// nothing is sent.
var errNoChange = errors.New("no change")

// updateObject reads an object, lets mutate change it and writes it back,
// re-reading and retrying on conflicts. It returns the stored object and
// whether anything was written; mutate returning errNoChange skips the
// write.
func updateObject(ctx context.Context, rc *client.ResourceClient[kinds.Object], ns, name string, mutate func(kinds.Object) error) (kinds.Object, bool, error) {
	var lastErr error
	for range updateRetries {
		obj, err := rc.Get(ctx, ns, name)
		if err != nil {
			return nil, false, withObject(err, rc.Info(), name)
		}
		before := proto.Clone(obj)
		if err := mutate(obj); err != nil {
			if errors.Is(err, errNoChange) {
				return obj, false, nil
			}
			return nil, false, err
		}
		if proto.Equal(before, obj) {
			return obj, false, nil
		}
		updated, err := rc.Update(ctx, obj)
		if client.IsConflict(err) {
			lastErr = err
			continue
		}
		if err != nil {
			return nil, false, withObject(err, rc.Info(), name)
		}
		return updated, true, nil
	}
	return nil, false, withObject(lastErr, rc.Info(), name)
}

// singleTarget reads "TYPE NAME" or "TYPE/NAME" for commands that act on
// one object.
func singleTarget(args []string) (resourceRequest, error) {
	reqs, err := parseResourceArgs(args)
	if err != nil {
		return resourceRequest{}, err
	}
	if len(reqs) != 1 || len(reqs[0].names) != 1 {
		return resourceRequest{}, errors.New("exactly one TYPE NAME (or TYPE/NAME) is required")
	}
	return reqs[0], nil
}
