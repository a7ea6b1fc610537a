package server

import (
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/skiff-dev/skiff/apiserver/storage"
	"github.com/skiff-dev/skiff/apiserver/watchcache"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/internal/watchwire"
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
	// data holds SliceBuffers, which are not pooled: gRPC freeing them
	// after a write leaves the shared bytes alone, and sending them
	// allocates nothing.
	data mem.BufferSlice
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

func (s *Server) typeURL(info *kinds.Info) string {
	if url, ok := s.typeURLs[info]; ok {
		return url
	}
	return "type.googleapis.com/" + string(info.New().ProtoReflect().Descriptor().FullName())
}

// rawAny wraps an object's encoding in an Any without decoding it.
func (s *Server) rawAny(info *kinds.Info, encoded []byte) *anypb.Any {
	return &anypb.Any{TypeUrl: s.typeURL(info), Value: encoded}
}

// watchEvent is ev as an api.WatchEvent on the wire, encoded once for every
// watcher that receives ev. The object's bytes are not copied: the message
// is a head (type, Any header), the cached encoding, and a tail
// (resourceVersion), so an event in the watch cache's ring holds only a few
// dozen bytes more once sent.
func (s *Server) watchEvent(info *kinds.Info, ev *watchcache.Event) *encodedMessage {
	return ev.Wire(func(ev *watchcache.Event) any {
		url := s.typeURL(info)
		anyLen := protowire.SizeTag(watchwire.AnyTypeURLField) + protowire.SizeBytes(len(url)) +
			protowire.SizeTag(watchwire.AnyValueField) + protowire.SizeBytes(len(ev.Encoded))
		var head []byte
		if ev.Type != api.WatchEvent_TYPE_UNSPECIFIED {
			head = protowire.AppendTag(head, watchwire.EventTypeField, protowire.VarintType)
			head = protowire.AppendVarint(head, uint64(ev.Type))
		}
		head = protowire.AppendTag(head, watchwire.EventObjectField, protowire.BytesType)
		head = protowire.AppendVarint(head, uint64(anyLen))
		head = protowire.AppendTag(head, watchwire.AnyTypeURLField, protowire.BytesType)
		head = protowire.AppendString(head, url)
		head = protowire.AppendTag(head, watchwire.AnyValueField, protowire.BytesType)
		head = protowire.AppendVarint(head, uint64(len(ev.Encoded)))
		tail := protowire.AppendTag(nil, watchwire.EventResourceVersionField, protowire.BytesType)
		tail = protowire.AppendString(tail, storage.FormatRevision(ev.Rev))
		return &encodedMessage{data: mem.BufferSlice{mem.SliceBuffer(head), mem.SliceBuffer(ev.Encoded), mem.SliceBuffer(tail)}}
	}).(*encodedMessage)
}
