package watchcache

import (
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// metadataField is the field number of metadata in every kind's message
// (see proto/api): objects are stored without their resourceVersion, which
// is the etcd revision and known only after the write.
const metadataField = 3

// resourceVersionField is ObjectMeta.resource_version.
const resourceVersionField = 5

// WithResourceVersion returns stored bytes with metadata.resourceVersion set
// to rev, without decoding: protobuf merges a repeated occurrence of an
// embedded message field into the first, and the last scalar wins.
func WithResourceVersion(stored []byte, rev int64) []byte {
	rv := strconv.FormatInt(rev, 10)
	var meta []byte
	meta = protowire.AppendTag(meta, resourceVersionField, protowire.BytesType)
	meta = protowire.AppendString(meta, rv)
	out := make([]byte, 0, len(stored)+len(meta)+4)
	out = append(out, stored...)
	out = protowire.AppendTag(out, metadataField, protowire.BytesType)
	out = protowire.AppendBytes(out, meta)
	return out
}
