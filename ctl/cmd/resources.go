package cmd

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/internal/selectors"
	"github.com/skiff-dev/skiff/proto/api"
)

// resourceRequest is one kind a command acts on, with the names given for
// it (none means "every object matching the selectors").
type resourceRequest struct {
	info  *kinds.Info
	names []string
}

// lookupKind resolves a kind name as typed, with a "did you mean" hint for
// typos.
func lookupKind(name string) (*kinds.Info, error) {
	if info, ok := kinds.Lookup(name); ok {
		return info, nil
	}
	return nil, unknownKindError(name)
}

func unknownKindError(name string) error {
	msg := fmt.Sprintf("the server doesn't have a resource type %q", name)
	if s := suggestKinds(name); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return errors.New(msg)
}

// suggestKinds returns the kind names close to typed (one edit per three
// letters, at least one) or that typed is a prefix of, one per kind.
func suggestKinds(typed string) []string {
	typed = strings.ToLower(typed)
	seen := map[string]bool{}
	var out []string
	maxEdits := max(1, len([]rune(typed))/3)
	for _, n := range kinds.Names() {
		if seen[n] {
			continue
		}
		if levenshtein(typed, n) <= maxEdits || (len(typed) >= 3 && strings.HasPrefix(n, typed)) {
			seen[n] = true
			out = append(out, n)
		}
	}
	// One suggestion per kind: prefer the plural resource name.
	byKind := map[*kinds.Info]string{}
	var order []*kinds.Info
	for _, n := range out {
		info, _ := kinds.Lookup(n)
		cur, ok := byKind[info]
		if !ok {
			order = append(order, info)
		}
		if !ok || n == info.Resource || (cur != info.Resource && levenshtein(typed, n) < levenshtein(typed, cur)) {
			byKind[info] = n
		}
	}
	res := make([]string, 0, len(order))
	for _, info := range order {
		res = append(res, byKind[info])
	}
	sort.Strings(res)
	return res
}

// levenshtein is the edit distance between a and b.
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// parseResourceArgs reads kubectl's resource arguments: "pods",
// "pods,deploy", "pod NAME...", "pod/NAME deploy/NAME".
func parseResourceArgs(args []string) ([]resourceRequest, error) {
	if len(args) == 0 {
		return nil, errors.New("you must specify the type of resource")
	}
	if strings.Contains(args[0], "/") {
		var out []resourceRequest
		index := map[*kinds.Info]int{}
		for _, a := range args {
			kind, name, ok := strings.Cut(a, "/")
			if !ok || name == "" || kind == "" {
				return nil, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'ctl get resource/<resource_name>' instead of 'ctl get resource resource/<resource_name>'")
			}
			info, err := lookupKind(kind)
			if err != nil {
				return nil, err
			}
			if i, ok := index[info]; ok {
				out[i].names = append(out[i].names, name)
				continue
			}
			index[info] = len(out)
			out = append(out, resourceRequest{info: info, names: []string{name}})
		}
		return out, nil
	}
	var out []resourceRequest
	for _, k := range strings.Split(args[0], ",") {
		if k == "" {
			continue
		}
		if strings.ToLower(k) == "all" {
			// kubectl's "all" category, in kubectl's order.
			for _, r := range []string{"pods", "services", "deployments", "replicasets"} {
				info, _ := kinds.ByResource(r)
				out = append(out, resourceRequest{info: info})
			}
			continue
		}
		info, err := lookupKind(k)
		if err != nil {
			return nil, err
		}
		out = append(out, resourceRequest{info: info})
	}
	names := args[1:]
	for _, n := range names {
		if strings.Contains(n, "/") {
			return nil, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'ctl get resource/<resource_name>' instead of 'ctl get resource resource/<resource_name>'")
		}
	}
	if len(names) > 0 {
		if len(out) != 1 {
			return nil, errors.New("names can only be given with a single resource type")
		}
		out[0].names = names
	}
	return out, nil
}

// namespaceFor is where a request for info goes: "" for cluster-scoped
// kinds.
func namespaceFor(info *kinds.Info, ns string) string {
	if !info.Namespaced {
		return ""
	}
	return ns
}

// labelSelectorString is an API LabelSelector in the syntax List takes.
func labelSelectorString(ls *api.LabelSelector) string {
	sel, err := selectors.FromLabelSelector(ls)
	if err != nil {
		return ""
	}
	return sel.String()
}
