package printers

import (
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/proto"
	"k8s.io/client-go/util/jsonpath"

	"github.com/skiff-dev/skiff/ctl/manifest"
	"github.com/skiff-dev/skiff/internal/kinds"
)

// Format is an -o value.
type Format struct {
	Kind     string // "", "wide", "yaml", "json", "name", "jsonpath", "custom-columns"
	Template string // the jsonpath template, or the custom-columns spec
}

// ParseFormat reads an -o flag value.
func ParseFormat(s string) (Format, error) {
	switch {
	case s == "" || s == "wide" || s == "yaml" || s == "json" || s == "name":
		return Format{Kind: s}, nil
	case strings.HasPrefix(s, "jsonpath="):
		return Format{Kind: "jsonpath", Template: strings.TrimPrefix(s, "jsonpath=")}, nil
	case strings.HasPrefix(s, "custom-columns="):
		spec := strings.TrimPrefix(s, "custom-columns=")
		if _, err := parseCustomColumns(spec); err != nil {
			return Format{}, err
		}
		return Format{Kind: "custom-columns", Template: spec}, nil
	}
	return Format{}, fmt.Errorf("unable to match a printer suitable for the output format %q, allowed formats are: custom-columns,json,jsonpath,name,wide,yaml", s)
}

// IsTable says the format prints kubectl's table.
func (f Format) IsTable() bool { return f.Kind == "" || f.Kind == "wide" }

// ToUnstructured is obj as kubectl's YAML and JSON show it: apiVersion and
// kind filled in, Kubernetes field names.
func ToUnstructured(obj kinds.Object) (map[string]any, error) {
	obj = proto.Clone(obj).(kinds.Object)
	kinds.SetTypeMeta(obj)
	return manifest.ToUnstructured(obj)
}

// ListOf wraps objects in kubectl's "kind: List" envelope.
func ListOf(objs []kinds.Object) (map[string]any, error) {
	items := make([]any, 0, len(objs))
	for _, o := range objs {
		u, err := ToUnstructured(o)
		if err != nil {
			return nil, err
		}
		items = append(items, u)
	}
	return map[string]any{
		"apiVersion": "v1",
		"kind":       "List",
		"items":      items,
		"metadata":   map[string]any{"resourceVersion": ""},
	}, nil
}

// PrintObjects prints objects in a non-table format. single says the user
// asked for named objects and got exactly one, which prints bare rather
// than in a List.
func PrintObjects(out io.Writer, f Format, objs []kinds.Object, single bool) error {
	switch f.Kind {
	case "name":
		for _, o := range objs {
			info, err := kinds.For(o)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(out, "%s/%s\n", QualifiedKind(info), o.GetMetadata().GetName()); err != nil {
				return err
			}
		}
		return nil
	case "custom-columns":
		return PrintCustomColumns(out, f.Template, objs, true)
	case "yaml", "json", "jsonpath":
	default:
		return fmt.Errorf("output format %q is not a document format", f.Kind)
	}
	var doc map[string]any
	var err error
	if single && len(objs) == 1 {
		doc, err = ToUnstructured(objs[0])
	} else {
		doc, err = ListOf(objs)
	}
	if err != nil {
		return err
	}
	return PrintDocument(out, f, doc)
}

// PrintDocument prints one JSON tree as YAML, JSON or through a JSONPath
// template.
func PrintDocument(out io.Writer, f Format, doc map[string]any) error {
	var data []byte
	var err error
	switch f.Kind {
	case "yaml":
		data, err = manifest.MarshalYAML(doc)
	case "json":
		data, err = manifest.MarshalJSON(doc)
	case "jsonpath":
		return PrintJSONPath(out, f.Template, doc)
	default:
		return fmt.Errorf("output format %q is not a document format", f.Kind)
	}
	if err != nil {
		return err
	}
	_, err = out.Write(data)
	return err
}

// PrintJSONPath executes a kubectl JSONPath template ("{.spec.replicas}" or
// ".spec.replicas") against doc.
func PrintJSONPath(out io.Writer, template string, doc map[string]any) error {
	jp, err := ParseJSONPath("out", template)
	if err != nil {
		return err
	}
	if err := jp.Execute(out, doc); err != nil {
		return fmt.Errorf("error executing jsonpath %q: %w", template, err)
	}
	return nil
}

// ParseJSONPath parses a kubectl JSONPath template, relaxed as kubectl
// relaxes it; a missing key finds nothing instead of failing.
func ParseJSONPath(name, template string) (*jsonpath.JSONPath, error) {
	jp := jsonpath.New(name).AllowMissingKeys(true)
	if err := jp.Parse(relaxJSONPath(template)); err != nil {
		return nil, fmt.Errorf("error parsing jsonpath %s, %w", template, err)
	}
	return jp, nil
}

// relaxJSONPath accepts ".a.b" and "a.b" for "{.a.b}", like kubectl.
func relaxJSONPath(t string) string {
	if strings.Contains(t, "{") {
		return t
	}
	if !strings.HasPrefix(t, ".") {
		t = "." + t
	}
	return "{" + t + "}"
}

// customColumn is one HEADER:JSONPATH pair of -o custom-columns.
type customColumn struct {
	header string
	path   *jsonpath.JSONPath
}

func parseCustomColumns(spec string) ([]customColumn, error) {
	if spec == "" {
		return nil, fmt.Errorf("custom-columns format specified but no custom columns given")
	}
	var cols []customColumn
	for _, part := range strings.Split(spec, ",") {
		header, path, ok := strings.Cut(part, ":")
		if !ok || header == "" || path == "" {
			return nil, fmt.Errorf("unexpected custom-columns spec: %s, expected <header>:<json-path-expr>", part)
		}
		jp, err := ParseJSONPath(header, path)
		if err != nil {
			return nil, err
		}
		cols = append(cols, customColumn{header: header, path: jp})
	}
	return cols, nil
}

// PrintCustomColumns prints -o custom-columns=HEADER:.path,...: a column per
// JSONPath, "<none>" where a path finds nothing.
func PrintCustomColumns(out io.Writer, spec string, objs []kinds.Object, headers bool) error {
	cols, err := parseCustomColumns(spec)
	if err != nil {
		return err
	}
	var rows [][]string
	if headers {
		row := make([]string, len(cols))
		for i, c := range cols {
			row[i] = c.header
		}
		rows = append(rows, row)
	}
	for _, o := range objs {
		doc, err := ToUnstructured(o)
		if err != nil {
			return err
		}
		row := make([]string, len(cols))
		for i, c := range cols {
			results, err := c.path.FindResults(doc)
			if err != nil {
				return fmt.Errorf("custom-columns %s: %w", c.header, err)
			}
			var vals []string
			for _, r := range results {
				for _, v := range r {
					vals = append(vals, fmt.Sprint(v.Interface()))
				}
			}
			row[i] = strings.Join(vals, ",")
			if row[i] == "" {
				row[i] = "<none>"
			}
		}
		rows = append(rows, row)
	}
	return NewColumnWriter(out).Write(rows...)
}
