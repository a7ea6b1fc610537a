package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/e2e/harness"
)

// leaseHolder is the HOLDER of a Lease in skiff-system, as `get lease`
// prints it.
func leaseHolder(ctx context.Context, c *harness.Cluster, lease string) (string, error) {
	tab, err := c.Get(ctx, "lease", lease, "-n", "skiff-system")
	if err != nil {
		return "", err
	}
	row, ok := tab.Row("NAME", lease)
	if !ok || row["HOLDER"] == "" {
		return "", fmt.Errorf("lease %s has no holder: %v", lease, tab.Rows)
	}
	return row["HOLDER"], nil
}

// holderProcess finds which of the candidates' logs says it became leader
// under identity holder.
func holderProcess(c *harness.Cluster, holder string, candidates []string) (string, error) {
	for _, name := range candidates {
		p, _ := c.Process(name)
		data, err := os.ReadFile(p.Log)
		if err != nil {
			return "", err
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "became leader") && strings.Contains(line, "identity="+holder) {
				return name, nil
			}
		}
	}
	return "", fmt.Errorf("no log of %v says %s became leader", candidates, holder)
}

func healthy(ctx context.Context, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s/healthz: %s %s", addr, resp.Status, body)
	}
	return nil
}

// TestLeaderFailover runs a second controller-manager and a second
// scheduler, kills the one holding the Lease with SIGKILL, and checks the
// standby takes the Lease and does the work (a scale needs both) within
// a bound: the Lease duration plus convergence.
func TestLeaderFailover(t *testing.T) {
	defer recoverPanic(t)
	c, ctx := setup(t)
	const work = "e2e-leader"
	t.Cleanup(func() { deleteQuietly(t, c, "deployment", work) })
	ctl(t, ctx, c, "create", "deployment", work, "--image", "nginx", "-r", "1")
	deploymentReady(t, ctx, c, work, 1, rolloutTimeout)
	replicas := 1
	for _, tt := range []struct {
		component string
		httpPort  int // the standby's, beside the first one's
	}{
		{"controller-manager", 10357},
		{"scheduler", 10359},
	} {
		t.Run(tt.component, func(t *testing.T) {
			defer recoverPanic(t)
			standby := tt.component + "-2"
			addr := net.JoinHostPort(c.Config.HostIP().String(), strconv.Itoa(tt.httpPort))
			if err := c.StartReplica(ctx, tt.component, standby, "--http-addr", addr); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := c.StopReplica(context.Background(), standby); err != nil {
					t.Errorf("stop %s: %v", standby, err)
				}
				if p, _ := c.Process(tt.component); !p.Alive() {
					if err := c.Restart(context.Background(), tt.component); err != nil {
						t.Errorf("restart %s: %v", tt.component, err)
					}
				}
			})
			eventually(t, ctx, time.Minute, standby+" healthy", func(ctx context.Context) error { return healthy(ctx, addr) })
			before, err := leaseHolder(ctx, c, tt.component)
			if err != nil {
				t.Fatal(err)
			}
			leader, err := holderProcess(c, before, []string{tt.component, standby})
			if err != nil {
				t.Fatal(err)
			}
			other := standby
			if leader == standby {
				other = tt.component
			}
			if err := c.Kill(ctx, leader); err != nil {
				t.Fatal(err)
			}
			replicas++
			ctl(t, ctx, c, "scale", "deployment", work, "--replicas", strconv.Itoa(replicas))
			deploymentReady(t, ctx, c, work, replicas, recoverTimeout)
			runningPods(t, ctx, c, work, replicas, convergeTimeout)
			after, err := leaseHolder(ctx, c, tt.component)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := holderProcess(c, after, []string{other}); err != nil || got != other {
				t.Errorf("lease %s held by %q after %s was killed, want %s: %v", tt.component, after, leader, other, err)
			}
			if err := c.Restart(ctx, leader); err != nil {
				t.Fatal(err)
			}
		})
	}
}
