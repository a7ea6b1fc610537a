package cni

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestConfListIsBridgeHostLocalPortmap(t *testing.T) {
	b, err := ConfList(Config{NetworkName: "skiff", Bridge: "skiff0", PodCIDR: "10.244.1.0/24", DataDir: "/var/lib/skiff/cni"})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "skiff",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": "skiff0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  []any{[]any{map[string]any{"subnet": "10.244.1.0/24"}}},
					"routes":  []any{map[string]any{"dst": "0.0.0.0/0"}},
					"dataDir": "/var/lib/skiff/cni",
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]any{"portMappings": true}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("conflist:\n%s", b)
	}
}

func TestNewRejectsABadPodCIDR(t *testing.T) {
	if _, err := New(Config{PodCIDR: "10.244.1.0"}); err == nil {
		t.Error("New accepted a pod CIDR without a prefix length")
	}
}
