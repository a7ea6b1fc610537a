package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	cmapp "github.com/skiff-dev/skiff/controller-manager/app"
	"github.com/skiff-dev/skiff/ctl/cmd"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/events"
	"github.com/skiff-dev/skiff/internal/hollownode"
	"github.com/skiff-dev/skiff/internal/testcluster"
	schedapp "github.com/skiff-dev/skiff/scheduler/app"
	schedconfig "github.com/skiff-dev/skiff/scheduler/config"
)

// env runs ctl commands in-process against one in-process apiserver.
type env struct {
	t       *testing.T
	cluster *testcluster.Cluster
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return &env{t: t, cluster: testcluster.Start(t)}
}

func (e *env) client() *client.Client { return e.cluster.Client }

// result is what one ctl run printed and returned.
type result struct {
	out, err string
	code     int
}

func (e *env) run(args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	f := &cmd.Factory{Dial: func(context.Context) (*client.Client, error) { return e.cluster.Client, nil }}
	code := cmd.Execute(ctx, args, cmd.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, f)
	return result{out: out.String(), err: errOut.String(), code: code}
}

// ok runs a command that must succeed and returns its stdout.
func (e *env) ok(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("ctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

// eventually polls cond until it holds or 30s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startControlPlane runs the controller-manager, the scheduler and two
// hollow nodes (which report pods Running without containers) against the
// env's apiserver until the test ends.
func startControlPlane(t *testing.T, e *env) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	log := slog.New(slog.DiscardHandler)
	c := e.client()

	cmRec := events.NewRecorder(c, "controller-manager", "test")
	schedRec := events.NewRecorder(c, "default-scheduler", "test")
	wg.Go(func() { cmRec.Run(ctx) })
	wg.Go(func() { schedRec.Run(ctx) })

	cfg := cmapp.Defaults()
	cfg.LeaderElect = false
	cm, err := cmapp.New(cfg, c, cmRec, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatalf("controller-manager: %v", err)
	}
	wg.Go(func() {
		if err := cm.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("controller-manager stopped: %v", err)
		}
	})

	sched, err := schedapp.New(schedapp.Options{Config: schedconfig.Default()}, c, schedRec, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatalf("scheduler: %v", err)
	}
	wg.Go(func() {
		if err := sched.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("scheduler stopped: %v", err)
		}
	})

	fleet := hollownode.NewFleet(ctx, c, hollownode.FleetOptions{Logger: log})
	t.Cleanup(fleet.Close)
	for i := 1; i <= 2; i++ {
		n, err := hollownode.Start(ctx, c, fmt.Sprintf("node-%d", i), hollownode.Options{Fleet: fleet})
		if err != nil {
			t.Fatalf("hollow node: %v", err)
		}
		t.Cleanup(n.Close)
	}
}

