package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/ctl/printers"
	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/kubelet/runtime"
	"github.com/skiff-dev/skiff/proto/api"
)

// createInitPod creates a pod with init containers under restartPolicy.
func (e *env) createInitPod(name, restartPolicy string, inits []*api.Container, containers ...*api.Container) *api.Pod {
	e.t.Helper()
	grace := int64(5)
	p, err := e.pods().Create(context.Background(), &api.Pod{
		Metadata: &api.ObjectMeta{Name: name, Namespace: "default"},
		Spec: &api.PodSpec{NodeName: e.cfg.NodeName, RestartPolicy: restartPolicy, TerminationGracePeriodSeconds: &grace,
			InitContainers: inits, Containers: containers},
	})
	if err != nil {
		e.t.Fatalf("create pod %s: %v", name, err)
	}
	return p
}

// runsOf lists the containerd runs of one container of a pod.
func (e *env) runsOf(t *testing.T, uid, container string) []*runtime.Container {
	t.Helper()
	var out []*runtime.Container
	for _, c := range e.containers(t) {
		if c.Pod.UID == uid && c.Name == container {
			out = append(out, c)
		}
	}
	return out
}

func readyCondition(p *api.Pod) *api.Condition {
	for _, c := range p.GetStatus().GetConditions() {
		if c.GetType() == "Ready" {
			return c
		}
	}
	return nil
}

func condition(p *api.Pod, typ string) string {
	for _, c := range p.GetStatus().GetConditions() {
		if c.GetType() == typ {
			return c.GetStatus()
		}
	}
	return ""
}

