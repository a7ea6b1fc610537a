package cmd

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/proto/api"
)

func TestDeleteBySelectorAllAndFile(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, n := range []string{"a", "b", "c"} {
		e.ok("create", "deployment", n, "--image", "nginx")
	}
	d, _ := e.client().Deployments().Get(ctx, "default", "c")
	d.GetMetadata().GetLabels()["keep"] = "yes"
	if _, err := e.client().Deployments().Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	if got := e.ok("delete", "deploy", "-l", "app=a"); got != "deployment.apps \"a\" deleted\n" {
		t.Errorf("delete -l printed %q", got)
	}
	if got := e.ok("delete", "deploy", "-l", "!keep", "-o", "name"); got != "deployment.apps/b\n" {
		t.Errorf("delete -l -o name printed %q", got)
	}
	if got := e.ok("delete", "deploy", "--all"); got != "deployment.apps \"c\" deleted\n" {
		t.Errorf("delete --all printed %q", got)
	}
	if r := e.run("", "delete", "deploy", "--all"); r.code != 0 || r.err != "No resources found in default namespace.\n" {
		t.Errorf("delete --all with nothing left: %+v", r)
	}

	path := writeFile(t, t.TempDir(), "web.yaml", webManifest)
	e.ok("apply", "-f", path)
	if got := e.ok("delete", "-f", path); got != "deployment.apps \"web\" deleted\nservice \"web\" deleted\n" {
		t.Errorf("delete -f printed %q", got)
	}
}

func TestDeleteErrorsAndIgnoreNotFound(t *testing.T) {
	e := newEnv(t)
	if got := e.fails("delete", "pod", "nope"); got != "Error from server (NotFound): pods \"nope\" not found\n" {
		t.Errorf("delete of a missing pod printed %q", got)
	}
	if r := e.run("", "delete", "pod", "nope", "--ignore-not-found"); r.code != 0 || r.err != "" {
		t.Errorf("--ignore-not-found: %+v", r)
	}
	if got := e.fails("delete", "pods"); !strings.Contains(got, "no name was specified") {
		t.Errorf("delete KIND without names or selector: %q", got)
	}
	if got := e.fails("delete", "pod", "x", "--cascade=sideways"); !strings.Contains(got, "invalid cascade value") {
		t.Errorf("bad --cascade: %q", got)
	}
}

// TestDeleteCascadeAndWait protects the propagation policies sent and the
// --wait timeout: with no garbage collector running, a foreground delete
// never finishes, so --wait must give up with a non-zero exit.
func TestDeleteCascadeAndWait(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ok("create", "deployment", "orphaned", "--image", "nginx")
	e.ok("delete", "deployment", "orphaned", "--cascade=orphan", "--wait=false")
	d, err := e.client().Deployments().Get(ctx, "default", "orphaned")
	if err != nil {
		t.Fatalf("an orphan delete keeps the object until the garbage collector releases it: %v", err)
	}
	if d.GetMetadata().GetDeletionTimestamp() == nil || !slices.Contains(d.GetMetadata().GetFinalizers(), "orphan") {
		t.Errorf("orphan delete: deletionTimestamp %v finalizers %v", d.GetMetadata().GetDeletionTimestamp(), d.GetMetadata().GetFinalizers())
	}

	e.ok("create", "deployment", "fg", "--image", "nginx")
	r := e.run("", "delete", "deployment", "fg", "--cascade=foreground", "--timeout=1s")
	if r.code == 0 || !strings.Contains(r.err, "timed out waiting for the condition on deployments/fg") {
		t.Errorf("delete --wait on an object held by a finalizer: %+v", r)
	}
	d, err = e.client().Deployments().Get(ctx, "default", "fg")
	if err != nil || !slices.Contains(d.GetMetadata().GetFinalizers(), "foregroundDeletion") {
		t.Errorf("foreground delete: %v %v", d.GetMetadata().GetFinalizers(), err)
	}

	// Releasing the finalizer lets a waiting delete finish.
	e.ok("create", "deployment", "held", "--image", "nginx")
	del := e.startAsync("delete", "deployment", "held", "--cascade=foreground")
	eventually(t, "the delete to be sent", func() bool { return strings.Contains(del.out.String(), "deleted") })
	held, err := e.client().Deployments().Get(ctx, "default", "held")
	if err != nil {
		t.Fatal(err)
	}
	held.GetMetadata().Finalizers = nil
	if _, err := e.client().Deployments().Update(ctx, held); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deployment to be gone", func() bool {
		_, err := e.client().Deployments().Get(ctx, "default", "held")
		return client.IsNotFound(err)
	})
	if r := del.wait(t); r.code != 0 {
		t.Errorf("delete --wait after the finalizer went: %+v", r)
	}
}

// TestDeleteBoundPodGracePeriod protects --grace-period and --now on a pod
// bound to a node: the pod stays Terminating until its kubelet confirms.
func TestDeleteBoundPodGracePeriod(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pod, err := e.client().Pods().Create(ctx, &api.Pod{Metadata: &api.ObjectMeta{Name: "p", Namespace: "default"},
		Spec: &api.PodSpec{Containers: []*api.Container{{Name: "c", Image: "busybox"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client().Bind(ctx, "default", "p", pod.GetMetadata().GetUid(), "node-1"); err != nil {
		t.Fatal(err)
	}
	e.ok("delete", "pod", "p", "--grace-period=7", "--wait=false")
	got, err := e.client().Pods().Get(ctx, "default", "p")
	if err != nil || got.GetMetadata().GetDeletionGracePeriodSeconds() != 7 {
		t.Fatalf("graceful delete: %v %v", got.GetMetadata(), err)
	}
	if s := e.ok("get", "pod", "p", "--no-headers"); !strings.Contains(s, "Terminating") {
		t.Errorf("a pod being deleted shows Terminating: %q", s)
	}
	r := e.run("", "delete", "pod", "p", "--force", "--grace-period=0")
	if r.code != 0 || !strings.Contains(r.err, "Immediate deletion does not wait") {
		t.Errorf("force delete: %+v", r)
	}
	if _, err := e.client().Pods().Get(ctx, "default", "p"); !client.IsNotFound(err) {
		t.Errorf("force delete left the pod: %v", err)
	}
}
