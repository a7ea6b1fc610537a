package auth

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

func TestAuthorizeByRole(t *testing.T) {
	pods := map[string]*api.Pod{
		"mine":   {Spec: &api.PodSpec{NodeName: "n1"}},
		"theirs": {Spec: &api.PodSpec{NodeName: "n2"}},
	}
	lookup := func(resource, ns, name string) (kinds.Object, bool) {
		p, ok := pods[name]
		return p, ok
	}
	stored := []*api.RoleBinding{{
		Metadata: &api.ObjectMeta{Name: "dev-edit"},
		Subjects: []*api.Subject{{Kind: "Group", Name: "devs"}}, RoleRef: &api.RoleRef{Name: "edit"},
	}}
	a := NewAuthorizer(func() []*api.RoleBinding { return stored }, lookup)
	admin := User{Name: "root", Groups: []string{GroupMasters}}
	viewer := User{Name: "v", Groups: []string{GroupViewers}}
	dev := User{Name: "d", Groups: []string{"devs"}}
	node := User{Name: "system:node:n1", Groups: []string{GroupNodes}}
	badNode := User{Name: "n1", Groups: []string{GroupNodes}}
	sched := User{Name: "system:scheduler"}
	nobody := User{Name: "stranger"}
	tests := []struct {
		name string
		attr Attributes
		want codes.Code
	}{
		{"admin does anything", Attributes{User: admin, Verb: "delete", Resource: "nodes", Name: "n1"}, codes.OK},
		{"viewer reads pods", Attributes{User: viewer, Verb: "list", Resource: "pods"}, codes.OK},
		{"viewer cannot read secrets", Attributes{User: viewer, Verb: "get", Resource: "secrets", Namespace: "default", Name: "s"}, codes.PermissionDenied},
		{"viewer cannot create", Attributes{User: viewer, Verb: "create", Resource: "pods", Namespace: "default"}, codes.PermissionDenied},
		{"viewer cannot exec", Attributes{User: viewer, Verb: "create", Resource: "pods/exec", Namespace: "default", Name: "mine"}, codes.PermissionDenied},
		{"viewer cannot port-forward", Attributes{User: viewer, Verb: "create", Resource: "pods/portforward", Namespace: "default", Name: "mine"}, codes.PermissionDenied},
		{"editor port-forwards", Attributes{User: dev, Verb: "create", Resource: "pods/portforward", Namespace: "dev", Name: "mine"}, codes.OK},
		{"node cannot port-forward", Attributes{User: node, Verb: "create", Resource: "pods/portforward", Namespace: "default", Name: "mine"}, codes.PermissionDenied},
		{"stored binding grants its role", Attributes{User: dev, Verb: "create", Resource: "deployments", Namespace: "dev"}, codes.OK},
		{"stored binding grants no more than its role", Attributes{User: dev, Verb: "create", Resource: "rolebindings"}, codes.PermissionDenied},
		{"scheduler binds", Attributes{User: sched, Verb: "create", Resource: "pods/binding", Namespace: "default", Name: "p"}, codes.OK},
		{"scheduler cannot delete pods", Attributes{User: sched, Verb: "delete", Resource: "pods", Namespace: "default", Name: "p"}, codes.PermissionDenied},
		{"node updates its own node", Attributes{User: node, Verb: "update", Resource: "nodes/status", Name: "n1"}, codes.OK},
		{"node cannot update another node", Attributes{User: node, Verb: "update", Resource: "nodes", Name: "n2"}, codes.PermissionDenied},
		{"node updates status of its pod", Attributes{User: node, Verb: "update", Resource: "pods/status", Namespace: "default", Name: "mine"}, codes.OK},
		{"node cannot update another node's pod", Attributes{User: node, Verb: "update", Resource: "pods/status", Namespace: "default", Name: "theirs"}, codes.PermissionDenied},
		{"node deletes its pod", Attributes{User: node, Verb: "delete", Resource: "pods", Namespace: "default", Name: "mine"}, codes.OK},
		{"node cannot create pods", Attributes{User: node, Verb: "create", Resource: "pods", Namespace: "default"}, codes.PermissionDenied},
		{"node renews its lease", Attributes{User: node, Verb: "update", Resource: "leases", Namespace: "skiff-system", Name: "n1"}, codes.OK},
		{"node cannot renew another lease", Attributes{User: node, Verb: "update", Resource: "leases", Namespace: "skiff-system", Name: "n2"}, codes.PermissionDenied},
		{"node identity must be system:node:NAME", Attributes{User: badNode, Verb: "update", Resource: "nodes", Name: "n1"}, codes.PermissionDenied},
		{"unbound user is denied", Attributes{User: nobody, Verb: "get", Resource: "pods", Namespace: "default", Name: "mine"}, codes.PermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := status.Code(a.Authorize(tt.attr)); got != tt.want {
				t.Fatalf("Authorize(%s) = %v, want %v", tt.attr, got, tt.want)
			}
		})
	}
}

func TestStreamCallsAreAuthorizedByTheirFirstMessage(t *testing.T) {
	tests := []struct {
		name     string
		req      any
		resource string
		checked  bool
		want     codes.Code
	}{
		{"exec", &api.ExecInput{Start: &api.ExecStart{Namespace: "ns", Pod: "p"}}, "pods/exec", true, codes.OK},
		{"port-forward", &api.PortForwardInput{Start: &api.PortForwardStart{Namespace: "ns", Pod: "p", Port: 80}}, "pods/portforward", true, codes.OK},
		{"logs", &api.LogsRequest{Namespace: "ns", Pod: "p"}, "pods/log", true, codes.OK},
		{"version is open to every authenticated user", &api.VersionRequest{}, "", false, codes.OK},
		{"a call with no rule is refused", &api.Pod{}, "", false, codes.PermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attr, checked, err := attributes(tt.req)
			if status.Code(err) != tt.want || checked != tt.checked || attr.Resource != tt.resource {
				t.Fatalf("attributes(%T) = %q, %v, %v; want %q, %v, %v", tt.req, attr.Resource, checked, err, tt.resource, tt.checked, tt.want)
			}
			if tt.checked && (attr.Namespace != "ns" || attr.Name != "p") {
				t.Errorf("attributes(%T) target %s/%s, want ns/p", tt.req, attr.Namespace, attr.Name)
			}
		})
	}
}

func TestTokenFileParsing(t *testing.T) {
	tests := []struct {
		name, file string
		wantErr    bool
		wantUser   User
	}{
		{"user with groups", `abcdefghijklmnop,alice,1,"system:masters,devs"`, false, User{Name: "alice", Groups: []string{"system:masters", "devs"}}},
		{"comment and no groups", "# tokens\nabcdefghijklmnopq,bob,2", false, User{Name: "bob"}},
		{"too few fields", "abcdefghijklmnop,alice", true, User{}},
		{"short token", "short,alice,1", true, User{}},
		{"empty user", "abcdefghijklmnop,,1", true, User{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, err := parseTokens(stringsReader(tt.file))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			got := entries[0].user
			if got.Name != tt.wantUser.Name || len(got.Groups) != len(tt.wantUser.Groups) {
				t.Fatalf("user = %+v, want %+v", got, tt.wantUser)
			}
		})
	}
}
