package cmd

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/kinds"
	"github.com/skiff-dev/skiff/proto/api"
)

// waitTimeout bounds the waits tests expect to end: generous, for a loaded
// machine; nothing asserts on how fast they end.
const waitTimeout = "--timeout=60s"

// createWaitPod creates an unbound pod (deleted at once, no kubelet needed)
// in ns with labels.
func createWaitPod(t *testing.T, e *env, ns, name string, labels map[string]string) {
	t.Helper()
	_, err := e.client().Pods().Create(context.Background(), &api.Pod{
		Metadata: &api.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec:     &api.PodSpec{Containers: []*api.Container{{Name: "app", Image: "app"}}}})
	if err != nil {
		t.Fatal(err)
	}
}

// setPodStatus writes what a kubelet would: the phase, an IP and the Ready
// condition.
func setPodStatus(t *testing.T, e *env, ns, name, phase, ready string) {
	t.Helper()
	ctx := context.Background()
	pod, err := e.client().Pods().Get(ctx, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	pod.Status = &api.PodStatus{Phase: phase, PodIp: "10.0.0.7", Conditions: []*api.Condition{{Type: "Ready", Status: ready}}}
	if _, err := e.client().Pods().UpdateStatus(ctx, pod); err != nil {
		t.Fatalf("set status of pod %s: %v", name, err)
	}
}

// setAvailable writes the deployment controller's Available condition, as
// observed at the deployment's generation minus lag.
func setAvailable(t *testing.T, e *env, name, available string, lag int64) {
	t.Helper()
	ctx := context.Background()
	d, err := e.client().Deployments().Get(ctx, "default", name)
	if err != nil {
		t.Fatal(err)
	}
	d.Status = &api.DeploymentStatus{ObservedGeneration: d.GetMetadata().GetGeneration() - lag,
		Conditions: []*api.Condition{{Type: "Progressing", Status: "True"}, {Type: "Available", Status: available}}}
	if _, err := e.client().Deployments().UpdateStatus(ctx, d); err != nil {
		t.Fatalf("set status of deployment %s: %v", name, err)
	}
}

// TestWaitConditionAlreadyMet protects the forms of --for, checked on
// objects already in the state waited for, and kubectl's output for them.
func TestWaitConditionAlreadyMet(t *testing.T) {
	e := newEnv(t)
	e.ok("create", "deployment", "web", "--image", "nginx")
	setAvailable(t, e, "web", "True", 0)
	createWaitPod(t, e, "default", "p", nil)
	setPodStatus(t, e, "default", "p", "Running", "True")
	file := writeFile(t, t.TempDir(), "web.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n")

	const deployMet, podMet = "deployment.apps/web condition met\n", "pod/p condition met\n"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"condition", []string{"--for=condition=Available", "deployment/web"}, deployMet},
		{"condition type is case-insensitive", []string{"--for=condition=available", "deploy", "web"}, deployMet},
		{"condition value is case-insensitive", []string{"--for=condition=Available=true", "deployments/web"}, deployMet},
		{"pod Ready", []string{"--for=condition=Ready", "pod/p"}, podMet},
		{"jsonpath with a value", []string{"--for=jsonpath={.status.phase}=Running", "pod/p"}, podMet},
		{"jsonpath with a quoted value", []string{"--for=jsonpath={.status.phase}='Running'", "pod/p"}, podMet},
		{"relaxed jsonpath", []string{"--for=jsonpath=.status.phase=Running", "pod/p"}, podMet},
		{"jsonpath filter keeps its ==", []string{`--for=jsonpath={.status.conditions[?(@.type=="Ready")].status}=True`, "pod/p"}, podMet},
		{"jsonpath number", []string{"--for=jsonpath={.spec.replicas}=1", "deployment/web"}, deployMet},
		{"jsonpath without a value: the path exists", []string{"--for=jsonpath={.status.podIP}", "pod/p"}, podMet},
		{"timeout 0 checks once", []string{"--for=condition=Available", "deployment/web", "--timeout=0"}, deployMet},
		{"negative timeout", []string{"--for=condition=Available", "deployment/web", "--timeout=-1s"}, deployMet},
		{"from a file", []string{"--for=condition=Available", "-f", file}, deployMet},
		{"several kinds", []string{"--for=jsonpath={.metadata.name}", "deploy/web", "pod/p"}, deployMet + podMet},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.run("", append([]string{"wait", waitTimeout}, tc.args...)...)
			if r.code != 0 || r.out != tc.want || r.err != "" {
				t.Errorf("ctl wait %s: %+v, want stdout %q", strings.Join(tc.args, " "), r, tc.want)
			}
		})
	}
}

