package watchwire

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/skiff-dev/skiff/proto/api"
)

// The constants must follow the .proto files: a renumbered field would
// otherwise corrupt every watch event.
func TestFieldNumbersMatchTheProtoDescriptors(t *testing.T) {
	event := (&api.WatchEvent{}).ProtoReflect().Descriptor().Fields()
	anyMsg := (&anypb.Any{}).ProtoReflect().Descriptor().Fields()
	tests := []struct {
		fields protoreflect.FieldDescriptors
		name   protoreflect.Name
		want   protowire.Number
	}{
		{event, "type", EventTypeField},
		{event, "object", EventObjectField},
		{event, "resource_version", EventResourceVersionField},
		{anyMsg, "type_url", AnyTypeURLField},
		{anyMsg, "value", AnyValueField},
	}
	for _, tt := range tests {
		f := tt.fields.ByName(tt.name)
		if f == nil {
			t.Errorf("no field %s", tt.name)
			continue
		}
		if got := protowire.Number(f.Number()); got != tt.want {
			t.Errorf("field %s is number %d in the proto, %d here", tt.name, got, tt.want)
		}
	}
}
