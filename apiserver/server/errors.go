package server

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skiff-dev/skiff/apiserver/admission"
	"github.com/skiff-dev/skiff/apiserver/storage"
	"github.com/skiff-dev/skiff/apiserver/watchcache"
	"github.com/skiff-dev/skiff/internal/kinds"
)

// apiError turns an internal error into the gRPC status a client sees, with
// kubectl's wording: `deployments.apps "web" not found`.
func apiError(info *kinds.Info, name string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok && status.Code(err) != codes.Unknown {
		return err
	}
	var invalid *admission.InvalidError
	switch {
	case errors.As(err, &invalid):
		return status.Error(codes.InvalidArgument, invalid.Error())
	case errors.Is(err, storage.ErrNotFound):
		return status.Errorf(codes.NotFound, "%s %q not found", info.GroupResource(), name)
	case errors.Is(err, storage.ErrAlreadyExists):
		return status.Errorf(codes.AlreadyExists, "%s %q already exists", info.GroupResource(), name)
	case errors.Is(err, storage.ErrConflict):
		return status.Errorf(codes.Aborted, "Operation cannot be fulfilled on %s %q: the object has been modified; please apply your changes to the latest version and try again", info.GroupResource(), name)
	case errors.Is(err, watchcache.ErrExpired), errors.Is(err, watchcache.ErrReset):
		return status.Error(codes.OutOfRange, err.Error())
	case errors.Is(err, watchcache.ErrTooSlow):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, watchcache.ErrNotFresh):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

func invalidArg(format string, args ...any) error {
	return status.Error(codes.InvalidArgument, fmt.Sprintf(format, args...))
}
