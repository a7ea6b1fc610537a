package printers

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// TestDescribeConfigDataGoldenFiles protects kubectl's describe text of a
// ConfigMap (values verbatim, tabs included; binaryData as sizes) and of a
// Secret (sizes only).
func TestDescribeConfigDataGoldenFiles(t *testing.T) {
	cm := &api.ConfigMap{Metadata: meta("default", "app-config", time.Hour, map[string]string{"app": "web"}),
		Data:       map[string]string{"app.properties": "color=blue\nsize\t=\t10\n", "mode": "fast"},
		BinaryData: map[string][]byte{"logo.png": {0xff, 0xfe, 0, 1}}}
	sec := &api.Secret{Metadata: meta("default", "db-creds", time.Hour, nil), Type: "kubernetes.io/basic-auth",
		Data: map[string][]byte{"username": []byte("admin"), "password": []byte("hunter22"), "note": []byte("n")}}
	for _, tc := range []struct {
		name string
		obj  kinds.Object
	}{
		{"configmap-binary", cm},
		{"secret", sec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := Describe(&out, Described{Object: tc.obj}, now); err != nil {
				t.Fatal(err)
			}
			golden(t, "describe-"+tc.name+".golden", out.Bytes())
		})
	}
	var out bytes.Buffer
	if err := Describe(&out, Described{Object: sec}, now); err != nil {
		t.Fatal(err)
	}
	for _, value := range []string{"admin", "hunter22", "aHVudGVy"} {
		if strings.Contains(out.String(), value) {
			t.Errorf("describe secret shows the value %q:\n%s", value, out.String())
		}
	}
}

func TestSecretDataColumnCountsKeys(t *testing.T) {
	info, _ := kinds.Lookup("secrets")
	for _, tc := range []struct {
		name string
		sec  *api.Secret
		want string
	}{
		{"data", &api.Secret{Data: map[string][]byte{"a": nil, "b": nil}}, "2"},
		{"none", &api.Secret{}, "0"},
	} {
		tc.sec.Metadata = meta("default", tc.name, time.Hour, nil)
		tc.sec.Type = "Opaque"
		if got := Cells(info, tc.sec, Options{Now: now})[2]; got != tc.want {
			t.Errorf("%s: DATA = %s, want %s", tc.name, got, tc.want)
		}
	}
}
