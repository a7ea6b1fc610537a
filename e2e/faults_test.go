package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/e2e/harness"
)

// recoverTimeout bounds how long the cluster may take to converge after a
// component comes back: a controller-manager or scheduler restarted after
// kill -9 first waits out its dead predecessor's Lease (15 s).
const recoverTimeout = 2 * time.Minute

// outageFetches is how many Service fetches each node makes while a
// component is down: the outage lasts a few seconds, observed, not slept.
const outageFetches = 8

// prober fetches a URL from a node over and over while a fault lasts, and
// counts what it got: running pods must keep serving whatever the control
// plane does.
type prober struct {
	ok, failed int
	errs       []string
	mu         sync.Mutex
	stop       func()
	done       chan struct{}
}

func startProber(t *testing.T, ctx context.Context, c *harness.Cluster, node int, url string) *prober {
	ctx, cancel := context.WithCancel(ctx)
	p := &prober{stop: cancel, done: make(chan struct{})}
	t.Cleanup(func() { cancel(); <-p.done })
	go func() {
		defer close(p.done)
		for ctx.Err() == nil {
			err := fetchOK(ctx, c, node, url)
			if ctx.Err() != nil {
				return
			}
			p.mu.Lock()
			if err != nil {
				p.failed++
				p.errs = append(p.errs, time.Now().Format("15:04:05.000")+" "+err.Error())
			} else {
				p.ok++
			}
			p.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	return p
}

// fetches is how many fetches finished so far.
func (p *prober) fetches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ok + p.failed
}

// finish stops the prober and fails the test when a fetch failed or none
// was made.
func (p *prober) finish(t *testing.T, what string) {
	t.Helper()
	p.stop()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	t.Logf("%s: %d fetches served, %d failed", what, p.ok, p.failed)
	if p.failed > 0 {
		t.Errorf("%s: %d of %d fetches failed:\n%s", what, p.failed, p.ok+p.failed, strings.Join(p.errs, "\n"))
	}
	if p.ok == 0 {
		t.Errorf("%s: no fetch was made", what)
	}
}

// podSet is the identity of a deployment's pods: the same names, IPs and
// nodes before and after a fault means nothing was restarted or moved.
func podSet(ps []podRow) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name+" "+p.IP+" "+p.Node)
	}
	slices.Sort(out)
	return out
}