// TestWaitNotMet protects kubectl's errors and exit code for a wait that
// ends without its condition.
func TestWaitNotMet(t *testing.T) {
	e := newEnv(t)
	e.ok("create", "deployment", "web", "--image", "nginx")
	setAvailable(t, e, "web", "False", 0)
	e.ok("create", "deployment", "stale", "--image", "nginx")
	e.ok("scale", "deployment/stale", "--replicas=2") // generation 2
	setAvailable(t, e, "stale", "True", 1)
	createWaitPod(t, e, "default", "p", nil)
	setPodStatus(t, e, "default", "p", "Pending", "False")

	for _, tc := range []struct {
		name string
		args []string
		err  string
	}{
		{"condition false", []string{"--for=condition=Available", "deployment/web", "--timeout=1s"},
			"error: timed out waiting for the condition on deployments/web\n"},
		{"condition of an older generation", []string{"--for=condition=Available", "deployment/stale", "--timeout=1s"},
			"error: timed out waiting for the condition on deployments/stale\n"},
		{"no such condition", []string{"--for=condition=Ready", "deployment/web", "--timeout=1s"},
			"error: timed out waiting for the condition on deployments/web\n"},
		{"jsonpath value differs", []string{"--for=jsonpath={.status.phase}=Running", "pod/p", "--timeout=1s"},
			"error: timed out waiting for the condition on pods/p\n"},
		{"jsonpath finds nothing", []string{"--for=jsonpath={.status.hostIP}", "pod/p", "--timeout=1s"},
			"error: timed out waiting for the condition on pods/p\n"},
		{"delete of an object that stays", []string{"--for=delete", "pod/p", "--timeout=1s"},
			"error: timed out waiting for the condition on pods/p\n"},
		{"timeout 0", []string{"--for=condition=Available", "deployment/web", "--timeout=0"},
			"error: condition not met for deployments/web\n"},
		{"timeout 0 delete", []string{"--for=delete", "pod/p", "--timeout=0"},
			"error: condition not met for pods/p\n"},
		{"missing object", []string{"--for=condition=Ready", "pod/nope"},
			"Error from server (NotFound): pods \"nope\" not found\n"},
		{"selector matching nothing", []string{"--for=condition=Ready", "pods", "-l", "app=nope"},
			"error: no matching resources found\n"},
		{"jsonpath matching a list, with a value", []string{"--for=jsonpath={.status.conditions}=x", "pod/p"},
			"error: jsonpath {.status.conditions} leads to a nested object or list, which cannot be compared with a value\n"},
		{"kind without a name", []string{"--for=condition=Ready", "pods"},
			"error: resource(s) were provided, but no name was specified\nSee 'ctl wait --help' for usage.\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.run("", append([]string{"wait"}, tc.args...)...)
			if r.code != 1 || r.out != "" || r.err != tc.err {
				t.Errorf("ctl wait %s: %+v, want exit 1 and stderr %q", strings.Join(tc.args, " "), r, tc.err)
			}
		})
	}
}

// TestWaitConditionBecomesTrue protects the watch: a wait that has
// listed its object before the condition holds ends when a status update
// makes it hold, having listed once and watched since (no polling).
func TestWaitConditionBecomesTrue(t *testing.T) {
	e := newEnv(t)
	rec := recordRequests(e)
	e.ok("create", "deployment", "web", "--image", "nginx")
	createWaitPod(t, e, "default", "p", nil)
	for _, tc := range []struct {
		name     string
		resource string
		args     []string
		update   func()
		want     string
	}{
		{"deployment Available", "deployments", []string{"--for=condition=Available", "deployment/web"}, func() {
			setAvailable(t, e, "web", "False", 0)
			setAvailable(t, e, "web", "True", 0)
		}, "deployment.apps/web condition met\n"},
		{"pod phase by jsonpath", "pods", []string{"--for=jsonpath={.status.phase}=Running", "pod/p"}, func() {
			setPodStatus(t, e, "default", "p", "Pending", "False")
			setPodStatus(t, e, "default", "p", "Running", "True")
		}, "pod/p condition met\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec.reset()
			w := e.startAsync(append([]string{"wait", waitTimeout}, tc.args...)...)
			eventually(t, "the wait to list its object", func() bool { return rec.count("List", tc.resource) == 1 })
			tc.update()
			if r := w.wait(t); r.code != 0 || r.out != tc.want || r.err != "" {
				t.Errorf("ctl wait %s: %+v, want stdout %q", strings.Join(tc.args, " "), r, tc.want)
			}
			if lists, watches := rec.count("List", tc.resource), rec.count("Watch", tc.resource); lists != 1 || watches == 0 {
				t.Errorf("the wait listed %d times and watched %d times, want one list and a watch", lists, watches)
			}
		})
	}
}

