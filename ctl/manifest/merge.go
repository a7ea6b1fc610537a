package manifest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
)

// LastAppliedAnnotation records the configuration apply last sent, so the
// next apply knows which fields the user removed (kubectl's three-way merge).
const LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// listMergeKeys are the fields that identify an element of a list of
// objects, in the order they are tried: lists whose elements all carry one
// of them are merged element by element (like a strategic merge patch), so
// values the server filled in (imagePullPolicy, a port's protocol) survive.
// Other lists are replaced whole.
func listMergeKeys() []string { return []string{"name", "containerPort", "port", "ip"} }

// ThreeWayMerge returns live with desired applied: fields desired sets
// replace live's, fields lastApplied set but desired no longer does are
// removed, and fields neither mentions (server-set ones such as uid,
// resourceVersion, status, clusterIP) are kept. None of the inputs is
// modified.
func ThreeWayMerge(live, desired, lastApplied map[string]any) map[string]any {
	out, _ := mergeValue(deepCopy(live), desired, lastApplied).(map[string]any)
	return out
}

func mergeValue(live, desired, last any) any {
	switch d := desired.(type) {
	case map[string]any:
		l, ok := live.(map[string]any)
		if !ok {
			return deepCopy(d)
		}
		lastMap, _ := last.(map[string]any)
		for k, dv := range d {
			if dv == nil {
				delete(l, k)
				continue
			}
			l[k] = mergeValue(l[k], dv, lastMap[k])
		}
		for k := range lastMap {
			if _, still := d[k]; !still {
				delete(l, k)
			}
		}
		return l
	case []any:
		l, ok := live.([]any)
		if !ok {
			return deepCopy(d)
		}
		key := mergeKey(d, l)
		if key == "" {
			return deepCopy(d)
		}
		lastList, _ := last.([]any)
		return mergeList(key, l, d, lastList)
	default:
		return desired
	}
}

func mergeKey(lists ...[]any) string {
	for _, key := range listMergeKeys() {
		ok := true
		for _, list := range lists {
			for _, e := range list {
				m, isMap := e.(map[string]any)
				if !isMap || m[key] == nil {
					ok = false
					break
				}
			}
		}
		if ok {
			return key
		}
	}
	return ""
}

func keyOf(e any, key string) string {
	m, _ := e.(map[string]any)
	return fmt.Sprint(m[key])
}

func mergeList(key string, live, desired, last []any) []any {
	liveByKey := map[string]any{}
	for _, e := range live {
		liveByKey[keyOf(e, key)] = e
	}
	lastByKey := map[string]any{}
	for _, e := range last {
		if m, ok := e.(map[string]any); ok && m[key] != nil {
			lastByKey[keyOf(e, key)] = e
		}
	}
	desiredKeys := map[string]bool{}
	out := make([]any, 0, len(desired))
	for _, e := range desired {
		k := keyOf(e, key)
		desiredKeys[k] = true
		out = append(out, mergeValue(liveByKey[k], e, lastByKey[k]))
	}
	for _, e := range live {
		k := keyOf(e, key)
		if desiredKeys[k] {
			continue
		}
		if _, applied := lastByKey[k]; applied {
			continue // the user removed it from the manifest
		}
		out = append(out, e)
	}
	return out
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = deepCopy(e)
		}
		return out
	default:
		return v
	}
}

// Equal compares two JSON trees, treating numbers by value.
func Equal(a, b any) bool {
	return reflect.DeepEqual(normalize(a), normalize(b))
}

func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = normalize(e)
		}
		return out
	case json.Number:
		return t.String()
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	default:
		return v
	}
}

// ApplyInput is the part of a manifest apply owns: what the user wrote,
// without status and server-set metadata, placed in namespace (when the
// kind is namespaced). It is both the desired state and what the
// last-applied annotation records.
func ApplyInput(raw map[string]any, namespace string) map[string]any {
	out, _ := deepCopy(raw).(map[string]any)
	delete(out, "status")
	meta, _ := out["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		out["metadata"] = meta
	}
	for _, k := range []string{"resourceVersion", "uid", "creationTimestamp", "deletionTimestamp", "generation", "deletionGracePeriodSeconds"} {
		delete(meta, k)
	}
	if namespace != "" {
		meta["namespace"] = namespace
	}
	if ann, ok := meta["annotations"].(map[string]any); ok {
		delete(ann, LastAppliedAnnotation)
		if len(ann) == 0 {
			delete(meta, "annotations")
		}
	}
	return out
}
