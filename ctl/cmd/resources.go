package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/ctl/manifest"
	"github.com/skiff-dev/skiff/internal/client"
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

// objectSelection is how commands that act on existing objects (delete,
// wait) pick them, as kubectl's do: -f files, or TYPE[/NAME] arguments
// narrowed by -l, --field-selector, --all and -A.
type objectSelection struct {
	files         fileOptions
	labelSelector string
	fieldSelector string
	all           bool
	allNamespaces bool
}

// addFlags registers the selection flags; fileVerb completes -f's help
// ("containing the resource to delete") and allHelp is --all's.
func (s *objectSelection) addFlags(c *cobra.Command, fileVerb, allHelp string) {
	s.files.addFlags(c, fileVerb)
	fl := c.Flags()
	fl.StringVarP(&s.labelSelector, "selector", "l", "", "Selector (label query) to filter on.")
	fl.StringVar(&s.fieldSelector, "field-selector", "", "Selector (field query) to filter on.")
	fl.BoolVar(&s.all, "all", false, allHelp)
	fl.BoolVarP(&s.allNamespaces, "all-namespaces", "A", false, "If present, list the requested object(s) across all namespaces.")
}

// objectRef is one object a command acts on. uid, once the command has
// seen the object, keeps a new object taking its name from being mistaken
// for it.
type objectRef struct {
	info      *kinds.Info
	namespace string
	name      string
	uid       string
}

// resourcePath is "deployments/web", as kubectl names an object in the
// errors of waits.
func (r objectRef) resourcePath() string { return r.info.Resource + "/" + r.name }

// check rejects, before anything is sent, a command line that names no
// objects or names them twice (-f and arguments).
func (s *objectSelection) check(c *cobra.Command, args []string) error {
	if len(args) == 0 && len(s.files.filenames) == 0 {
		return usageErrorf(c, "You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'")
	}
	if len(args) > 0 && len(s.files.filenames) > 0 {
		return usageErrorf(c, "resource names cannot be given with -f")
	}
	return nil
}

// resolve returns the objects the files or arguments name, listing the
// server for a kind given without names. reqs are the parsed arguments
// (nil with -f), for "No resources found" messages.
func (s *objectSelection) resolve(c *cobra.Command, streams IOStreams, f *Factory, cl *client.Client, args []string) (refs []objectRef, reqs []resourceRequest, err error) {
	if len(s.files.filenames) > 0 {
		refs, err = s.fromFiles(streams.In, f)
		return refs, nil, err
	}
	if reqs, err = parseResourceArgs(args); err != nil {
		return nil, nil, err
	}
	refs, err = s.fromArgs(c, f, cl, reqs)
	return refs, reqs, err
}

func (s *objectSelection) fromFiles(in io.Reader, f *Factory) ([]objectRef, error) {
	docs, err := manifest.Read(s.files.filenames, in, s.files.recursive)
	if err != nil {
		return nil, err
	}
	refs := make([]objectRef, 0, len(docs))
	for i := range docs {
		if err := documentNamespace(f, &docs[i]); err != nil {
			return nil, err
		}
		m := docs[i].Object.GetMetadata()
		refs = append(refs, objectRef{info: docs[i].Info, namespace: m.GetNamespace(), name: m.GetName()})
	}
	return refs, nil
}

func (s *objectSelection) fromArgs(c *cobra.Command, f *Factory, cl *client.Client, reqs []resourceRequest) ([]objectRef, error) {
	ns, _ := f.DefaultNamespace()
	var refs []objectRef
	for _, r := range reqs {
		if len(r.names) > 0 {
			if s.all || s.labelSelector != "" {
				return nil, errors.New("name cannot be provided when a selector is specified")
			}
			for _, n := range r.names {
				refs = append(refs, objectRef{info: r.info, namespace: namespaceFor(r.info, ns), name: n})
			}
			continue
		}
		if !s.all && s.labelSelector == "" && s.fieldSelector == "" {
			return nil, usageErrorf(c, "resource(s) were provided, but no name was specified")
		}
		listed, err := s.list(c.Context(), cl, r.info, ns)
		if err != nil {
			return nil, err
		}
		refs = append(refs, listed...)
	}
	return refs, nil
}

// list finds the objects of one kind that match the selectors, in ns (in
// every namespace with -A), ordered by namespace and name.
func (s *objectSelection) list(ctx context.Context, cl *client.Client, info *kinds.Info, ns string) ([]objectRef, error) {
	listNS := namespaceFor(info, ns)
	if s.allNamespaces {
		listNS = ""
	}
	objs, _, err := client.ForKind(cl, info).List(ctx, listNS, client.ListOptions{LabelSelector: s.labelSelector, FieldSelector: s.fieldSelector})
	if err != nil {
		return nil, err
	}
	if err := sortObjects(objs, ""); err != nil {
		return nil, err
	}
	refs := make([]objectRef, 0, len(objs))
	for _, obj := range objs {
		m := obj.GetMetadata()
		refs = append(refs, objectRef{info: info, namespace: m.GetNamespace(), name: m.GetName(), uid: m.GetUid()})
	}
	return refs, nil
}
