// Package kinds is the table of every API kind Skiff serves: its names,
// scope and Go type. Server, clients and ctl all look kinds up here, so adding
// a kind means one entry here plus its server-side strategy.
//
// It must never hold per-process state: the table is fixed at compile time.
package kinds

import (
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/skiff-dev/skiff/proto/api"
)

// Object is any stored API object: a proto message with Kubernetes metadata.
type Object interface {
	proto.Message
	GetMetadata() *api.ObjectMeta
}

// Info describes one kind.
type Info struct {
	Kind       string   // "Deployment"
	Resource   string   // "deployments": the name used in requests and storage keys
	Singular   string   // "deployment"
	ShortNames []string // "deploy"
	APIVersion string   // "apps/v1", as kubectl prints it
	Group      string   // "apps"; empty for the core group
	Namespaced bool
	// HasStatus says the kind splits spec from status: Update ignores
	// status and UpdateStatus ignores everything else.
	HasStatus bool
	New       func() Object
}

// GroupResource is kubectl's "deployments.apps" form used in error messages.
func (i *Info) GroupResource() string {
	if i.Group == "" {
		return i.Resource
	}
	return i.Resource + "." + i.Group
}

var table = []Info{
	{Kind: "Namespace", Resource: "namespaces", Singular: "namespace", ShortNames: []string{"ns"}, APIVersion: "v1", HasStatus: true, New: func() Object { return &api.Namespace{} }},
	{Kind: "Node", Resource: "nodes", Singular: "node", ShortNames: []string{"no"}, APIVersion: "v1", HasStatus: true, New: func() Object { return &api.Node{} }},
	{Kind: "Pod", Resource: "pods", Singular: "pod", ShortNames: []string{"po"}, APIVersion: "v1", Namespaced: true, HasStatus: true, New: func() Object { return &api.Pod{} }},
	{Kind: "Service", Resource: "services", Singular: "service", ShortNames: []string{"svc"}, APIVersion: "v1", Namespaced: true, HasStatus: true, New: func() Object { return &api.Service{} }},
	{Kind: "Endpoints", Resource: "endpoints", Singular: "endpoints", ShortNames: []string{"ep"}, APIVersion: "v1", Namespaced: true, New: func() Object { return &api.Endpoints{} }},
	{Kind: "Event", Resource: "events", Singular: "event", ShortNames: []string{"ev"}, APIVersion: "v1", Namespaced: true, New: func() Object { return &api.Event{} }},
	{Kind: "ConfigMap", Resource: "configmaps", Singular: "configmap", ShortNames: []string{"cm"}, APIVersion: "v1", Namespaced: true, New: func() Object { return &api.ConfigMap{} }},
	{Kind: "Secret", Resource: "secrets", Singular: "secret", APIVersion: "v1", Namespaced: true, New: func() Object { return &api.Secret{} }},
	{Kind: "Deployment", Resource: "deployments", Singular: "deployment", ShortNames: []string{"deploy"}, APIVersion: "apps/v1", Group: "apps", Namespaced: true, HasStatus: true, New: func() Object { return &api.Deployment{} }},
	{Kind: "ReplicaSet", Resource: "replicasets", Singular: "replicaset", ShortNames: []string{"rs"}, APIVersion: "apps/v1", Group: "apps", Namespaced: true, HasStatus: true, New: func() Object { return &api.ReplicaSet{} }},
	{Kind: "Lease", Resource: "leases", Singular: "lease", APIVersion: "coordination.k8s.io/v1", Group: "coordination.k8s.io", Namespaced: true, New: func() Object { return &api.Lease{} }},
	{Kind: "RoleBinding", Resource: "rolebindings", Singular: "rolebinding", APIVersion: "rbac.authorization.k8s.io/v1", Group: "rbac.authorization.k8s.io", New: func() Object { return &api.RoleBinding{} }},
}

// All returns every kind, in a stable order.
func All() []*Info {
	out := make([]*Info, len(table))
	for i := range table {
		out[i] = &table[i]
	}
	return out
}

// ByResource finds a kind by its plural resource name ("pods").
func ByResource(resource string) (*Info, bool) {
	for i := range table {
		if table[i].Resource == resource {
			return &table[i], true
		}
	}
	return nil, false
}

// Lookup finds a kind by any name a person may type: kind, plural,
// singular or short name, in any case, with an optional ".group" suffix
// ("deployments.apps").
func Lookup(name string) (*Info, bool) {
	n := strings.ToLower(name)
	for i := range table {
		info := &table[i]
		names := append([]string{strings.ToLower(info.Kind), info.Resource, info.Singular}, info.ShortNames...)
		for _, candidate := range names {
			if n == candidate || (info.Group != "" && n == candidate+"."+info.Group) {
				return info, true
			}
		}
	}
	return nil, false
}

// Names lists every name Lookup accepts, for "did you mean" suggestions and
// shell completion.
func Names() []string {
	var out []string
	for i := range table {
		info := &table[i]
		out = append(out, info.Resource, info.Singular)
		out = append(out, info.ShortNames...)
	}
	sort.Strings(out)
	return out
}

// For returns the kind of a Go object.
func For(obj proto.Message) (*Info, error) {
	name := obj.ProtoReflect().Descriptor().FullName()
	for i := range table {
		if table[i].New().ProtoReflect().Descriptor().FullName() == name {
			return &table[i], nil
		}
	}
	return nil, fmt.Errorf("%s is not an API kind", name)
}

// ForMessageName returns the kind whose proto message has this full name
// ("skiff.v1.Pod"), as found in an Any's type URL.
func ForMessageName(name protoreflect.FullName) (*Info, bool) {
	for i := range table {
		if table[i].New().ProtoReflect().Descriptor().FullName() == name {
			return &table[i], true
		}
	}
	return nil, false
}

// Meta returns the object's metadata, creating it when absent, so callers
// can always write through the pointer.
func Meta(obj Object) *api.ObjectMeta {
	if m := obj.GetMetadata(); m != nil {
		return m
	}
	m := &api.ObjectMeta{}
	msg := obj.ProtoReflect()
	msg.Set(msg.Descriptor().Fields().ByName("metadata"), protoreflect.ValueOfMessage(m.ProtoReflect()))
	return m
}

// SetTypeMeta fills apiVersion and kind, as kubectl shows them in -o yaml.
func SetTypeMeta(obj Object) {
	info, err := For(obj)
	if err != nil {
		return
	}
	msg := obj.ProtoReflect()
	fields := msg.Descriptor().Fields()
	if f := fields.ByName("api_version"); f != nil {
		msg.Set(f, protoreflect.ValueOfString(info.APIVersion))
	}
	if f := fields.ByName("kind"); f != nil {
		msg.Set(f, protoreflect.ValueOfString(info.Kind))
	}
}

// Key is "namespace/name", or "name" for cluster-scoped objects: the key
// informers index by and work queues carry.
func Key(obj Object) string {
	m := obj.GetMetadata()
	if m.GetNamespace() == "" {
		return m.GetName()
	}
	return m.GetNamespace() + "/" + m.GetName()
}

// SplitKey is the inverse of Key.
func SplitKey(key string) (namespace, name string) {
	if i := strings.IndexByte(key, '/'); i >= 0 {
		return key[:i], key[i+1:]
	}
	return "", key
}
