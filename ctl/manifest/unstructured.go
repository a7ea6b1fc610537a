// Package manifest is the Kubernetes-shaped JSON and YAML form of Skiff's API
// objects: it decodes manifests (files, directories, stdin; YAML or JSON,
// multi-document) into typed objects, rejecting unknown fields, and encodes
// objects back into the generic trees that ctl prints and apply merges.
//
// It must never talk to the API server: callers decide what to send.
package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"sigs.k8s.io/yaml"
)

// ToUnstructured returns msg as a generic JSON tree (maps, slices, strings,
// json.Number, bools) with Kubernetes field names. protojson writes 64-bit
// integers as strings; Kubernetes writes them as numbers, so they are turned
// back into numbers here.
func ToUnstructured(msg proto.Message) (map[string]any, error) {
	data, err := protojson.MarshalOptions{UseProtoNames: false}.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", msg.ProtoReflect().Descriptor().Name(), err)
	}
	tree, err := decodeJSON(data)
	if err != nil {
		return nil, err
	}
	obj, ok := tree.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("encode %s: not a JSON object", msg.ProtoReflect().Descriptor().Name())
	}
	fixInt64s(msg.ProtoReflect().Descriptor(), obj)
	return obj, nil
}

// KubeName is the Kubernetes spelling of a protojson field name: acronyms
// at the end are upper case ("clusterIp" → "clusterIP", "podIps" →
// "podIPs", "containerId" → "containerID", "podCidr" → "podCIDR").
func KubeName(jsonName string) string {
	for _, suffix := range []struct{ proto, kube string }{
		{"Ips", "IPs"}, {"Ip", "IP"}, {"Id", "ID"}, {"Cidrs", "CIDRs"}, {"Cidr", "CIDR"},
	} {
		if base, ok := strings.CutSuffix(jsonName, suffix.proto); ok && base != "" {
			return base + suffix.kube
		}
	}
	return jsonName
}

// renameKeys moves obj[from] to obj[to] for every pair, after a walk over
// obj has finished (a map must not gain keys while it is ranged over).
func renameKeys(obj map[string]any, renames map[string]string) {
	for from, to := range renames {
		obj[to] = obj[from]
		delete(obj, from)
	}
}

// fieldByKubeName finds the field a Kubernetes field name denotes.
func fieldByKubeName(md protoreflect.MessageDescriptor, name string) protoreflect.FieldDescriptor {
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		if fd := fields.Get(i); KubeName(fd.JSONName()) == name {
			return fd
		}
	}
	return nil
}

// toProtoNames renames Kubernetes field names in obj to protojson's, in
// place, so protojson can read the tree.
func toProtoNames(md protoreflect.MessageDescriptor, obj map[string]any) {
	if isWellKnown(md) {
		return
	}
	renames := map[string]string{}
	defer func() { renameKeys(obj, renames) }()
	for key, v := range obj {
		fd := fieldByKubeName(md, key)
		if fd == nil {
			continue
		}
		if fd.JSONName() != key {
			renames[key] = fd.JSONName()
		}
		if fd.Kind() != protoreflect.MessageKind {
			continue
		}
		switch {
		case fd.IsMap():
			if m, ok := v.(map[string]any); ok && fd.MapValue().Kind() == protoreflect.MessageKind {
				for _, mv := range m {
					if mm, ok := mv.(map[string]any); ok {
						toProtoNames(fd.MapValue().Message(), mm)
					}
				}
			}
		case fd.IsList():
			l, _ := v.([]any)
			for _, e := range l {
				if m, ok := e.(map[string]any); ok {
					toProtoNames(fd.Message(), m)
				}
			}
		default:
			if m, ok := v.(map[string]any); ok {
				toProtoNames(fd.Message(), m)
			}
		}
	}
}

// FromUnstructured fills msg from a generic JSON tree with Kubernetes field
// names. Unknown fields are an error; use Validate first for a message that
// names the field's path.
func FromUnstructured(tree map[string]any, msg proto.Message) error {
	tree, _ = deepCopy(tree).(map[string]any)
	toProtoNames(msg.ProtoReflect().Descriptor(), tree)
	data, err := json.Marshal(tree)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	if err := protojson.Unmarshal(data, msg); err != nil {
		return fmt.Errorf("decode %s: %w", msg.ProtoReflect().Descriptor().Name(), err)
	}
	return nil
}

