package client

import (
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/internal/watchwire"
	"github.com/skiff-dev/skiff/proto/api"
)

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWatchCodecDecodesEventsAsProtobufWould(t *testing.T) {
	podInfo, _ := kinds.ByResource("pods")
	pod := &api.Pod{
		Metadata: &api.ObjectMeta{Name: "web-1", Namespace: "default", ResourceVersion: "42", Labels: map[string]string{"app": "web"}},
		Spec:     &api.PodSpec{NodeName: "node-a", Containers: []*api.Container{{Name: "web", Image: "nginx"}}},
	}
	podAny, err := anypb.New(pod)
	if err != nil {
		t.Fatal(err)
	}
	added := mustMarshal(t, &api.WatchEvent{Type: api.WatchEvent_ADDED, Object: podAny, ResourceVersion: "42"})
	// The object field split in two occurrences: protobuf merges them.
	split := protowire.AppendTag(nil, watchwire.EventTypeField, protowire.VarintType)
	split = protowire.AppendVarint(split, uint64(api.WatchEvent_MODIFIED))
	split = protowire.AppendTag(split, watchwire.EventObjectField, protowire.BytesType)
	split = protowire.AppendBytes(split, mustMarshal(t, &anypb.Any{TypeUrl: podAny.TypeUrl}))
	split = protowire.AppendTag(split, watchwire.EventObjectField, protowire.BytesType)
	split = protowire.AppendBytes(split, mustMarshal(t, &anypb.Any{Value: podAny.Value}))
	// A field this client does not know is skipped.
	split = protowire.AppendTag(split, 99, protowire.BytesType)
	split = protowire.AppendString(split, "from a newer server")
	split = protowire.AppendTag(split, watchwire.EventResourceVersionField, protowire.BytesType)
	split = protowire.AppendString(split, "43")
	nodeAny, err := anypb.New(&api.Node{Metadata: &api.ObjectMeta{Name: "node-a"}})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		wire    []byte
		want    *api.WatchEvent // Object decoded as a pod when set
		wantErr bool
	}{
		{name: "added pod", wire: added, want: &api.WatchEvent{Type: api.WatchEvent_ADDED, Object: podAny, ResourceVersion: "42"}},
		{name: "bookmark has no object", wire: mustMarshal(t, &api.WatchEvent{Type: api.WatchEvent_BOOKMARK, ResourceVersion: "50"}),
			want: &api.WatchEvent{Type: api.WatchEvent_BOOKMARK, ResourceVersion: "50"}},
		{name: "object in two occurrences, unknown field", wire: split, want: &api.WatchEvent{Type: api.WatchEvent_MODIFIED, Object: podAny, ResourceVersion: "43"}},
		{name: "another kind is refused", wire: mustMarshal(t, &api.WatchEvent{Type: api.WatchEvent_ADDED, Object: nodeAny}), wantErr: true},
		{name: "truncated frame is refused", wire: added[:len(added)-3], wantErr: true},
	}
	codec := newWatchCodec()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := watchFrame{info: podInfo, typeURL: podAny.TypeUrl}
			err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(tt.wire)}, &f)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("decoded %v, want an error", f.object)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.typ != tt.want.Type || f.rv != tt.want.ResourceVersion {
				t.Errorf("type %v rv %q, want %v %q", f.typ, f.rv, tt.want.Type, tt.want.ResourceVersion)
			}
			if tt.want.Object == nil {
				if f.object != nil {
					t.Errorf("object %v, want none", f.object)
				}
				return
			}
			if !proto.Equal(f.object, pod) {
				t.Errorf("object %v, want %v", f.object, pod)
			}
		})
	}
}

func TestWatchCodecLeavesOtherMessagesToProtobuf(t *testing.T) {
	codec := newWatchCodec()
	req := &api.WatchRequest{Resource: "pods", Namespace: "default", ResourceVersion: "7", AllowBookmarks: true}
	data, err := codec.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	got := &api.WatchRequest{}
	if err := codec.Unmarshal(data, got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, req) {
		t.Errorf("round trip gave %v, want %v", got, req)
	}
}
