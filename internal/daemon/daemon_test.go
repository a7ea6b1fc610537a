package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// notifySocket listens where sd_notify writes and returns the messages.
func notifySocket(t *testing.T) <-chan string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	out := make(chan string, 16)
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			out <- string(buf[:n])
		}
	}()
	return out
}

func expectNotify(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("sd_notify got %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no sd_notify %q", want)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestRunServesEndpointsNotifiesAndStopsOnSIGTERM(t *testing.T) {
	notes := notifySocket(t)
	var synced atomic.Bool
	started := make(chan *Daemon, 1)
	term := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Run(t.Context(), "testd", Flags{HTTPAddr: "127.0.0.1:0", LogLevel: "error"}, func(ctx context.Context, d *Daemon) error {
			d.AddReadyCheck("informers", func() error {
				if !synced.Load() {
					return errors.New("not synced")
				}
				return nil
			})
			d.AddHealthCheck("ping", func() error { return nil })
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: "skiff_test_total", Help: "test"})
			d.Registry.MustRegister(c)
			c.Add(3)
			started <- d
			<-term
			// The signal handler is installed by now, so this cannot kill the test.
			if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
				return err
			}
			<-ctx.Done()
			return nil
		})
	}()
	d := <-started
	base := "http://" + d.HTTPAddr()

	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "informers: not synced") {
		t.Errorf("/readyz before sync = %d %q, want 503 naming the failed check", code, body)
	}
	select {
	case n := <-notes:
		t.Fatalf("sd_notify %q before ready", n)
	case <-time.After(3 * readyPoll):
	}
	synced.Store(true)
	expectNotify(t, notes, "READY=1")
	if code, _ := get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after sync = %d, want 200", code)
	}
	if code, body := get(t, base+"/healthz"); code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, base+"/metrics"); code != http.StatusOK || !strings.Contains(body, "skiff_test_total 3") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d, missing the registered counter or Go metrics:\n%s", code, body)
	}

	close(term)
	expectNotify(t, notes, "STOPPING=1")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil after SIGTERM", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after SIGTERM")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("HTTP server still serving after Run returned")
	}
}

func TestNotReadyBeforeAnyReadinessCheck(t *testing.T) {
	notes := notifySocket(t)
	err := Run(t.Context(), "testd", Flags{HTTPAddr: "127.0.0.1:0", LogLevel: "error"}, func(ctx context.Context, d *Daemon) error {
		code, body := get(t, "http://"+d.HTTPAddr()+"/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "no readiness check") {
			t.Errorf("/readyz with no checks = %d %q, want 503", code, body)
		}
		d.AddReadyCheck("nothing to wait for", func() error { return nil })
		expectNotify(t, notes, "READY=1")
		if code, _ := get(t, "http://"+d.HTTPAddr()+"/readyz"); code != http.StatusOK {
			t.Errorf("/readyz = %d once a passing check is added", code)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	expectNotify(t, notes, "STOPPING=1")
}

func TestRunReturnsWorkError(t *testing.T) {
	boom := errors.New("boom")
	err := Run(t.Context(), "testd", Flags{HTTPAddr: "127.0.0.1:0", LogLevel: "error"}, func(context.Context, *Daemon) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want %v", err, boom)
	}
}

func TestRunStopsWhenParentContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, "testd", Flags{LogLevel: "error"}, func(ctx context.Context, d *Daemon) error {
			if d.HTTPAddr() != "" {
				t.Errorf("HTTPAddr = %q with no --http-addr", d.HTTPAddr())
			}
			cancel()
			<-ctx.Done()
			return ctx.Err()
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil on cancellation", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	work := func(context.Context, *Daemon) error { t.Error("work ran"); return nil }
	for _, f := range []Flags{
		{LogLevel: "loud"},
		{LogLevel: "info", LogFormat: "xml"},
		{LogLevel: "info", HTTPAddr: "256.0.0.1:x"},
	} {
		if err := Run(t.Context(), "testd", f, work); err == nil {
			t.Errorf("Run(%+v) = nil, want an error", f)
		}
	}
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	l, err := NewLogger(&buf, "warn", "json")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", "pod", "default/a")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("want exactly one JSON record, got %q: %v", buf.String(), err)
	}
	if rec["msg"] != "shown" || rec["pod"] != "default/a" {
		t.Errorf("record = %v", rec)
	}
}
