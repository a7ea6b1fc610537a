package manifest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/skiff-dev/skiff/internal/kinds"
)

// Document is one object read from a manifest.
type Document struct {
	Source string // file name, or "STDIN"
	Index  int    // 1-based position of the document in its source
	Info   *kinds.Info
	Object kinds.Object
	// Raw is the document as the user wrote it (JSON tree), which apply
	// merges and records as the last-applied configuration.
	Raw map[string]any
}

// Where names the document in messages: `"web.yaml" (document 2)`.
func (d *Document) Where() string {
	return fmt.Sprintf("%q (document %d)", d.Source, d.Index)
}

// DecodeError is a document that cannot become an object.
type DecodeError struct {
	Source string
	Index  int
	Err    error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("error validating %q (document %d): %v", e.Source, e.Index, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Read decodes every document of every path ("-" is stdin; directories are
// read for .yaml, .yml and .json files, recursively when recursive is set).
// It decodes and validates everything before returning, so a caller that
// gets no error can send every object knowing none is malformed.
func Read(paths []string, stdin io.Reader, recursive bool) ([]Document, error) {
	if len(paths) == 0 {
		return nil, errors.New("must specify one of -f and -k")
	}
	var docs []Document
	for _, p := range paths {
		if p == "-" {
			data, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("read stdin: %w", err)
			}
			d, err := Decode("STDIN", data)
			if err != nil {
				return nil, err
			}
			docs = append(docs, d...)
			continue
		}
		files, err := expand(p, recursive)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("the path %q cannot be read: %w", f, err)
			}
			d, err := Decode(f, data)
			if err != nil {
				return nil, err
			}
			docs = append(docs, d...)
		}
	}
	if len(docs) == 0 {
		return nil, errors.New("no objects passed to apply")
	}
	return docs, nil
}

func expand(path string, recursive bool) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("the path %q does not exist", path)
		}
		return nil, fmt.Errorf("the path %q cannot be read: %w", path, err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != path && !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read directory %q: %w", path, err)
	}
	sort.Strings(files)
	return files, nil
}

// Decode reads every document in data: a JSON stream of objects or YAML
// documents separated by "---". A document of kind List contributes its
// items. Empty documents are skipped but keep their place in the count.
func Decode(source string, data []byte) ([]Document, error) {
	raws, err := split(data)
	if err != nil {
		return nil, fmt.Errorf("error parsing %q: %w", source, err)
	}
	var docs []Document
	for i, raw := range raws {
		idx := i + 1
		if raw == nil {
			continue
		}
		// Through JSON with UseNumber, so 64-bit integers keep every digit.
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return nil, &DecodeError{Source: source, Index: idx, Err: err}
		}
		v, err := decodeJSON(js)
		if err != nil {
			return nil, &DecodeError{Source: source, Index: idx, Err: err}
		}
		if v == nil {
			continue
		}
		tree, ok := v.(map[string]any)
		if !ok {
			return nil, &DecodeError{Source: source, Index: idx, Err: fmt.Errorf("a manifest document must be an object, got %s", jsonType(v))}
		}
		if len(tree) == 0 {
			continue
		}
		if tree["kind"] == "List" {
			items, _ := tree["items"].([]any)
			for _, it := range items {
				m, ok := it.(map[string]any)
				if !ok {
					return nil, &DecodeError{Source: source, Index: idx, Err: errors.New("the items of a List must be objects")}
				}
				d, err := decodeObject(m)
				if err != nil {
					return nil, &DecodeError{Source: source, Index: idx, Err: err}
				}
				d.Source, d.Index = source, idx
				docs = append(docs, d)
			}
			continue
		}
		d, err := decodeObject(tree)
		if err != nil {
			return nil, &DecodeError{Source: source, Index: idx, Err: err}
		}
		d.Source, d.Index = source, idx
		docs = append(docs, d)
	}
	return docs, nil
}

// split cuts data into documents; nil entries are empty documents.
func split(data []byte) ([][]byte, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		var out [][]byte
		for {
			var raw json.RawMessage
			err := dec.Decode(&raw)
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return nil, err
			}
			out = append(out, raw)
		}
	}
	var out [][]byte
	var cur bytes.Buffer
	flush := func() {
		if len(bytes.TrimSpace(stripComments(cur.Bytes()))) == 0 {
			out = append(out, nil)
		} else {
			out = append(out, append([]byte(nil), cur.Bytes()...))
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	first := true
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "---") && strings.TrimSpace(strings.SplitN(line[3:], "#", 2)[0]) == "" {
			if !first || cur.Len() > 0 {
				flush()
			}
			first = false
			continue
		}
		first = false
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	flush()
	// A trailing separator leaves an empty last document: drop it.
	for len(out) > 0 && out[len(out)-1] == nil {
		out = out[:len(out)-1]
	}
	return out, nil
}

func stripComments(b []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}

// KindError is an apiVersion/kind pair Skiff does not serve.
type KindError struct {
	APIVersion, Kind string
}

func (e *KindError) Error() string {
	if e.Kind == "" {
		return "Object 'Kind' is missing"
	}
	if e.APIVersion == "" {
		return fmt.Sprintf("Object 'apiVersion' is missing for kind %q", e.Kind)
	}
	return fmt.Sprintf("no matches for kind %q in version %q", e.Kind, e.APIVersion)
}

// FindKind returns the kind an apiVersion/kind pair names.
func FindKind(apiVersion, kind string) (*kinds.Info, error) {
	if kind == "" || apiVersion == "" {
		return nil, &KindError{APIVersion: apiVersion, Kind: kind}
	}
	for _, info := range kinds.All() {
		if info.Kind == kind && info.APIVersion == apiVersion {
			return info, nil
		}
	}
	return nil, &KindError{APIVersion: apiVersion, Kind: kind}
}

// DecodeObject turns one JSON tree into a typed object.
func DecodeObject(tree map[string]any) (*kinds.Info, kinds.Object, error) {
	d, err := decodeObject(tree)
	if err != nil {
		return nil, nil, err
	}
	return d.Info, d.Object, nil
}

func decodeObject(tree map[string]any) (Document, error) {
	apiVersion, _ := tree["apiVersion"].(string)
	kind, _ := tree["kind"].(string)
	info, err := FindKind(apiVersion, kind)
	if err != nil {
		return Document{}, err
	}
	// status belongs to the cluster: the API ignores it on create and
	// update, and manifests saved from kubectl carry status fields Skiff
	// does not have (status.loadBalancer), so it is dropped unread.
	delete(tree, "status")
	obj := info.New()
	if err := Validate(obj.ProtoReflect().Descriptor(), tree); err != nil {
		return Document{}, fmt.Errorf("%s: %w", info.Kind, err)
	}
	if err := FromUnstructured(tree, obj); err != nil {
		return Document{}, fmt.Errorf("%s: %w", info.Kind, err)
	}
	return Document{Info: info, Object: obj, Raw: tree}, nil
}