// TestWaitSelectorOverSeveralObjects protects -l and --all: every matching
// object is waited for and printed, in namespace and name order.
func TestWaitSelectorOverSeveralObjects(t *testing.T) {
	e := newEnv(t)
	for _, n := range []string{"c", "a", "b"} {
		createWaitPod(t, e, "default", n, map[string]string{"app": "web"})
	}
	createWaitPod(t, e, "default", "other", map[string]string{"app": "other"})
	w := e.startAsync("wait", "--for=condition=Ready", "pods", "-l", "app=web", waitTimeout)
	for _, n := range []string{"b", "c", "a"} {
		setPodStatus(t, e, "default", n, "Running", "True")
	}
	if r := w.wait(t); r.code != 0 || r.out != "pod/a condition met\npod/b condition met\npod/c condition met\n" {
		t.Errorf("wait -l app=web: %+v", r)
	}
	// The timeout covers the three met conditions too: long enough for
	// them on a loaded machine, spent waiting for "other".
	r := e.run("", "wait", "--for=condition=Ready", "pods", "--all", "--timeout=5s")
	if r.code != 1 || r.out != "pod/a condition met\npod/b condition met\npod/c condition met\n" ||
		r.err != "error: timed out waiting for the condition on pods/other\n" {
		t.Errorf("wait --all with one pod not ready: %+v", r)
	}
	if r := e.run("", "wait", "--for=delete", "pods", "-l", "app=nope"); r.code != 0 || r.out != "" || r.err != "" {
		t.Errorf("a delete wait over nothing succeeds: %+v", r)
	}
}