// TestSeedScenarioWithControlPlane runs the seed scenario the way a user
// does, with every controller working: create, watch the rollout, see
// every column kubectl shows, lose a pod and see it replaced, scale, roll
// out a new image, roll back, delete with cascading.
func TestSeedScenarioWithControlPlane(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole control plane")
	}
	e := newEnv(t)
	startControlPlane(t, e)

	if got := e.ok("create", "deployment", "k8s-nginx", "--image", "nginx", "-r", "3"); got != "deployment.apps/k8s-nginx created\n" {
		t.Fatalf("create printed %q", got)
	}
	status := e.ok("rollout", "status", "deployment/k8s-nginx", "--timeout=60s")
	if !strings.HasSuffix(status, "deployment \"k8s-nginx\" successfully rolled out\n") {
		t.Fatalf("rollout status:\n%s", status)
	}
	age := `(\d+s)`
	expect := func(args []string, pattern string) string {
		t.Helper()
		out := e.ok(args...)
		if !regexp.MustCompile(`^` + pattern + `$`).MatchString(out) {
			t.Errorf("ctl %s:\n%s\nwant to match:\n%s", strings.Join(args, " "), out, pattern)
		}
		return out
	}
	expect([]string{"get", "deployments"}, `NAME        READY   UP-TO-DATE   AVAILABLE   AGE\nk8s-nginx   3/3     3            3           `+age+`\n`)
	rs := expect([]string{"get", "rs"}, `NAME                   DESIRED   CURRENT   READY   AGE\nk8s-nginx-[a-z0-9]{10}   3         3         3       `+age+`\n`)
	rsName := strings.Fields(strings.Split(rs, "\n")[1])[0]
	podRow := rsName + `-[a-z0-9]{5}   1/1     Running   0          ` + age + ` +[0-9.]+ +node-[12]   <none>           <none>\n`
	pods := expect([]string{"get", "pods", "-o", "wide"}, `NAME +READY   STATUS    RESTARTS   AGE   IP +NODE     NOMINATED NODE   READINESS GATES\n(`+podRow+`){3}`)

	if got := e.ok("expose", "deployment", "k8s-nginx", "--port", "80", "--type", "NodePort"); got != "service/k8s-nginx exposed\n" {
		t.Errorf("expose printed %q", got)
	}
	expect([]string{"get", "svc", "k8s-nginx"}, `NAME        TYPE       CLUSTER-IP +EXTERNAL-IP   PORT\(S\) +AGE\nk8s-nginx   NodePort   10\.\d+\.\d+\.\d+ +<none>        80:3\d{4}/TCP +`+age+`\n`)
	eventually(t, "the endpoints controller to list three pods", func() bool {
		return regexp.MustCompile(`^k8s-nginx   ([0-9.]+:80,){2}[0-9.]+:80   \d+s\n$`).MatchString(e.run("get", "ep", "k8s-nginx", "--no-headers").out)
	})

	if out := e.ok("describe", "svc", "k8s-nginx"); !regexp.MustCompile(`\nEndpoints: +([0-9.]+:80,){2}[0-9.]+:80\n`).MatchString(out) {
		t.Errorf("describe svc shows no endpoints:\n%s", out)
	}
	if out := e.ok("describe", "node", "node-1"); !regexp.MustCompile(`\nNon-terminated Pods: +\(\d in total\)\n`).MatchString(out) || !strings.Contains(out, "Ready") {
		t.Errorf("describe node:\n%s", out)
	}

	victim := strings.Fields(strings.Split(pods, "\n")[1])[0]
	if got := e.ok("delete", "pod", victim); got != fmt.Sprintf("pod %q deleted\n", victim) {
		t.Errorf("delete pod printed %q", got)
	}
	eventually(t, "a replacement pod", func() bool {
		out := e.ok("get", "pods", "--no-headers")
		return strings.Count(out, "Running") == 3 && !strings.Contains(out, victim)
	})
	if out := e.ok("describe", "pod", victim[:len(rsName)]); !strings.Contains(out, "default-scheduler  Successfully assigned") {
		t.Errorf("describe shows no scheduler event:\n%s", out)
	}

	e.ok("scale", "deployment/k8s-nginx", "--replicas=5")
	e.ok("rollout", "status", "deployment/k8s-nginx", "--timeout=60s")
	expect([]string{"get", "deploy", "k8s-nginx"}, `NAME        READY   UP-TO-DATE   AVAILABLE   AGE\nk8s-nginx   5/5     5            5           `+age+`\n`)

	e.ok("set", "image", "deployment/k8s-nginx", "nginx=nginx:1.27")
	e.ok("rollout", "status", "deployment/k8s-nginx", "--timeout=60s")
	expect([]string{"rollout", "history", "deployment/k8s-nginx"}, `deployment.apps/k8s-nginx \nREVISION  CHANGE-CAUSE\n1         <none>\n2         <none>\n\n`)
	if got := e.ok("rollout", "undo", "deployment/k8s-nginx"); got != "deployment.apps/k8s-nginx rolled back\n" {
		t.Errorf("undo printed %q", got)
	}
	e.ok("rollout", "status", "deployment/k8s-nginx", "--timeout=60s")
	if img := e.ok("get", "deploy", "k8s-nginx", "-o", "jsonpath={.spec.template.spec.containers[0].image}"); img != "nginx" {
		t.Errorf("image after undo = %q", img)
	}

	e.ok("delete", "deployment", "k8s-nginx", "--cascade=foreground", "--timeout=60s")
	eventually(t, "the garbage collector to remove the pods", func() bool {
		return e.run("get", "pods").err == "No resources found in default namespace.\n"
	})
}
