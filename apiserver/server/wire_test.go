package server

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/apiserver/watchcache"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

func TestWatchEventIsEncodedOnceAndSentAsIs(t *testing.T) {
	s := &Server{typeURLs: typeURLs()}
	info, _ := kinds.ByResource("pods")
	stored, err := proto.Marshal(&api.Pod{Metadata: &api.ObjectMeta{Name: "web", Namespace: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	ev := &watchcache.Event{Type: api.WatchEvent_ADDED, Encoded: watchcache.WithResourceVersion(stored, 7), Rev: 7}
	first, err := s.watchEvent(info, ev)
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.watchEvent(info, ev)
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Error("the event was encoded twice")
	}

	c := Codec()
	data, err := c.Marshal(first)
	if err != nil {
		t.Fatal(err)
	}
	got := &api.WatchEvent{}
	if err := c.Unmarshal(data, got); err != nil {
		t.Fatal(err)
	}
	if got.Type != api.WatchEvent_ADDED || got.ResourceVersion != "7" || got.Object.GetTypeUrl() != "type.googleapis.com/skiff.v1.Pod" {
		t.Errorf("decoded %v", got)
	}
	pod := &api.Pod{}
	if err := got.Object.UnmarshalTo(pod); err != nil {
		t.Fatal(err)
	}
	if pod.Metadata.Name != "web" || pod.Metadata.ResourceVersion != "7" {
		t.Errorf("pod %v, want web at resourceVersion 7", pod.Metadata)
	}
	// Freeing after a send must leave the shared bytes for the next one.
	data.Free()
	again, err := c.Marshal(first)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Materialize(), data.Materialize()) {
		t.Error("a second send carries other bytes")
	}

	// Everything else is plain protobuf.
	bookmark := &api.WatchEvent{Type: api.WatchEvent_BOOKMARK, ResourceVersion: "9"}
	data, err = c.Marshal(bookmark)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := proto.Marshal(bookmark)
	if !bytes.Equal(data.Materialize(), want) {
		t.Error("a plain message is not encoded as protobuf")
	}
}
