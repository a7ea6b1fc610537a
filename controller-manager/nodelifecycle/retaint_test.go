package nodelifecycle

import (
	"testing"
	"time"

	"github.com/skiff-dev/skiff/proto/api"
)

func TestRetaintKeepsOneLifecycleTaint(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	other := &api.Taint{Key: "dedicated", Value: "gpu", Effect: "NoSchedule"}
	unreachable := &api.Taint{Key: TaintUnreachable, Effect: TaintNoExecute}
	notReady := &api.Taint{Key: TaintNotReady, Effect: TaintNoExecute}
	tests := []struct {
		name    string
		in      []*api.Taint
		want    string
		keys    []string
		changed bool
	}{
		{"add to none", nil, TaintUnreachable, []string{TaintUnreachable}, true},
		{"already there", []*api.Taint{other, unreachable}, TaintUnreachable, []string{"dedicated", TaintUnreachable}, false},
		{"swap not-ready for unreachable", []*api.Taint{notReady, other}, TaintUnreachable, []string{"dedicated", TaintUnreachable}, true},
		{"remove on recovery", []*api.Taint{other, unreachable}, "", []string{"dedicated"}, true},
		{"nothing to remove", []*api.Taint{other}, "", []string{"dedicated"}, false},
		{"duplicates collapse", []*api.Taint{unreachable, unreachable}, TaintUnreachable, []string{TaintUnreachable}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, changed := retaint(tt.in, tt.want, now)
			var keys []string
			for _, tn := range out {
				keys = append(keys, tn.GetKey())
			}
			if changed != tt.changed || len(keys) != len(tt.keys) {
				t.Fatalf("retaint = %v, %v; want %v, %v", keys, changed, tt.keys, tt.changed)
			}
			for i := range keys {
				if keys[i] != tt.keys[i] {
					t.Fatalf("retaint = %v, want %v", keys, tt.keys)
				}
			}
		})
	}
}
