package cmd

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skiff-dev/skiff/internal/kinds"
)

// objectError is a server error about one named object, worded as kubectl
// words it (`deployments.apps "web" not found`).
type objectError struct {
	err  error
	info *kinds.Info
	name string
	// action prefixes the message, as `error when creating "web.yaml": `.
	action string
}

func (e *objectError) Error() string { return e.message() }
func (e *objectError) Unwrap() error { return e.err }

func (e *objectError) message() string {
	st, _ := status.FromError(e.err)
	var msg string
	switch st.Code() {
	case codes.NotFound:
		msg = fmt.Sprintf("%s %q not found", e.info.GroupResource(), e.name)
	case codes.AlreadyExists:
		msg = fmt.Sprintf("%s %q already exists", e.info.GroupResource(), e.name)
	case codes.Aborted:
		msg = fmt.Sprintf("Operation cannot be fulfilled on %s %q: the object has been modified; please apply your changes to the latest version and try again", e.info.GroupResource(), e.name)
	default:
		msg = st.Message()
	}
	return e.action + msg
}

// withObject attaches the kind and name to a server error so it prints
// the kubectl way; other errors are returned unchanged.
func withObject(err error, info *kinds.Info, name string) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); !ok {
		return err
	}
	return &objectError{err: err, info: info, name: name}
}

// notFound is the server's error for an object found missing by a list
// rather than a get, worded as kubectl words it.
func notFound(ref objectRef) error {
	return withObject(status.Error(codes.NotFound, "not found"), ref.info, ref.name)
}

// serverErrorMessage formats errors that came from the apiserver.
func serverErrorMessage(err error) (string, bool) {
	var oe *objectError
	if errors.As(err, &oe) {
		st, _ := status.FromError(oe.err)
		if st.Code() == codes.InvalidArgument && oe.action == "" {
			// Admission already says `ConfigMap "x" is invalid: `; kubectl
			// says it once, in its own words.
			msg := st.Message()
			if _, causes, ok := strings.Cut(msg, fmt.Sprintf("%q is invalid: ", oe.name)); ok {
				msg = causes
			}
			return fmt.Sprintf("The %s %q is invalid: %s", oe.info.Kind, oe.name, msg), true
		}
		return fmt.Sprintf("Error from server (%s): %s", reason(st.Code()), oe.message()), true
	}
	st, ok := status.FromError(err)
	if !ok || st.Code() == codes.OK {
		return "", false
	}
	if st.Code() == codes.Unavailable {
		return fmt.Sprintf("Unable to connect to the server: %s", st.Message()), true
	}
	if st.Code() == codes.Canceled {
		return "error: " + st.Message(), true
	}
	return fmt.Sprintf("Error from server (%s): %s", reason(st.Code()), st.Message()), true
}

// reason is the Kubernetes status reason kubectl prints for a gRPC code:
// "Error from server (NotFound): ...".
func reason(c codes.Code) string {
	switch c {
	case codes.NotFound:
		return "NotFound"
	case codes.AlreadyExists:
		return "AlreadyExists"
	case codes.InvalidArgument:
		return "Invalid"
	case codes.Aborted:
		return "Conflict"
	case codes.FailedPrecondition:
		return "BadRequest"
	case codes.OutOfRange:
		return "Expired"
	case codes.Unauthenticated:
		return "Unauthorized"
	case codes.PermissionDenied:
		return "Forbidden"
	case codes.ResourceExhausted:
		return "TooManyRequests"
	case codes.DeadlineExceeded:
		return "Timeout"
	case codes.Internal:
		return "InternalError"
	case codes.Unimplemented:
		return "MethodNotAllowed"
	}
	return c.String()
}

// isResourceExhausted reports a watch the server cut off for falling
// behind: re-watch from the last version seen.
func isResourceExhausted(err error) bool { return status.Code(err) == codes.ResourceExhausted }
