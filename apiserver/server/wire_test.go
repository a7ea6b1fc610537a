package server

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/apiserver/watchcache"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

func TestWatchEventIsEncodedOnceAndDecodesAsProtobuf(t *testing.T) {
	s := &Server{typeURLs: typeURLs()}
	info, _ := kinds.ByResource("pods")
	stored, err := proto.Marshal(&api.Pod{Metadata: &api.ObjectMeta{Name: "web", Namespace: "default", Labels: map[string]string{"app": "web"}}})
	if err != nil {
		t.Fatal(err)
	}
	c := Codec()
	for _, typ := range []api.WatchEvent_Type{api.WatchEvent_ADDED, api.WatchEvent_MODIFIED, api.WatchEvent_DELETED} {
		t.Run(typ.String(), func(t *testing.T) {
			ev := &watchcache.Event{Type: typ, Encoded: watchcache.WithResourceVersion(stored, 1234567), Rev: 1234567}
			first := s.watchEvent(info, ev)
			if second := s.watchEvent(info, ev); first != second {
				t.Error("the event was encoded twice")
			}
			data, err := c.Marshal(first)
			if err != nil {
				t.Fatal(err)
			}
			wire := data.Materialize()
			got := &api.WatchEvent{}
			if err := proto.Unmarshal(wire, got); err != nil {
				t.Fatal(err)
			}
			want := &api.WatchEvent{Type: typ, Object: s.rawAny(info, ev.Encoded), ResourceVersion: "1234567"}
			if !proto.Equal(got, want) {
				t.Errorf("decoded %v, want %v", got, want)
			}
			pod := &api.Pod{}
			if err := got.Object.UnmarshalTo(pod); err != nil {
				t.Fatal(err)
			}
			if pod.Metadata.Name != "web" || pod.Metadata.ResourceVersion != "1234567" {
				t.Errorf("pod %v, want web at resourceVersion 1234567", pod.Metadata)
			}
			// gRPC frees what it sent: the shared bytes must survive for the
			// next watcher.
			data.Free()
			again, err := c.Marshal(first)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Materialize(), wire) {
				t.Error("a second send carries other bytes")
			}
		})
	}
}

func TestCodecEncodesOtherMessagesAsProtobuf(t *testing.T) {
	c := Codec()
	bookmark := &api.WatchEvent{Type: api.WatchEvent_BOOKMARK, ResourceVersion: "9"}
	data, err := c.Marshal(bookmark)
	if err != nil {
		t.Fatal(err)
	}
	got := &api.WatchEvent{}
	if err := c.Unmarshal(data, got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, bookmark) {
		t.Errorf("round trip gave %v, want %v", got, bookmark)
	}
}