// TestComponentCrashes kills each component with SIGKILL, one at a time,
// scales a second deployment while it is down (or right after, for the
// apiserver) so the component has work waiting, and restarts it.
// Throughout, a Service of 3 pods keeps serving from both nodes;
// afterwards those pods are the same ones (no replacement, no restart, no
// duplicate) and the scaled deployment converges within a bound.
func TestComponentCrashes(t *testing.T) {
	defer recoverPanic(t)
	c, ctx := setup(t)
	// name is served and never touched; work is scaled during the faults
	// (scaling the served one down would race endpoint removal with the
	// probes, as in Kubernetes).
	const name, work = "e2e-faults", "e2e-faults-work"
	t.Cleanup(func() {
		deleteQuietly(t, c, "service", name)
		deleteQuietly(t, c, "deployment", name)
		deleteQuietly(t, c, "deployment", work)
	})
	ctl(t, ctx, c, "create", "deployment", work, "--image", "nginx", "-r", "3")
	ctl(t, ctx, c, "create", "deployment", name, "--image", "nginx", "-r", "3")
	ctl(t, ctx, c, "expose", "deployment", name, "--port", "80")
	deploymentReady(t, ctx, c, name, 3, rolloutTimeout)
	deploymentReady(t, ctx, c, work, 3, rolloutTimeout)
	runningPods(t, ctx, c, name, 3, rolloutTimeout)
	url := "http://" + serviceIP(t, ctx, c, name) + "/"
	for i := 1; i <= c.Config.Nodes; i++ {
		eventually(t, ctx, convergeTimeout, fmt.Sprintf("Service served from %s", c.Config.NodeName(i)),
			func(ctx context.Context) error { return fetchOK(ctx, c, i, url) })
	}

	tests := []struct {
		component string
		// whileDown changes the cluster while the component is dead and
		// returns the replica count the work deployment must then reach.
		whileDown func(t *testing.T) int
		// afterRestart, when set, changes the cluster once the component
		// is back and returns the replica count to reach instead.
		afterRestart func(t *testing.T) int
	}{
		{component: "apiserver", whileDown: func(t *testing.T) int {
			r, err := c.Ctl(ctx, "--request-timeout", "5s", "get", "pods")
			if err == nil && r.ExitCode == 0 {
				t.Errorf("ctl get pods worked with the apiserver dead: %s", r)
			}
			return 3
		}, afterRestart: func(t *testing.T) int {
			// The controllers and the scheduler must still do their work
			// once the apiserver is back: a scale needs both.
			soakCtl(t, ctx, c, "scale", "deployment", work, "--replicas", "4")
			return 4
		}},
		{component: "controller-manager", whileDown: func(t *testing.T) int {
			ctl(t, ctx, c, "scale", "deployment", work, "--replicas", "3")
			return 3
		}},
		{component: "scheduler", whileDown: func(t *testing.T) int {
			ctl(t, ctx, c, "scale", "deployment", work, "--replicas", "4")
			return 4
		}},
		{component: "node-1/kubelet", whileDown: func(t *testing.T) int {
			ctl(t, ctx, c, "scale", "deployment", work, "--replicas", "3")
			return 3
		}},
		{component: "node-2/proxy", whileDown: func(t *testing.T) int {
			ctl(t, ctx, c, "scale", "deployment", work, "--replicas", "4")
			return 4
		}},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.component, "/", "-"), func(t *testing.T) {
			defer recoverPanic(t)
			before, err := pods(ctx, c, name)
			if err != nil {
				t.Fatal(err)
			}
			probes := make([]*prober, 0, c.Config.Nodes)
			for i := 1; i <= c.Config.Nodes; i++ {
				probes = append(probes, startProber(t, ctx, c, i, url))
			}
			t.Cleanup(func() {
				// Whatever failed, leave the component running for the
				// next test.
				if p, _ := c.Process(tt.component); !p.Alive() {
					if err := c.Restart(context.Background(), tt.component); err != nil {
						t.Errorf("restart %s in clean-up: %v", tt.component, err)
					}
				}
			})
			if p, _ := c.Process(tt.component); !p.Alive() {
				t.Fatalf("%s had exited before this test could kill it:%s", tt.component, c.ExitReport([]string{tt.component}))
			}
			if err := c.Kill(ctx, tt.component); err != nil {
				t.Fatal(err)
			}
			want := tt.whileDown(t)
			// Keep the component down long enough for every node to
			// fetch through the Service a few times meanwhile.
			marks := make([]int, len(probes))
			for i, p := range probes {
				marks[i] = p.fetches()
			}
			eventually(t, ctx, time.Minute, fmt.Sprintf("%d fetches per node with %s down", outageFetches, tt.component), func(context.Context) error {
				for i, p := range probes {
					if n := p.fetches() - marks[i]; n < outageFetches {
						return fmt.Errorf("%s: %d fetches", c.Config.NodeName(i+1), n)
					}
				}
				return nil
			})
			if p, _ := c.Process(tt.component); p.Alive() {
				t.Fatalf("%s runs again before the test restarted it", tt.component)
			}
			if err := c.Restart(ctx, tt.component); err != nil {
				t.Fatal(err)
			}
			if tt.afterRestart != nil {
				want = tt.afterRestart(t)
			}
			start := time.Now()
			deploymentReady(t, ctx, c, work, want, recoverTimeout)
			runningPods(t, ctx, c, work, want, recoverTimeout)
			checkOneReplicaSet(t, ctx, c, work, want)
			t.Logf("%s: converged %v after restart", tt.component, time.Since(start).Round(100*time.Millisecond))
			for i, p := range probes {
				p.finish(t, fmt.Sprintf("Service from %s while %s was down", c.Config.NodeName(i+1), tt.component))
			}
			// The served pods are the ones that ran before: a crash must
			// not restart, replace or duplicate them.
			after := runningPods(t, ctx, c, name, 3, convergeTimeout)
			if !slices.Equal(podSet(before), podSet(after)) {
				t.Errorf("served pods changed across the %s crash:\nbefore %v\nafter  %v", tt.component, podSet(before), podSet(after))
			}
			for _, a := range after {
				if a.Restarts != "0" {
					t.Errorf("pod %s: RESTARTS %s after the %s crash, want 0", a.Name, a.Restarts, tt.component)
				}
			}
			for i := 1; i <= c.Config.Nodes; i++ {
				eventually(t, ctx, convergeTimeout, fmt.Sprintf("Service served from %s after the restart", c.Config.NodeName(i)),
					func(ctx context.Context) error { return fetchOK(ctx, c, i, url) })
			}
			if p, _ := c.Process(tt.component); !p.Alive() {
				t.Errorf("%s exited after its restart", tt.component)
			}
			if dead := c.Dead(); len(dead) > 0 {
				t.Errorf("components not running: %v", dead)
			}
		})
	}
}
