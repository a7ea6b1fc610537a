package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/skiff-dev/skiff/e2e/harness"
)

// TestSeedScenario walks the seed scenario as a user types it, checking
// every output a user reads: create a deployment of 3 nginx, see it 3/3
// with one replicaset and 3 Running pods with IPs on both nodes, exec into
// a pod, copy a file into it and back with cp, reach nginx through a pod
// IP and through a Service (by IP and by DNS name) and from this machine
// through port-forward, lose a pod and see it replaced, delete the
// deployment and see everything it owned go.
func TestSeedScenario(t *testing.T) {
	defer recoverPanic(t)
	c, ctx := setup(t)
	const name = "k8s-nginx"
	t.Cleanup(func() {
		deleteQuietly(t, c, "service", name)
		deleteQuietly(t, c, "deployment", name)
	})

	out := ctl(t, ctx, c, "create", "deployment", name, "--image", "nginx", "-r", "3")
	if !strings.Contains(out, "deployment.apps/"+name+" created") {
		t.Fatalf("create deployment printed %q, want deployment.apps/%s created", out, name)
	}
	deploymentReady(t, ctx, c, name, 3, rolloutTimeout)

	rsName := checkOneReplicaSet(t, ctx, c, name, 3)
	podName := regexp.MustCompile("^" + regexp.QuoteMeta(rsName) + "-" + safeChars + "{5}$")
	_, podCIDR, _ := net.ParseCIDR(c.Config.ClusterCIDR)
	ps := runningPods(t, ctx, c, name, 3, rolloutTimeout)
	for _, p := range ps {
		if !podName.MatchString(p.Name) {
			t.Errorf("pod %s: name does not match %s", p.Name, podName)
		}
		if ip := net.ParseIP(p.IP); ip == nil || !podCIDR.Contains(ip) {
			t.Errorf("pod %s: IP %q not in the cluster CIDR %s", p.Name, p.IP, podCIDR)
		}
		if c.NodeIndex(p.Node) == 0 {
			t.Errorf("pod %s: node %q is not one of %v", p.Name, p.Node, c.NodeNames())
		}
	}
	if nodes := nodesOf(ps); len(nodes) != c.Config.Nodes {
		t.Errorf("3 pods on nodes %v, want them spread over all %d nodes %v", nodes, c.Config.Nodes, c.NodeNames())
	}

	t.Run("exec runs a command in a pod", func(t *testing.T) {
		r, err := c.Ctl(ctx, "exec", ps[0].Name, "--", "/usr/sbin/nginx", "-v")
		if err != nil || r.ExitCode != 0 {
			t.Fatalf("exec: %v %s", err, r)
		}
		if !strings.Contains(r.Stdout+r.Stderr, "nginx version: nginx/") {
			t.Fatalf("exec nginx -v printed no version: %s", r)
		}
		r, err = c.Ctl(ctx, "exec", ps[0].Name, "--", "/usr/sbin/nginx", "-t", "-c", "/no/such.conf")
		if err != nil || r.ExitCode != 1 {
			t.Fatalf("exec of a failing command: want exit 1 passed through: %v %s", err, r)
		}
	})

	t.Run("cp copies a file into a pod and back", func(t *testing.T) {
		dir := t.TempDir()
		const page = "<p>copied by ctl cp</p>\n"
		src := filepath.Join(dir, "page.html")
		if err := os.WriteFile(src, []byte(page), 0o640); err != nil {
			t.Fatal(err)
		}
		ctl(t, ctx, c, "cp", src, ps[0].Name+":/tmp") // an existing directory: lands in /tmp/page.html
		if out := ctl(t, ctx, c, "exec", ps[0].Name, "--", "cat", "/tmp/page.html"); out != page {
			t.Fatalf("the pod's /tmp/page.html holds %q, want %q", out, page)
		}
		back := filepath.Join(dir, "back.html")
		ctl(t, ctx, c, "cp", ps[0].Name+":/tmp/page.html", back)
		fi, err := os.Stat(back)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(back); err != nil || string(got) != page || fi.Mode().Perm() != 0o640 {
			t.Fatalf("copied back %q (mode %v, %v), want %q with mode 0640", got, fi.Mode().Perm(), err, page)
		}
	})

	t.Run("nginx serves through every pod IP from every node", func(t *testing.T) {
		for _, p := range ps {
			for i := 1; i <= c.Config.Nodes; i++ {
				eventually(t, ctx, convergeTimeout, fmt.Sprintf("%s reaches pod %s (%s)", c.Config.NodeName(i), p.Name, p.IP),
					func(ctx context.Context) error { return fetchOK(ctx, c, i, "http://"+p.IP+"/") })
			}
		}
	})

	client := clientPod(t, ctx, c, "e2e-client")
	t.Run("exec passes the exit code through", func(t *testing.T) {
		r, err := c.Ctl(ctx, "exec", client, "--", "sh", "-c", "echo out; echo err >&2; exit 3")
		if err != nil {
			t.Fatal(err)
		}
		// ctl adds kubectl's "command terminated with exit code 3".
		if r.ExitCode != 3 || strings.TrimSpace(r.Stdout) != "out" || !strings.HasPrefix(r.Stderr, "err\n") {
			t.Fatalf("exec: want exit 3, stdout out, stderr err: %s", r)
		}
	})
	t.Run("a pod reaches another pod's IP", func(t *testing.T) {
		eventually(t, ctx, convergeTimeout, "client pod fetches from "+ps[0].IP, func(ctx context.Context) error {
			return fetchInPod(ctx, c, client, "http://"+ps[0].IP+"/")
		})
	})

	out = ctl(t, ctx, c, "expose", "deployment", name, "--port", "80")
	if !strings.Contains(out, "service/"+name+" exposed") {
		t.Fatalf("expose printed %q, want service/%s exposed", out, name)
	}
	clusterIP := serviceIP(t, ctx, c, name)
	t.Run("the Service serves from every node", func(t *testing.T) {
		for i := 1; i <= c.Config.Nodes; i++ {
			eventually(t, ctx, convergeTimeout, fmt.Sprintf("%s reaches Service %s", c.Config.NodeName(i), clusterIP),
				func(ctx context.Context) error { return fetchOK(ctx, c, i, "http://"+clusterIP+"/") })
		}
	})
	t.Run("the Service serves pods by IP and by DNS name", func(t *testing.T) {
		eventually(t, ctx, convergeTimeout, "client pod fetches the Service IP", func(ctx context.Context) error {
			return fetchInPod(ctx, c, client, "http://"+clusterIP+"/")
		})
		fqdn := name + ".default.svc.cluster.local"
		answer := regexp.MustCompile(`Name:\s+` + regexp.QuoteMeta(fqdn) + `\s+Address:\s+` + regexp.QuoteMeta(clusterIP) + `\s`)
		eventually(t, ctx, convergeTimeout, "nslookup "+fqdn+" gives the ClusterIP", func(ctx context.Context) error {
			r, err := c.Ctl(ctx, "exec", client, "--", "nslookup", fqdn)
			if err != nil {
				return err
			}
			if r.ExitCode != 0 || !answer.MatchString(r.Stdout) {
				return fmt.Errorf("nslookup does not answer %s: %s", clusterIP, r)
			}
			return nil
		})
		// The short name through the search path. busybox's nslookup goes
		// on through every search domain and exits 1 when a later one is
		// NXDOMAIN (k8s-nginx.cluster.local, rightly), so the answer is
		// what counts here, not the exit code.
		r, err := c.Ctl(ctx, "exec", client, "--", "nslookup", name)
		if err != nil {
			t.Fatal(err)
		}
		if !answer.MatchString(r.Stdout) {
			t.Errorf("nslookup %s does not resolve to %s through the search path: %s", name, clusterIP, r)
		}
		eventually(t, ctx, convergeTimeout, "client pod fetches http://"+name, func(ctx context.Context) error {
			return fetchInPod(ctx, c, client, "http://"+name+"/")
		})
	})

	t.Run("port-forward reaches nginx from this machine", func(t *testing.T) {
		for _, target := range []string{"deployment/" + name, "service/" + name} {
			port := portForward(t, ctx, c, target, "80")
			for i := range 3 { // a connection each, through one forwarder
				eventually(t, ctx, convergeTimeout, fmt.Sprintf("GET %d through %s's port-forward", i, target), func(ctx context.Context) error {
					return fetchLocal(ctx, "http://127.0.0.1:"+port+"/")
				})
			}
		}
	})

	t.Run("a deleted pod is replaced", func(t *testing.T) {
		victim := ps[1].Name
		ctl(t, ctx, c, "delete", "pod", victim)
		after := runningPods(t, ctx, c, name, 3, convergeTimeout)
		for _, p := range after {
			if p.Name == victim {
				t.Fatalf("deleted pod %s is still listed: %v", victim, after)
			}
			if !podName.MatchString(p.Name) {
				t.Errorf("replacement %s does not belong to replicaset %s", p.Name, rsName)
			}
		}
		deploymentReady(t, ctx, c, name, 3, convergeTimeout)
		checkOneReplicaSet(t, ctx, c, name, 3)
	})

	t.Run("deleting the deployment removes its replicaset and pods", func(t *testing.T) {
		ctl(t, ctx, c, "delete", "service", name)
		out := ctl(t, ctx, c, "delete", "deployment", name)
		if !strings.Contains(out, "deployment.apps \""+name+"\" deleted") {
			t.Errorf("delete deployment printed %q", out)
		}
		eventually(t, ctx, convergeTimeout, "replicasets and pods of "+name+" gone", func(ctx context.Context) error {
			rs, err := c.Get(ctx, "replicasets", "-l", "app="+name)
			if err != nil {
				return err
			}
			ps, err := pods(ctx, c, name)
			if err != nil {
				return err
			}
			if len(rs.Rows) > 0 || len(ps) > 0 {
				return fmt.Errorf("%d replicasets and pods %v left", len(rs.Rows), ps)
			}
			return nil
		})
		if r, err := c.Ctl(ctx, "get", "deployment", name); err != nil || r.ExitCode == 0 || !strings.Contains(r.Stderr, "not found") {
			t.Errorf("get deployment after delete: want NotFound: %v %s", err, r)
		}
	})
}

