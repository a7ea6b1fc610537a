package cmd

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/client"
	"github.com/skiff-dev/skiff/internal/testcluster"
	"github.com/skiff-dev/skiff/proto/api"
)

// env runs ctl commands in-process against one in-process apiserver, with
// a clock tests can set so ages print the same on every run.
type env struct {
	t       *testing.T
	cluster *testcluster.Cluster
	mu      sync.Mutex
	now     time.Time
	// wrap, when set, stands between ctl and the apiserver (to record
	// the requests ctl makes).
	wrap func(api.APIClient) api.APIClient
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return &env{t: t, cluster: testcluster.Start(t)}
}

func (e *env) client() *client.Client { return e.cluster.Client }

// setWrap puts wrap between the commands run from now on and the apiserver.
func (e *env) setWrap(wrap func(api.APIClient) api.APIClient) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.wrap = wrap
}

// setNow fixes the clock; the zero time means the wall clock.
func (e *env) setNow(now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = now
}

func (e *env) factory() *Factory {
	return &Factory{
		Dial: func(context.Context) (*client.Client, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			if e.wrap != nil {
				return &client.Client{API: e.wrap(e.cluster.Client.API)}, nil
			}
			return e.cluster.Client, nil
		},
		Now: func() time.Time {
			e.mu.Lock()
			defer e.mu.Unlock()
			if e.now.IsZero() {
				return time.Now()
			}
			return e.now
		},
		Getenv: func(string) string { return "" },
	}
}

// result is what one ctl run printed and returned.
type result struct {
	out, err string
	code     int
}

// syncBuffer lets a test read output while a command (get -w) still writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// run runs "ctl args..." with stdin and waits for it.
func (e *env) run(stdin string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return e.runCtx(ctx, stdin, args...)
}

func (e *env) runCtx(ctx context.Context, stdin string, args ...string) result {
	var out, errOut syncBuffer
	code := Execute(ctx, args, IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}, e.factory())
	return result{out: out.String(), err: errOut.String(), code: code}
}

// ok runs a command that must succeed and returns its stdout.
func (e *env) ok(args ...string) string {
	e.t.Helper()
	r := e.run("", args...)
	if r.code != 0 {
		e.t.Fatalf("ctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

// fails runs a command that must fail and returns its stderr.
func (e *env) fails(args ...string) string {
	e.t.Helper()
	r := e.run("", args...)
	if r.code == 0 {
		e.t.Fatalf("ctl %s succeeded, want a failure\nstdout: %s", strings.Join(args, " "), r.out)
	}
	return r.err
}

// async is a long-lived command (get -w, logs -f, delete --wait) running
// in the background.
type async struct {
	out, errOut syncBuffer
	cancel      context.CancelFunc
	done        chan int
	once        sync.Once
	res         result
}

// startAsync starts "ctl args..."; the test's cleanup stops it.
func (e *env) startAsync(args ...string) *async {
	ctx, cancel := context.WithCancel(context.Background())
	a := &async{cancel: cancel, done: make(chan int, 1)}
	go func() {
		a.done <- Execute(ctx, args, IOStreams{In: strings.NewReader(""), Out: &a.out, ErrOut: &a.errOut}, e.factory())
	}()
	e.t.Cleanup(func() { a.stop() })
	return a
}

// wait waits for the command to end by itself.
func (a *async) wait(t *testing.T) result {
	t.Helper()
	select {
	case code := <-a.done:
		a.once.Do(func() {
			a.cancel()
			a.res = result{out: a.out.String(), err: a.errOut.String(), code: code}
		})
	case <-time.After(20 * time.Second):
		t.Fatal("command did not end in 20s")
	}
	return a.res
}

// stop cancels the command (Ctrl-C) and waits for it to end.
func (a *async) stop() result {
	a.once.Do(func() {
		a.cancel()
		code := <-a.done
		a.res = result{out: a.out.String(), err: a.errOut.String(), code: code}
	})
	return a.res
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
