package controllerutil

import (
	"context"
	"errors"

	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
)

// ErrReplaced means the object was deleted and re-created under the same
// name while being updated: the change was meant for the old one.
var ErrReplaced = errors.New("object was replaced")

// Update applies mutate to a copy of obj and writes it with Update. On a
// conflict it re-reads the object and applies mutate again, as client-go's
// RetryOnConflict is used. mutate reports whether it changed anything;
// nothing is written when it did not. The object must keep its uid, else
// ErrReplaced.
func Update[T kinds.Object](ctx context.Context, rc *client.ResourceClient[T], obj T, mutate func(T) bool) (T, error) {
	m := obj.GetMetadata()
	cur := proto.Clone(obj).(T)
	var out T
	err := RetryOnConflict(ctx, func() error {
		if !mutate(cur) {
			out = cur
			return nil
		}
		var err error
		out, err = rc.Update(ctx, cur)
		if !client.IsConflict(err) {
			return err
		}
		fresh, gerr := rc.Get(ctx, m.GetNamespace(), m.GetName())
		if gerr != nil {
			return gerr
		}
		if fresh.GetMetadata().GetUid() != m.GetUid() {
			return ErrReplaced
		}
		cur = fresh
		return err
	})
	return out, err
}
