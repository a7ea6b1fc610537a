package selectors

import (
	"testing"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

func pod(name string, labels map[string]string, node, phase string) *api.Pod {
	return &api.Pod{
		Metadata: &api.ObjectMeta{Name: name, Namespace: "default", Labels: labels},
		Spec:     &api.PodSpec{NodeName: node},
		Status:   &api.PodStatus{Phase: phase},
	}
}

func TestSelectorMatchesLabelsAndFields(t *testing.T) {
	pods, _ := kinds.ByResource("pods")
	web := pod("web", map[string]string{"app": "nginx", "tier": "front"}, "node-1", "Running")
	pending := pod("db", map[string]string{"app": "db"}, "", "Pending")
	tests := []struct {
		name, labels, fields string
		obj                  *api.Pod
		want                 bool
	}{
		{"empty selects all", "", "", web, true},
		{"label equality", "app=nginx", "", web, true},
		{"label mismatch", "app=db", "", web, false},
		{"set based", "tier in (front,back),!canary", "", web, true},
		{"node name", "", "spec.nodeName=node-1", web, true},
		{"unbound pods by empty node name", "", "spec.nodeName=", pending, true},
		{"bound pod is not unbound", "", "spec.nodeName=", web, false},
		{"not equal phase", "", "status.phase!=Running", pending, true},
		{"labels and fields together", "app=nginx", "metadata.name=web", web, true},
		{"labels match but fields do not", "app=nginx", "metadata.name=other", web, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := Parse(pods, tt.labels, tt.fields)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := sel.Matches(tt.obj); got != tt.want {
				t.Fatalf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseRejectsUnsupportedFieldsAndBadSyntax(t *testing.T) {
	deploys, _ := kinds.ByResource("deployments")
	tests := []struct{ name, labels, fields, wantSubstr string }{
		{"field not supported for kind", "", "spec.nodeName=a", `field "spec.nodeName" is not supported for deployments`},
		{"bad label syntax", "app in (", "", "labelSelector"},
		{"bad field syntax", "", "metadata.name", "fieldSelector"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(deploys, tt.labels, tt.fields)
			if err == nil || !contains(err.Error(), tt.wantSubstr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantSubstr)
			}
		})
	}
}

func TestFromLabelSelector(t *testing.T) {
	tests := []struct {
		name   string
		sel    *api.LabelSelector
		labels map[string]string
		want   bool
		err    bool
	}{
		{"nil selects nothing", nil, map[string]string{"a": "b"}, false, false},
		{"empty selects everything", &api.LabelSelector{}, map[string]string{"a": "b"}, true, false},
		{"match labels", &api.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, map[string]string{"app": "web", "x": "y"}, true, false},
		{"match expression NotIn", &api.LabelSelector{MatchExpressions: []*api.LabelSelectorRequirement{{Key: "env", Operator: "NotIn", Values: []string{"prod"}}}}, map[string]string{"env": "dev"}, true, false},
		{"bad operator", &api.LabelSelector{MatchExpressions: []*api.LabelSelectorRequirement{{Key: "env", Operator: "Near"}}}, nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := FromLabelSelector(tt.sel)
			if tt.err {
				if err == nil {
					t.Fatal("want error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := sel.Matches(labelsSet(tt.labels)); got != tt.want {
				t.Fatalf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}