func TestInitContainers(t *testing.T) {
	e := newEnv(t)

	t.Run("init containers run in order, each to completion, before the app container", func(t *testing.T) {
		// Each init container sleeps, so the kubelet reports it running.
		created := e.createInitPod("ordered", "Always",
			[]*api.Container{busybox("first", "echo one; sleep 1"), busybox("second", "echo two; sleep 1")},
			busybox("app", "echo app; sleep 2; exit 1"))
		seen := map[string]bool{}
		p := e.waitPodSince(t, "ordered", created.GetMetadata().GetResourceVersion(), 90*time.Second, "the app container restarted", func(p *api.Pod) bool {
			st := p.GetStatus()
			if st == nil {
				return false
			}
			ics, app := st.GetInitContainerStatuses(), st.GetContainerStatuses()
			if len(ics) != 2 || len(app) != 1 {
				t.Fatalf("statuses: init %v, app %v", ics, app)
			}
			seen[printers.PodStatus(p)] = true
			if condition(p, "Initialized") == "True" {
				for _, cs := range ics {
					if term := cs.GetState().GetTerminated(); term == nil || term.GetExitCode() != 0 {
						t.Errorf("Initialized while %s is %v", cs.GetName(), cs.GetState())
					}
				}
			} else {
				if st.GetPhase() != "Pending" {
					t.Errorf("phase %s while initialising, want Pending", st.GetPhase())
				}
				if w := app[0].GetState().GetWaiting(); w.GetReason() != "PodInitializing" {
					t.Errorf("app container %v while initialising, want waiting PodInitializing", app[0].GetState())
				}
			}
			return app[0].GetRestartCount() >= 1
		})
		if !seen["Init:0/2"] {
			t.Errorf("kubectl STATUS never showed Init:0/2; saw %v", seen)
		}
		ics := p.GetStatus().GetInitContainerStatuses()
		first, second := ics[0].GetState().GetTerminated(), ics[1].GetState().GetTerminated()
		for i, term := range []*api.ContainerStateTerminated{first, second} {
			if term.GetExitCode() != 0 || term.GetReason() != "Completed" || !ics[i].GetReady() || ics[i].GetRestartCount() != 0 {
				t.Errorf("init container %s: %v, want completed, ready, never restarted", ics[i].GetName(), ics[i])
			}
		}
		appFirst := p.GetStatus().GetContainerStatuses()[0].GetLastState().GetTerminated()
		if first.GetFinishedAt().AsTime().After(second.GetStartedAt().AsTime()) || second.GetFinishedAt().AsTime().After(appFirst.GetStartedAt().AsTime()) {
			t.Errorf("not in order: first ran %v–%v, second %v–%v, the app started %v", first.GetStartedAt().AsTime(), first.GetFinishedAt().AsTime(),
				second.GetStartedAt().AsTime(), second.GetFinishedAt().AsTime(), appFirst.GetStartedAt().AsTime())
		}
		if logs := e.containerLogs(t, "ordered", "second"); logs != "two\n" {
			t.Errorf("logs of init container second = %q", logs)
		}
		// Without a container name, logs are the only app container's:
		// init containers are asked for by name.
		if logs := logsOf(t, e, "ordered", false); !strings.HasPrefix(logs, "app\n") {
			t.Errorf("logs of the pod = %q, want the app container's", logs)
		}

		// Neither the app container's restart nor a kubelet restart runs
		// the init containers again.
		e.stop()
		e.start()
		e.waitPod(t, "ordered", 60*time.Second, "the app container restarted again after the kubelet restart", func(q *api.Pod) bool {
			return q.GetStatus().GetContainerStatuses()[0].GetRestartCount() >= 2 && condition(q, "Initialized") == "True"
		})
		for _, name := range []string{"first", "second"} {
			if runs := e.runsOf(t, p.GetMetadata().GetUid(), name); len(runs) != 1 || runs[0].ExitCode != 0 {
				t.Errorf("init container %s has runs %+v, want the one completed run", name, runs)
			}
		}
	})

	t.Run("an init container failing under restartPolicy Never fails the pod", func(t *testing.T) {
		created := e.createInitPod("init-fails", "Never", []*api.Container{busybox("setup", "echo broken; exit 3")}, busybox("app", "sleep 1000"))
		p := e.waitPodSince(t, "init-fails", created.GetMetadata().GetResourceVersion(), 60*time.Second, "Failed", func(p *api.Pod) bool {
			return p.GetStatus().GetPhase() == "Failed"
		})
		if got := printers.PodStatus(p); got != "Init:Error" {
			t.Errorf("kubectl STATUS = %s, want Init:Error", got)
		}
		cs := p.GetStatus().GetInitContainerStatuses()[0]
		if term := cs.GetState().GetTerminated(); term.GetExitCode() != 3 || term.GetReason() != "Error" {
			t.Errorf("init container status %v, want terminated Error exit 3", cs)
		}
		if condition(p, "Initialized") != "False" {
			t.Errorf("Initialized = %s, want False", condition(p, "Initialized"))
		}
		time.Sleep(2 * time.Second) // more syncs: nothing is restarted or started
		uid := p.GetMetadata().GetUid()
		if runs := e.runsOf(t, uid, "app"); len(runs) != 0 {
			t.Errorf("the app container was created: %+v", runs)
		}
		if runs := e.runsOf(t, uid, "setup"); len(runs) != 1 {
			t.Errorf("the failed init container has runs %+v, want one", runs)
		}
		if logs := e.containerLogs(t, "init-fails", "setup"); logs != "broken\n" {
			t.Errorf("logs = %q", logs)
		}
	})

	t.Run("an init container failing three times under OnFailure is restarted with back-off until it completes", func(t *testing.T) {
		// /etc/hosts is the pod's own file (pods/<uid>/hosts on the node),
		// kept across container restarts: a counter that survives them.
		// Three failures: back-offs of 1s, 2s and 4s, so the kubelet
		// reports the back-off even when slow to notice an exit.
		created := e.createInitPod("init-flaky", "OnFailure",
			[]*api.Container{busybox("flaky", `echo "# try" >> /etc/hosts; [ "$(grep -c '^# try' /etc/hosts)" -ge 4 ] || exit 1`)},
			busybox("app", "sleep 1000"))
		seen := map[string]bool{}
		p := e.waitPodSince(t, "init-flaky", created.GetMetadata().GetResourceVersion(), 90*time.Second, "Running", func(p *api.Pod) bool {
			if p.GetStatus() != nil {
				seen[printers.PodStatus(p)] = true
			}
			return running(p)
		})
		if !seen["Init:CrashLoopBackOff"] {
			t.Errorf("kubectl STATUS never showed Init:CrashLoopBackOff; saw %v", seen)
		}
		cs := p.GetStatus().GetInitContainerStatuses()[0]
		if cs.GetRestartCount() != 3 || cs.GetState().GetTerminated().GetExitCode() != 0 || !cs.GetReady() {
			t.Errorf("init container status %v, want completed after 3 restarts", cs)
		}
		if last := cs.GetLastState().GetTerminated(); last.GetExitCode() != 1 || last.GetReason() != "Error" {
			t.Errorf("init container lastState %v, want the failed run", last)
		}
		if app := p.GetStatus().GetContainerStatuses()[0]; app.GetRestartCount() != 0 || condition(p, "Initialized") != "True" {
			t.Errorf("app %v, Initialized %s", app, condition(p, "Initialized"))
		}
		if runs := e.runsOf(t, p.GetMetadata().GetUid(), "app"); len(runs) != 1 {
			t.Errorf("app container runs %+v, want one", runs)
		}
	})
}

