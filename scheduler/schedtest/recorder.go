package schedtest

import (
	"fmt"
	"sync"

	"github.com/skiff-dev/skiff/internal/kinds"
)

// Event is one recorded Eventf call.
type Event struct {
	Key, Type, Reason, Message string
}

// Recorder is an in-memory event recorder.
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

// Eventf records an event.
func (r *Recorder) Eventf(obj kinds.Object, eventType, reason, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, Event{Key: kinds.Key(obj), Type: eventType, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

// Find returns the events about key with reason, oldest first.
func (r *Recorder) Find(key, reason string) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.events {
		if e.Key == key && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}
