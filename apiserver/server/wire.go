package server

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/skiff-dev/skiff/apiserver/storage"
	"github.com/skiff-dev/skiff/apiserver/watchcache"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// Codec is the gRPC codec the API service must be served with
// (grpc.ForceServerCodecV2): protobuf, except that messages the server
// encoded once for many streams pass through as they are. A watch event goes
// to every watcher of its kind; encoding it once instead of once per watcher
// is most of what a delivery costs the server.
func Codec() encoding.CodecV2 {
	return codec{proto: encoding.GetCodecV2(protocodec.Name)}
}

type codec struct{ proto encoding.CodecV2 }

// encodedMessage is a message in its wire form, shared by every stream it is
// sent on: nobody may change its bytes.
type encodedMessage struct {
	// data is one SliceBuffer, which is not pooled: gRPC freeing it after
	// a write leaves the shared bytes alone, and sending it allocates
	// nothing.
	data mem.BufferSlice
}

func newEncodedMessage(wire []byte) *encodedMessage {
	return &encodedMessage{data: mem.BufferSlice{mem.SliceBuffer(wire)}}
}

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*encodedMessage); ok {
		return m.data, nil
	}
	return c.proto.Marshal(v)
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

// Name keeps the content subtype of plain protobuf: clients see no
// difference.
func (c codec) Name() string { return c.proto.Name() }

// typeURLs maps each kind to its google.protobuf.Any type URL.
func typeURLs() map[*kinds.Info]string {
	out := map[*kinds.Info]string{}
	for _, info := range kinds.All() {
		out[info] = "type.googleapis.com/" + string(info.New().ProtoReflect().Descriptor().FullName())
	}
	return out
}

// rawAny wraps an object's encoding in an Any without decoding it.
func (s *Server) rawAny(info *kinds.Info, encoded []byte) *anypb.Any {
	url, ok := s.typeURLs[info]
	if !ok {
		url = "type.googleapis.com/" + string(info.New().ProtoReflect().Descriptor().FullName())
	}
	return &anypb.Any{TypeUrl: url, Value: encoded}
}

// watchEvent is ev as a WatchEvent on the wire, encoded once for every
// watcher that receives ev.
func (s *Server) watchEvent(info *kinds.Info, ev *watchcache.Event) (*encodedMessage, error) {
	m := ev.Wire(func(ev *watchcache.Event) any {
		wire, err := proto.Marshal(&api.WatchEvent{Type: ev.Type, Object: s.rawAny(info, ev.Encoded), ResourceVersion: storage.FormatRevision(ev.Rev)})
		if err != nil {
			return fmt.Errorf("encode %s event at %d: %w", info.Kind, ev.Rev, err)
		}
		return newEncodedMessage(wire)
	})
	if err, ok := m.(error); ok {
		return nil, err
	}
	return m.(*encodedMessage), nil
}