func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode JSON: %w", err)
	}
	return v, nil
}

func isWellKnown(md protoreflect.MessageDescriptor) bool {
	return md.FullName().Parent() == "google.protobuf"
}

func isInt64(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
		protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return true
	}
	return false
}

// fixInt64s walks obj alongside its message descriptor, turns the string
// form of 64-bit integers into numbers and field names into Kubernetes'
// spelling.
func fixInt64s(md protoreflect.MessageDescriptor, obj map[string]any) {
	if isWellKnown(md) {
		return
	}
	fields := md.Fields()
	renames := map[string]string{}
	defer func() { renameKeys(obj, renames) }()
	for key, v := range obj {
		fd := fields.ByJSONName(key)
		if fd == nil {
			continue
		}
		if kube := KubeName(key); kube != key {
			renames[key] = kube
		}
		switch {
		case fd.IsMap():
			m, _ := v.(map[string]any)
			for mk, mv := range m {
				m[mk] = fixValue(fd.MapValue(), mv)
			}
		case fd.IsList():
			l, _ := v.([]any)
			for i := range l {
				l[i] = fixValue(fd, l[i])
			}
		default:
			obj[key] = fixValue(fd, v)
		}
	}
}

func fixValue(fd protoreflect.FieldDescriptor, v any) any {
	if isInt64(fd.Kind()) {
		if s, ok := v.(string); ok {
			if _, err := strconv.ParseInt(s, 10, 64); err == nil {
				return json.Number(s)
			}
		}
		return v
	}
	if fd.Kind() == protoreflect.MessageKind {
		if m, ok := v.(map[string]any); ok {
			fixInt64s(fd.Message(), m)
		}
	}
	return v
}

// Validate reports the first field in tree that md does not have, by its
// path ("spec.template.spec.containers[0].imagee"), and values whose JSON
// type cannot fit the field.
func Validate(md protoreflect.MessageDescriptor, tree map[string]any) error {
	return validateMessage(md, tree, "")
}

// UnknownFieldError names a field a manifest sets that the kind lacks.
type UnknownFieldError struct {
	Path string
}

func (e *UnknownFieldError) Error() string { return fmt.Sprintf("unknown field %q", e.Path) }

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func validateMessage(md protoreflect.MessageDescriptor, obj map[string]any, path string) error {
	if isWellKnown(md) {
		return nil
	}
	for key, v := range obj {
		fd := fieldByKubeName(md, key)
		if fd == nil {
			return &UnknownFieldError{Path: join(path, key)}
		}
		if v == nil {
			continue
		}
		p := join(path, key)
		switch {
		case fd.IsMap():
			m, ok := v.(map[string]any)
			if !ok {
				return fmt.Errorf("field %q: expected an object, got %s", p, jsonType(v))
			}
			for mk, mv := range m {
				if err := validateValue(fd.MapValue(), mv, p+"."+mk); err != nil {
					return err
				}
			}
		case fd.IsList():
			l, ok := v.([]any)
			if !ok {
				return fmt.Errorf("field %q: expected a list, got %s", p, jsonType(v))
			}
			for i, e := range l {
				if err := validateValue(fd, e, fmt.Sprintf("%s[%d]", p, i)); err != nil {
					return err
				}
			}
		default:
			if err := validateValue(fd, v, p); err != nil {
				return err
			}
		}
	}
	return nil
}

func validateValue(fd protoreflect.FieldDescriptor, v any, path string) error {
	if v == nil {
		return nil
	}
	if fd.Kind() == protoreflect.MessageKind {
		if isWellKnown(fd.Message()) {
			return nil
		}
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("field %q: expected an object, got %s", path, jsonType(v))
		}
		return validateMessage(fd.Message(), m, path)
	}
	return nil
}

func jsonType(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

// MarshalJSON writes v as kubectl does: four-space indentation and a
// trailing newline.
func MarshalJSON(v any) ([]byte, error) {
	out, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return nil, fmt.Errorf("encode JSON: %w", err)
	}
	return append(out, '\n'), nil
}

// MarshalYAML writes v as kubectl does (sorted keys, two-space indentation).
func MarshalYAML(v any) ([]byte, error) {
	out, err := yaml.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode YAML: %w", err)
	}
	return out, nil
}
