// Package watchwire holds the protobuf field numbers of a watch event on
// the wire (api.WatchEvent and the google.protobuf.Any inside it), for the
// apiserver, which encodes each event once for all its watchers, and the
// client, which decodes the object straight from the received bytes.
package watchwire

import "google.golang.org/protobuf/encoding/protowire"

// Field numbers of api.WatchEvent (proto/api/service.proto) and of
// google.protobuf.Any.
const (
	EventTypeField            protowire.Number = 1
	EventObjectField          protowire.Number = 2
	EventResourceVersionField protowire.Number = 3
	AnyTypeURLField           protowire.Number = 1
	AnyValueField             protowire.Number = 2
)
