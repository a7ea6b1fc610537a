package containerdtest

import (
	"context"
	"sort"
	"strings"

	"github.com/containerd/containerd/v2/pkg/namespaces"
)

func namespacedContext(ctx context.Context, ns string) context.Context {
	return namespaces.WithNamespace(ctx, ns)
}

// mountPointsUnder lists the mount points in a mountinfo text that lie under
// dir, deepest first.
func mountPointsUnder(mountinfo, dir string) []string {
	var out []string
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		if mp := f[4]; strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out
}
