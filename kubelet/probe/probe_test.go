package probe

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/intstr"
	"github.com/skiff-dev/skiff/proto/api"
)

func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.WriteHeader(http.StatusOK)
		case "/redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	host, portStr, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	container := &api.Container{Name: "c", Ports: []*api.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}
	p := &Prober{Exec: func(_ context.Context, id string, cmd []string, out io.Writer) (int, error) {
		io.WriteString(out, "ran "+strings.Join(cmd, " "))
		if cmd[0] == "true" {
			return 0, nil
		}
		return 1, nil
	}}
	tests := []struct {
		name    string
		probe   *api.Probe
		ok      bool
		message string
	}{
		{"http 200", &api.Probe{HttpGet: &api.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt(port)}}, true, ""},
		{"http by port name", &api.Probe{HttpGet: &api.HTTPGetAction{Path: "healthz", Port: intstr.FromString("http")}}, true, ""},
		{"http redirect counts as success", &api.Probe{HttpGet: &api.HTTPGetAction{Path: "/redirect", Port: intstr.FromInt(port)}}, true, ""},
		{"http 500", &api.Probe{HttpGet: &api.HTTPGetAction{Path: "/x", Port: intstr.FromInt(port)}}, false, "statuscode: 500"},
		{"http unknown port name", &api.Probe{HttpGet: &api.HTTPGetAction{Port: intstr.FromString("nope")}}, false, `no port named "nope"`},
		{"tcp open", &api.Probe{TcpSocket: &api.TCPSocketAction{Port: intstr.FromInt(port)}}, true, ""},
		{"tcp closed", &api.Probe{TcpSocket: &api.TCPSocketAction{Port: intstr.FromInt(closedPort)}}, false, "connection refused"},
		{"exec success", &api.Probe{Exec: &api.ExecAction{Command: []string{"true"}}}, true, ""},
		{"exec failure shows output", &api.Probe{Exec: &api.ExecAction{Command: []string{"false"}}}, false, "exited with 1: ran false"},
		{"no action", &api.Probe{}, false, "no exec"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, msg := p.Probe(context.Background(), tt.probe, Target{Container: container, ContainerID: "id", PodIP: host})
			if ok != tt.ok || !strings.Contains(msg, tt.message) {
				t.Errorf("Probe = %v, %q; want %v, %q", ok, msg, tt.ok, tt.message)
			}
		})
	}
}

func TestLoopAppliesThresholds(t *testing.T) {
	results := make(chan bool, 10)
	healthy := make(chan bool, 100)
	healthy <- true // first probe succeeds
	p := &Prober{Exec: func(context.Context, string, []string, io.Writer) (int, error) {
		select {
		case h := <-healthy:
			if h {
				return 0, nil
			}
		default:
		}
		return 1, nil
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	pr := &api.Probe{Exec: &api.ExecAction{Command: []string{"x"}}, PeriodSeconds: 1, FailureThreshold: 2}
	go func() {
		defer close(done)
		Loop(ctx, p, Readiness, pr, Target{Container: &api.Container{Name: "c"}}, slog.New(slog.DiscardHandler), func(ok bool, _ string) { results <- ok })
	}()
	start := time.Now()
	if ok := <-results; !ok {
		t.Fatal("first verdict false, want ready after one success")
	}
	// Every later probe fails: not ready only after two failures (2 periods).
	if ok := <-results; ok {
		t.Fatal("second verdict true, want not ready")
	}
	if el := time.Since(start); el < 2*time.Second {
		t.Errorf("unready after %v: the failure threshold of 2 was not applied", el)
	}
}

// TestStartupLoopDecidesOnceAndStops: a startup probe reports one verdict,
// success or failure after failureThreshold failures in a row, and then
// stops probing without its context ending.
func TestStartupLoopDecidesOnceAndStops(t *testing.T) {
	tests := []struct {
		name      string
		results   []bool // the probe's results in order; later ones fail
		threshold int32
		want      bool
		probes    int
	}{
		{"success at once", []bool{true}, 3, true, 1},
		{"failures below the threshold, then success", []bool{false, false, true}, 3, true, 3},
		{"one failure below a threshold of 2, then success", []bool{false, true}, 2, true, 2},
		{"failureThreshold failures in a row fail it", nil, 2, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probes := 0
			p := &Prober{Exec: func(context.Context, string, []string, io.Writer) (int, error) {
				probes++
				if probes <= len(tt.results) && tt.results[probes-1] {
					return 0, nil
				}
				return 1, nil
			}}
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			var verdicts []bool
			done := make(chan struct{})
			go func() {
				defer close(done)
				pr := &api.Probe{Exec: &api.ExecAction{Command: []string{"x"}}, PeriodSeconds: 1, FailureThreshold: tt.threshold}
				Loop(ctx, p, Startup, pr, Target{Container: &api.Container{Name: "c"}}, slog.New(slog.DiscardHandler), func(ok bool, _ string) { verdicts = append(verdicts, ok) })
			}()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("startup loop still probing after 30s; it should stop once decided")
			}
			if len(verdicts) != 1 || verdicts[0] != tt.want {
				t.Errorf("verdicts = %v, want exactly [%v]", verdicts, tt.want)
			}
			if probes != tt.probes {
				t.Errorf("probed %d times, want %d", probes, tt.probes)
			}
		})
	}
}

// TestInitialDelayCountsFromTheRunsStart: a loop started long after its
// container (behind a startup probe, or by a restarted kubelet) does not
// wait initialDelaySeconds again.
func TestInitialDelayCountsFromTheRunsStart(t *testing.T) {
	p := &Prober{Exec: func(context.Context, string, []string, io.Writer) (int, error) { return 0, nil }}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pr := &api.Probe{Exec: &api.ExecAction{Command: []string{"x"}}, InitialDelaySeconds: 3600}
		target := Target{Container: &api.Container{Name: "c"}, StartedAt: time.Now().Add(-2 * time.Hour)}
		Loop(ctx, p, Startup, pr, target, slog.New(slog.DiscardHandler), func(bool, string) {})
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the probe still waits for an initial delay that ended an hour ago")
	}
}