// safeChars is the alphabet of generated name suffixes and of the
// pod-template-hash (Kubernetes' SafeEncodeString: no vowels, no 0, 1, 3).
const safeChars = "[bcdfghjklmnpqrstvwxz2456789]"

// checkOneReplicaSet checks `get replicaset` shows exactly one replicaset
// of the deployment, named <deployment>-<pod-template-hash>, with n
// desired, current and ready, and returns its name. The hash is a uint32's
// decimal digits safe-encoded, as in Kubernetes: 10 characters
// ("75f95db655") for most templates, fewer for small hash values.
func checkOneReplicaSet(t *testing.T, ctx context.Context, c *harness.Cluster, deploy string, n int) string {
	t.Helper()
	rsName := regexp.MustCompile("^" + regexp.QuoteMeta(deploy) + "-" + safeChars + "{1,10}$")
	var name string
	want := fmt.Sprint(n)
	eventually(t, ctx, convergeTimeout, fmt.Sprintf("one replicaset of %s with %d ready", deploy, n), func(ctx context.Context) error {
		tab, err := c.Get(ctx, "replicaset")
		if err != nil {
			return err
		}
		var mine []map[string]string
		for _, r := range tab.Rows {
			if strings.HasPrefix(r["NAME"], deploy+"-") {
				mine = append(mine, r)
			}
		}
		if len(mine) != 1 {
			return fmt.Errorf("%d replicasets of %s: %v", len(mine), deploy, mine)
		}
		r := mine[0]
		if !rsName.MatchString(r["NAME"]) {
			return fmt.Errorf("replicaset %q does not match %s", r["NAME"], rsName)
		}
		if r["DESIRED"] != want || r["CURRENT"] != want || r["READY"] != want {
			return fmt.Errorf("replicaset %s: DESIRED %s CURRENT %s READY %s, want %d", r["NAME"], r["DESIRED"], r["CURRENT"], r["READY"], n)
		}
		name = r["NAME"]
		return nil
	})
	return name
}