// TestWaitForDelete protects --for=delete: an object deleted while waited
// for is printed as deleted; one the user named that is already gone
// succeeds at once, silently, as in kubectl.
func TestWaitForDelete(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, tc := range [][]string{
		{"--for=delete", "pod/gone"},
		{"--for=DELETE", "pod", "gone", "--timeout=0"},
	} {
		if r := e.run("", append([]string{"wait"}, tc...)...); r.code != 0 || r.out != "" || r.err != "" {
			t.Errorf("ctl wait %s on a missing pod: %+v", strings.Join(tc, " "), r)
		}
	}

	rec := recordRequests(e)
	createWaitPod(t, e, "default", "p", nil)
	w := e.startAsync("wait", "--for=delete", "pod/p", waitTimeout)
	eventually(t, "the wait to list pod p", func() bool { return rec.count("List", "pods") == 1 })
	if _, err := e.client().Pods().Delete(ctx, "default", "p", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if r := w.wait(t); r.code != 0 || r.out != "pod/p deleted\n" || r.err != "" {
		t.Errorf("wait for a delete: %+v", r)
	}

	// Objects a selector found are printed as deleted, even those gone
	// before the wait came to them.
	rec.reset()
	for _, n := range []string{"r", "q"} {
		createWaitPod(t, e, "default", n, map[string]string{"app": "web"})
	}
	sel := e.startAsync("wait", "--for=delete", "pods", "-l", "app=web", waitTimeout)
	eventually(t, "the wait to list the pods", func() bool { return rec.count("List", "pods") >= 1 })
	for _, n := range []string{"r", "q"} {
		if _, err := e.client().Pods().Delete(ctx, "default", n, client.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if r := sel.wait(t); r.code != 0 || r.out != "pod/q deleted\npod/r deleted\n" || r.err != "" {
		t.Errorf("wait -l for deletes: %+v", r)
	}
}

// requestRecorder stands between ctl and the apiserver and records the
// Lists that returned and the Watches opened, so that a test knows what a
// running command has seen.
type requestRecorder struct {
	api.APIClient
	mu    sync.Mutex
	calls []string // "List pods", "Watch deployments"
}

func recordRequests(e *env) *requestRecorder {
	r := &requestRecorder{APIClient: e.client().API}
	e.setWrap(func(api.APIClient) api.APIClient { return r })
	return r
}

func (r *requestRecorder) record(verb, resource string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, verb+" "+resource)
}

func (r *requestRecorder) count(verb, resource string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		if c == verb+" "+resource {
			n++
		}
	}
	return n
}

func (r *requestRecorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = nil
}

func (r *requestRecorder) List(ctx context.Context, in *api.ListRequest, opts ...grpc.CallOption) (*api.ListResponse, error) {
	resp, err := r.APIClient.List(ctx, in, opts...)
	r.record("List", in.GetResource())
	return resp, err
}

func (r *requestRecorder) Watch(ctx context.Context, in *api.WatchRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[api.WatchEvent], error) {
	r.record("Watch", in.GetResource())
	return r.APIClient.Watch(ctx, in, opts...)
}

// TestFollowMissesNothingBetweenListAndWatch protects the list-then-watch
// order: a change made right after the list (here, while seen handles it)
// reaches seen through the watch from the list's resourceVersion.
func TestFollowMissesNothingBetweenListAndWatch(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	createWaitPod(t, e, "default", "p", nil)
	info, _ := kinds.ByResource("pods")
	ref := objectRef{info: info, namespace: "default", name: "p"}
	var states []string
	err := followRef(e.client(), ref).follow(ctx, func(obj kinds.Object) (bool, error) {
		if obj == nil {
			states = append(states, "gone")
			return true, nil
		}
		states = append(states, "pod "+obj.(*api.Pod).GetStatus().GetPhase())
		if len(states) == 1 {
			setPodStatus(t, e, "default", "p", "Running", "True")
			if _, err := e.client().Pods().Delete(ctx, "default", "p", client.DeleteOptions{}); err != nil {
				return false, err
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(states, ", "); got != "pod Pending, pod Running, gone" {
		t.Errorf("states seen: %s", got)
	}
}

// TestWaitBadFor protects the checks of --for: each names the flag and
// ends ctl before it contacts the server.
func TestWaitBadFor(t *testing.T) {
	f := &Factory{Dial: func(context.Context) (*client.Client, error) {
		t.Error("ctl wait dialled the server")
		return nil, errors.New("no server in this test")
	}, Getenv: func(string) string { return "" }}
	for _, tc := range []struct {
		name string
		args []string
		err  string
	}{
		{"missing --for", []string{"pod/p"}, "error: --for is required: one of delete, condition=NAME[=VALUE] or jsonpath='{PATH}'[=VALUE]\n"},
		{"unknown form", []string{"--for=ready", "pod/p"}, "error: invalid --for \"ready\": want one of delete, condition=NAME[=VALUE] or jsonpath='{PATH}'[=VALUE]\n"},
		{"create", []string{"--for=create", "pod/p"}, "error: invalid --for \"create\": want one of"},
		{"condition without =", []string{"--for=condition", "pod/p"}, "error: invalid --for \"condition\": a condition name is required"},
		{"condition without a name", []string{"--for=condition=", "pod/p"}, "error: invalid --for \"condition=\": a condition name is required"},
		{"condition with an empty value", []string{"--for=condition=Ready=", "pod/p"}, "error: invalid --for \"condition=Ready=\": the condition value after '=' is empty"},
		{"jsonpath without a path", []string{"--for=jsonpath=", "pod/p"}, "error: invalid --for \"jsonpath=\": jsonpath expression cannot be empty"},
		{"jsonpath with an empty value", []string{"--for=jsonpath={.status.phase}=", "pod/p"}, "error: invalid --for \"jsonpath={.status.phase}=\": jsonpath wait has to have a value after equal sign"},
		{"jsonpath that does not parse", []string{"--for=jsonpath={.status.phase", "pod/p"}, "error: invalid --for \"jsonpath={.status.phase\": error parsing jsonpath"},
		{"no resources", []string{"--for=delete"}, "error: You must provide one or more resources by argument or filename."},
		{"-f and arguments", []string{"--for=delete", "-f", "x.yaml", "pod/p"}, "error: resource names cannot be given with -f\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut strings.Builder
			code := Execute(context.Background(), append([]string{"wait"}, tc.args...), IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, f)
			if code != 1 || !strings.HasPrefix(errOut.String(), tc.err) || !strings.HasSuffix(errOut.String(), "See 'ctl wait --help' for usage.\n") {
				t.Errorf("ctl wait %s: exit %d, stderr %q, want it to start with %q", strings.Join(tc.args, " "), code, errOut.String(), tc.err)
			}
		})
	}
}

func TestSplitJSONPathFor(t *testing.T) {
	for _, tc := range []struct {
		spec, path, value string
		hasValue          bool
	}{
		{"{.status.phase}", "{.status.phase}", "", false},
		{"{.status.phase}=Running", "{.status.phase}", "Running", true},
		{".spec.replicas=3", ".spec.replicas", "3", true},
		{`{.status.conditions[?(@.type=="Ready")].status}=True`, `{.status.conditions[?(@.type=="Ready")].status}`, "True", true},
		{`.items[?(@.a!="b")].c=x=y`, `.items[?(@.a!="b")].c`, "x=y", true},
		{"{.a}=", "{.a}", "", true},
	} {
		path, value, hasValue := splitJSONPathFor(tc.spec)
		if path != tc.path || value != tc.value || hasValue != tc.hasValue {
			t.Errorf("splitJSONPathFor(%q) = %q, %q, %v; want %q, %q, %v", tc.spec, path, value, hasValue, tc.path, tc.value, tc.hasValue)
		}
	}
}
