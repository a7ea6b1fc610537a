package garbagecollector

import (
	"testing"

	"github.com/skiff-dev/skiff/proto/api"
)

func TestOwnerKeysFollowTheOwnersScope(t *testing.T) {
	tests := []struct {
		ref      *api.OwnerReference
		ns       string
		want     string
		resolved bool
	}{
		{&api.OwnerReference{Kind: "ReplicaSet", Name: "web-abc"}, "default", "replicasets/default/web-abc", true},
		{&api.OwnerReference{Kind: "Deployment", Name: "web"}, "team-a", "deployments/team-a/web", true},
		// A cluster-scoped owner of a namespaced dependent.
		{&api.OwnerReference{Kind: "Node", Name: "n1"}, "skiff-system", "nodes/n1", true},
		{&api.OwnerReference{Kind: "CronJob", Name: "x"}, "default", "", false},
	}
	for _, tt := range tests {
		got, _, ok := ownerKey(tt.ref, tt.ns)
		if ok != tt.resolved || got != tt.want {
			t.Errorf("ownerKey(%s %s, %s) = %q, %v; want %q, %v", tt.ref.GetKind(), tt.ref.GetName(), tt.ns, got, ok, tt.want, tt.resolved)
		}
		if !ok {
			continue
		}
		resource, ns, name := splitItemKey(got)
		if name != tt.ref.GetName() || resource == "" || (ns != "" && ns != tt.ns) {
			t.Errorf("splitItemKey(%q) = %q %q %q", got, resource, ns, name)
		}
	}
}