// serviceIP reads a Service's CLUSTER-IP from `get service`.
func serviceIP(t *testing.T, ctx context.Context, c *harness.Cluster, name string) string {
	t.Helper()
	tab, err := c.Get(ctx, "service", name)
	if err != nil {
		t.Fatal(err)
	}
	row, ok := tab.Row("NAME", name)
	if !ok {
		t.Fatalf("get service %s: no row: %v", name, tab.Rows)
	}
	_, svcCIDR, _ := net.ParseCIDR(c.Config.ServiceCIDR)
	if ip := net.ParseIP(row["CLUSTER-IP"]); ip == nil || !svcCIDR.Contains(ip) {
		t.Fatalf("service %s: CLUSTER-IP %q not in %s", name, row["CLUSTER-IP"], svcCIDR)
	}
	if row["TYPE"] != "ClusterIP" || row["PORT(S)"] != "80/TCP" {
		t.Errorf("service %s: TYPE %s PORT(S) %s, want ClusterIP 80/TCP", name, row["TYPE"], row["PORT(S)"])
	}
	return row["CLUSTER-IP"]
}

// fetchInPod fetches url with wget inside a busybox pod, through ctl exec.
func fetchInPod(ctx context.Context, c *harness.Cluster, pod, url string) error {
	r, err := c.Ctl(ctx, "exec", pod, "--", "timeout", "5", "wget", "-qO-", url)
	if err != nil {
		return err
	}
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, welcomeText) {
		return fmt.Errorf("from pod %s, %s: %s", pod, url, r)
	}
	return nil
}
