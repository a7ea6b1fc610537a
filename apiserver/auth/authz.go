package auth

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// Attributes describe one request for authorization. Resource may carry a
// subresource: "pods/status", "pods/binding", "pods/exec", "pods/log",
// "pods/portforward".
type Attributes struct {
	User      User
	Verb      string // get, list, watch, create, update, delete
	Resource  string
	Namespace string
	Name      string
	// Object is the object a create or update sends, when there is one.
	Object kinds.Object
}

func (a Attributes) String() string {
	target := a.Resource
	if a.Name != "" {
		target += fmt.Sprintf(" %q", a.Name)
	}
	if a.Namespace != "" {
		target += fmt.Sprintf(" in namespace %q", a.Namespace)
	}
	return fmt.Sprintf("User %q cannot %s %s", a.User.Name, a.Verb, target)
}

type rule struct {
	verbs     []string // "*" for all
	resources []string // "*" for all
}

func (r rule) allows(verb, resource string) bool {
	return (slices.Contains(r.verbs, "*") || slices.Contains(r.verbs, verb)) &&
		(slices.Contains(r.resources, "*") || slices.Contains(r.resources, resource))
}

var readOnly = []string{"get", "list", "watch"}

// roles are the built-in roles; RoleBindings refer to them by name.
func roles() map[string][]rule {
	return map[string][]rule{
		"admin": {{[]string{"*"}, []string{"*"}}},
		"edit": {
			{[]string{"*"}, []string{"pods", "pods/exec", "pods/portforward", "pods/log", "pods/status", "services", "endpoints", "configmaps", "secrets", "deployments", "replicasets", "events", "leases", "namespaces"}},
			{readOnly, []string{"*"}},
		},
		"view": {{readOnly, []string{"namespaces", "nodes", "pods", "pods/log", "services", "endpoints", "events", "configmaps", "deployments", "replicasets", "leases", "rolebindings"}}},
		"controller": {
			{[]string{"*"}, []string{"pods", "pods/status", "services", "services/status", "endpoints", "configmaps", "secrets", "deployments", "deployments/status", "replicasets", "replicasets/status", "events", "leases", "namespaces", "namespaces/status", "nodes", "nodes/status"}},
			{readOnly, []string{"*"}},
		},
		"scheduler": {
			{readOnly, []string{"pods", "nodes", "namespaces", "services", "replicasets", "deployments"}},
			{[]string{"create"}, []string{"pods/binding"}},
			{[]string{"update"}, []string{"pods/status"}},
			{[]string{"*"}, []string{"events", "leases"}},
		},
		"proxy": {
			{readOnly, []string{"services", "endpoints", "nodes", "namespaces"}},
			{[]string{"create", "update"}, []string{"events"}},
		},
		// node is further narrowed by node restriction.
		"node": {
			{readOnly, []string{"pods", "nodes", "services", "endpoints", "namespaces", "configmaps", "secrets", "leases"}},
			{[]string{"create", "update"}, []string{"nodes", "nodes/status", "leases", "events"}},
			{[]string{"update"}, []string{"pods/status"}},
			{[]string{"delete"}, []string{"pods"}},
		},
	}
}

// Well-known identities, matching internal/pki.
const (
	GroupMasters = "system:masters"
	GroupNodes   = "system:nodes"
	GroupViewers = "system:viewers"
	nodePrefix   = "system:node:"
)

func builtinBindings() []*api.RoleBinding {
	bind := func(role, kind, name string) *api.RoleBinding {
		return &api.RoleBinding{Subjects: []*api.Subject{{Kind: kind, Name: name}}, RoleRef: &api.RoleRef{Name: role}}
	}
	return []*api.RoleBinding{
		bind("admin", "Group", GroupMasters),
		bind("view", "Group", GroupViewers),
		bind("node", "Group", GroupNodes),
		bind("controller", "User", "system:controller-manager"),
		bind("scheduler", "User", "system:scheduler"),
		bind("proxy", "User", "system:proxy"),
	}
}

// RoleNames lists the built-in roles a RoleBinding may name.
func RoleNames() []string {
	names := make([]string, 0, len(roles()))
	for name := range roles() {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Lookup reads a stored object for decisions that depend on it (a node may
// touch only the pods bound to it).
type Lookup func(resource, namespace, name string) (kinds.Object, bool)

// Authorizer decides by role bindings: the built-in ones plus RoleBinding
// objects.
type Authorizer struct {
	roles    map[string][]rule
	builtin  []*api.RoleBinding
	bindings func() []*api.RoleBinding
	lookup   Lookup
}

// NewAuthorizer makes an authorizer; bindings lists the stored RoleBindings.
func NewAuthorizer(bindings func() []*api.RoleBinding, lookup Lookup) *Authorizer {
	return &Authorizer{roles: roles(), builtin: builtinBindings(), bindings: bindings, lookup: lookup}
}

func subjectMatches(s *api.Subject, u User) bool {
	switch s.GetKind() {
	case "User":
		return s.GetName() == u.Name
	case "Group":
		return u.InGroup(s.GetName())
	}
	return false
}

// rolesOf lists the roles bound to u.
func (a *Authorizer) rolesOf(u User) []string {
	var out []string
	all := a.builtin
	if a.bindings != nil {
		all = append(slices.Clip(all), a.bindings()...)
	}
	for _, b := range all {
		for _, s := range b.GetSubjects() {
			if subjectMatches(s, u) {
				out = append(out, b.GetRoleRef().GetName())
				break
			}
		}
	}
	return out
}

// Authorize returns nil or a PermissionDenied error naming what was refused.
func (a *Authorizer) Authorize(attr Attributes) error {
	for _, role := range a.rolesOf(attr.User) {
		allowed := false
		for _, r := range a.roles[role] {
			if r.allows(attr.Verb, attr.Resource) {
				allowed = true
				break
			}
		}
		if !allowed {
			continue
		}
		if role == "node" {
			if err := a.nodeRestriction(attr); err != nil {
				return err
			}
		}
		return nil
	}
	return status.Error(codes.PermissionDenied, attr.String())
}

// nodeRestriction keeps a kubelet to its own Node, its own Lease, and the
// pods bound to it.
func (a *Authorizer) nodeRestriction(attr Attributes) error {
	node, ok := strings.CutPrefix(attr.User.Name, nodePrefix)
	if !ok || node == "" {
		return status.Errorf(codes.PermissionDenied, "%s: members of %s must be named %s<node>", attr, GroupNodes, nodePrefix)
	}
	deny := func(why string) error {
		return status.Errorf(codes.PermissionDenied, "%s: node %q %s", attr, node, why)
	}
	if slices.Contains(readOnly, attr.Verb) {
		return nil
	}
	switch attr.Resource {
	case "nodes", "nodes/status":
		if attr.Name != node {
			return deny("may only modify its own Node")
		}
	case "leases":
		if attr.Name != node {
			return deny("may only modify its own Lease")
		}
	case "pods", "pods/status":
		obj, ok := a.lookup("pods", attr.Namespace, attr.Name)
		if !ok {
			return nil // nothing to touch: the API answers NotFound
		}
		if obj.(*api.Pod).GetSpec().GetNodeName() != node {
			return deny("may only modify pods bound to it")
		}
	case "events":
	default:
		return deny("may not modify " + attr.Resource)
	}
	return nil
}