// waitContainerLogs polls the log of one container of a pod until it reads
// want, and returns the last log read: a container reported running may not
// have written its output yet.
func (e *env) waitContainerLogs(t *testing.T, pod, container, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		logs := e.containerLogs(t, pod, container)
		if logs == want || time.Now().After(deadline) {
			return logs
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// containerLogs is the log of one container of a pod.
func (e *env) containerLogs(t *testing.T, pod, container string) string {
	t.Helper()
	return e.logs(t, &api.LogsRequest{Namespace: "default", Pod: pod, Container: container})
}

func TestStartupProbes(t *testing.T) {
	e := newEnv(t)
	// The container starts slowly: /tmp/started appears after 4s. The
	// liveness probe checks the same file and fails at once, so had it run
	// before the startup probe succeeded the container would restart.
	slow := busybox("main", "sleep 4; touch /tmp/started; trap 'exit 0' TERM; sleep 1000 & wait")
	check := &api.ExecAction{Command: []string{"test", "-f", "/tmp/started"}}
	slow.StartupProbe = &api.Probe{Exec: check, PeriodSeconds: 1, FailureThreshold: 30, TimeoutSeconds: 10}
	slow.LivenessProbe = &api.Probe{Exec: check, PeriodSeconds: 1, FailureThreshold: 1, TimeoutSeconds: 10}
	e.createPod("slow-start", slow)

	never := busybox("main", "trap 'exit 0' TERM; sleep 1000 & wait")
	never.StartupProbe = &api.Probe{Exec: &api.ExecAction{Command: []string{"test", "-f", "/nope"}}, PeriodSeconds: 1, FailureThreshold: 2, TimeoutSeconds: 10}
	e.createPod("never-starts", never)

	t.Run("liveness and readiness wait for the startup probe", func(t *testing.T) {
		var sawNotStarted bool
		p := e.waitPod(t, "slow-start", 90*time.Second, "started and ready", func(p *api.Pod) bool {
			cs := p.GetStatus().GetContainerStatuses()
			if len(cs) == 0 || cs[0].GetState().GetRunning() == nil {
				return false
			}
			if !cs[0].GetStarted() {
				sawNotStarted = true
				if cs[0].GetReady() || ready(p) {
					t.Errorf("ready before the startup probe succeeded: %v", cs[0])
				}
			}
			return cs[0].GetStarted() && ready(p)
		})
		if !sawNotStarted {
			t.Error("never saw the running container reported as not started")
		}
		if n := p.GetStatus().GetContainerStatuses()[0].GetRestartCount(); n != 0 {
			t.Errorf("restartCount = %d: the liveness probe ran before the startup probe succeeded", n)
		}
		// Once started, the liveness probe runs and passes: no restart.
		time.Sleep(3 * time.Second)
		p = e.waitPod(t, "slow-start", 10*time.Second, "still running", running)
		if cs := p.GetStatus().GetContainerStatuses()[0]; cs.GetRestartCount() != 0 || !cs.GetStarted() {
			t.Errorf("after starting: %v", cs)
		}

		// A restarted kubelet takes the container's start from the pod's
		// status: it is not probed for startup again, so it never turns
		// unstarted and unready (Ready keeps its lastTransitionTime).
		readySince := readyCondition(p).GetLastTransitionTime().AsTime()
		e.stop()
		e.start()
		time.Sleep(3 * time.Second) // a relist and a pod sync
		p = e.waitPod(t, "slow-start", 10*time.Second, "still running", running)
		if c := readyCondition(p); c.GetStatus() != "True" || !c.GetLastTransitionTime().AsTime().Equal(readySince) {
			t.Errorf("after a kubelet restart Ready is %v, want True since %v", c, readySince)
		}
		if cs := p.GetStatus().GetContainerStatuses()[0]; cs.GetRestartCount() != 0 || !cs.GetStarted() {
			t.Errorf("after a kubelet restart: %v", cs)
		}
	})

	t.Run("a startup probe that never succeeds restarts the container", func(t *testing.T) {
		p := e.waitPod(t, "never-starts", 90*time.Second, "restarted", func(p *api.Pod) bool {
			cs := p.GetStatus().GetContainerStatuses()
			if len(cs) == 0 {
				return false
			}
			if cs[0].GetStarted() {
				t.Errorf("started although the startup probe never succeeded: %v", cs[0])
			}
			return cs[0].GetRestartCount() >= 1
		})
		if last := p.GetStatus().GetContainerStatuses()[0].GetLastState().GetTerminated(); last == nil {
			t.Errorf("no lastState after the restart: %v", p.GetStatus().GetContainerStatuses()[0])
		}
		// Events are recorded asynchronously.
		deadline := time.Now().Add(20 * time.Second)
		for {
			evs, _, err := e.cluster.Client.Events().List(context.Background(), "default", client.ListOptions{FieldSelector: "involvedObject.name=never-starts"})
			if err != nil {
				t.Fatal(err)
			}
			var msgs []string
			for _, ev := range evs {
				msgs = append(msgs, ev.GetReason()+": "+ev.GetMessage())
				if ev.GetReason() == "Killing" && strings.Contains(ev.GetMessage(), "failed startup probe") {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no Killing event for the failed startup probe; events: %v", msgs)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}
