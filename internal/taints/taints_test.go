package taints

import (
	"testing"
	"time"

	"github.com/skiff-dev/skiff/proto/api"
)

func seconds(n int64) *int64 { return &n }

func TestTolerates(t *testing.T) {
	taint := &api.Taint{Key: "dedicated", Value: "gpu", Effect: EffectNoSchedule}
	tests := []struct {
		name string
		tol  *api.Toleration
		want bool
	}{
		{"equal key and value", &api.Toleration{Key: "dedicated", Value: "gpu", Effect: EffectNoSchedule}, true},
		{"default operator is Equal", &api.Toleration{Key: "dedicated", Value: "gpu"}, true},
		{"other value", &api.Toleration{Key: "dedicated", Value: "cpu"}, false},
		{"Exists ignores the value", &api.Toleration{Key: "dedicated", Operator: OpExists}, true},
		{"empty key with Exists matches every taint", &api.Toleration{Operator: OpExists}, true},
		{"other effect", &api.Toleration{Key: "dedicated", Operator: OpExists, Effect: EffectNoExecute}, false},
		{"other key", &api.Toleration{Key: "zone", Operator: OpExists}, false},
		{"unknown operator", &api.Toleration{Key: "dedicated", Operator: "Lt", Value: "gpu"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Tolerates(tt.tol, taint); got != tt.want {
				t.Errorf("Tolerates = %v, want %v", got, tt.want)
			}
			if got := Tolerated([]*api.Toleration{{Key: "unrelated", Operator: OpExists}, tt.tol}, taint); got != tt.want {
				t.Errorf("Tolerated = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestForNoExecute(t *testing.T) {
	unreachable := &api.Taint{Key: "node.kubernetes.io/unreachable", Effect: EffectNoExecute}
	tol := func(key string, secs *int64) *api.Toleration {
		return &api.Toleration{Key: key, Operator: OpExists, Effect: EffectNoExecute, TolerationSeconds: secs}
	}
	tests := []struct {
		name        string
		tolerations []*api.Toleration
		want        NoExecuteTolerance
	}{
		{"none: go now", nil, NoExecuteTolerance{}},
		{"another taint's toleration: go now", []*api.Toleration{tol("node.kubernetes.io/not-ready", nil)}, NoExecuteTolerance{}},
		{"no seconds: stay forever", []*api.Toleration{tol(unreachable.Key, nil)}, NoExecuteTolerance{Tolerated: true, Forever: true}},
		{"seconds", []*api.Toleration{tol(unreachable.Key, seconds(300))}, NoExecuteTolerance{Tolerated: true, For: 300 * time.Second}},
		{"the shortest of several", []*api.Toleration{tol(unreachable.Key, seconds(300)), tol("", seconds(60))}, NoExecuteTolerance{Tolerated: true, For: time.Minute}},
		{"forever wins over seconds", []*api.Toleration{tol(unreachable.Key, seconds(30)), tol(unreachable.Key, nil)}, NoExecuteTolerance{Tolerated: true, Forever: true}},
		{"negative seconds: go now", []*api.Toleration{tol(unreachable.Key, seconds(-5))}, NoExecuteTolerance{Tolerated: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ForNoExecute(tt.tolerations, unreachable); got != tt.want {
				t.Errorf("ForNoExecute = %+v, want %+v", got, tt.want)
			}
		})
	}
}
