package client

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/internal/watchwire"
	"github.com/skiff-dev/skiff/proto/api"
)

// watchCodec decodes watch events for one kind without the intermediate
// WatchEvent and Any messages: the object is unmarshalled from the frame
// the transport received. Every other message goes through protobuf.
type watchCodec struct {
	proto encoding.CodecV2
}

func newWatchCodec() watchCodec {
	return watchCodec{proto: encoding.GetCodecV2(protocodec.Name)}
}

func (c watchCodec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c watchCodec) Unmarshal(data mem.BufferSlice, v any) error {
	f, ok := v.(*watchFrame)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	// proto.Unmarshal copies what it keeps: buf may go back to the pool.
	return f.unmarshal(buf.ReadOnlyData())
}

// Name keeps plain protobuf's content subtype.
func (c watchCodec) Name() string { return c.proto.Name() }

// watchFrame is one received api.WatchEvent, its object decoded as info's
// kind.
type watchFrame struct {
	info    *kinds.Info
	typeURL string

	typ    api.WatchEvent_Type
	object kinds.Object // nil for bookmarks
	rv     string
}

// reset forgets the last event, keeping the kind.
func (f *watchFrame) reset() {
	f.typ, f.object, f.rv = api.WatchEvent_TYPE_UNSPECIFIED, nil, ""
}

func (f *watchFrame) unmarshal(b []byte) error {
	// The object field; occurrences after the first are appended, which
	// merges them as protobuf does.
	var object []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("decode watch event: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == watchwire.EventTypeField && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return fmt.Errorf("decode watch event type: %w", protowire.ParseError(n))
			}
			f.typ = api.WatchEvent_Type(v)
			b = b[n:]
		case num == watchwire.EventObjectField && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("decode watch event object: %w", protowire.ParseError(n))
			}
			if object == nil {
				object = v
			} else {
				object = append(object[:len(object):len(object)], v...)
			}
			b = b[n:]
		case num == watchwire.EventResourceVersionField && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("decode watch event resourceVersion: %w", protowire.ParseError(n))
			}
			f.rv = string(v)
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("decode watch event: %w", protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	if object == nil {
		return nil
	}
	url, value, err := splitAny(object)
	if err != nil {
		return fmt.Errorf("decode watch event object: %w", err)
	}
	if string(url) != f.typeURL {
		return fmt.Errorf("decode %s: watch event carries %q", f.info.Kind, url)
	}
	obj := f.info.New()
	if err := proto.Unmarshal(value, obj); err != nil {
		return fmt.Errorf("decode %s: %w", f.info.Kind, err)
	}
	f.object = obj
	return nil
}

// splitAny returns the type URL and value of an encoded
// google.protobuf.Any, the last occurrence of each winning as in protobuf.
func splitAny(b []byte) (url, value []byte, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, nil, protowire.ParseError(n)
		}
		b = b[n:]
		if typ == protowire.BytesType && (num == watchwire.AnyTypeURLField || num == watchwire.AnyValueField) {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, nil, protowire.ParseError(n)
			}
			if num == watchwire.AnyTypeURLField {
				url = v
			} else {
				value = v
			}
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil, nil, protowire.ParseError(n)
		}
		b = b[n:]
	}
	return url, value, nil
}
