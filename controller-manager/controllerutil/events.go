package controllerutil

import "github.com/skiff-dev/skiff/internal/kinds"

// Event types, as in Kubernetes.
const (
	EventNormal  = "Normal"
	EventWarning = "Warning"
)

// EventRecorder is the part of internal/events' recorder controllers use;
// an interface so unit tests can record events in memory.
type EventRecorder interface {
	Eventf(obj kinds.Object, eventType, reason, format string, args ...any)
}
