package printers

import (
	"bytes"
	"strings"
	"testing"

	"github.com/skiff-dev/skiff/internal/kinds"
)

// TestDocumentsMatchGoldenFiles protects -o yaml, -o json and -o name: a
// single object prints bare, several in a List; Kubernetes field names and
// numeric 64-bit integers.
func TestDocumentsMatchGoldenFiles(t *testing.T) {
	fx := fixtures()
	one := fx["Deployment"][:1]
	list := append(append([]kinds.Object{}, fx["Service"][:1]...), fx["Pod"][:1]...)
	for _, tc := range []struct {
		name   string
		format string
		objs   []kinds.Object
		single bool
	}{
		{"deployment.yaml", "yaml", one, true},
		{"deployment.json", "json", one, true},
		{"list.yaml", "yaml", list, false},
		{"list.name", "name", list, false},
		{"list.custom-columns", "custom-columns=NAME:.metadata.name,KIND:.kind,PORTS:.spec.ports[*].port,MISSING:.spec.nope", list, false},
		{"list.jsonpath", "jsonpath={range .items[*]}{.metadata.name}{\" \"}{.metadata.generation}{\"\\n\"}{end}", list, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseFormat(tc.format)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := PrintObjects(&out, f, tc.objs, tc.single); err != nil {
				t.Fatal(err)
			}
			golden(t, "output-"+tc.name+".golden", out.Bytes())
		})
	}
}

func TestJSONPathAcceptsBareAndBracedTemplates(t *testing.T) {
	obj := fixtures()["Deployment"][0]
	doc, err := ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	for _, tmpl := range []string{"{.spec.replicas}", ".spec.replicas", "spec.replicas"} {
		var out strings.Builder
		if err := PrintJSONPath(&out, tmpl, doc); err != nil {
			t.Fatalf("%s: %v", tmpl, err)
		}
		if out.String() != "3" {
			t.Errorf("%s printed %q, want 3", tmpl, out.String())
		}
	}
	if err := PrintJSONPath(&strings.Builder{}, "{.spec.replicas", doc); err == nil {
		t.Error("an unclosed template must be an error")
	}
}

func TestParseFormatRejectsUnknownFormats(t *testing.T) {
	if _, err := ParseFormat("xml"); err == nil || !strings.Contains(err.Error(), "allowed formats are") {
		t.Errorf("ParseFormat(xml) = %v, want an error listing the allowed formats", err)
	}
	for _, bad := range []string{"custom-columns=", "custom-columns=NAME", "custom-columns=NAME:{.a"} {
		if _, err := ParseFormat(bad); err == nil {
			t.Errorf("ParseFormat(%q) accepted a bad spec", bad)
		}
	}
}
