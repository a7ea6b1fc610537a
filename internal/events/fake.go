package events

import (
	"fmt"

	"github.com/skiff-dev/skiff/internal/kinds"
)

// FakeRecorder is an EventRecorder for tests: each event arrives on Events
// as "Type Reason Message" (client-go's record.FakeRecorder format). Events
// are dropped when the channel is full or nil.
type FakeRecorder struct {
	Events chan string
}

// NewFakeRecorder buffers up to size events.
func NewFakeRecorder(size int) *FakeRecorder { return &FakeRecorder{Events: make(chan string, size)} }

// Eventf implements EventRecorder.
func (f *FakeRecorder) Eventf(_ kinds.Object, eventType, reason, format string, args ...any) {
	if f.Events == nil {
		return
	}
	select {
	case f.Events <- eventType + " " + reason + " " + fmt.Sprintf(format, args...):
	default:
	}
}

var (
	_ EventRecorder = (*Recorder)(nil)
	_ EventRecorder = (*FakeRecorder)(nil)
)
