// Package daemon is what every Skiff daemon shares: the common flags and the
// --config file, the slog logger, the /healthz, /readyz and /metrics
// endpoints, SIGTERM/SIGINT handling and systemd readiness notification.
//
// It must never hold package-level state or know about any one daemon: a
// daemon's main parses flags and hands its work to Run.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// shutdownTimeout bounds how long in-flight HTTP requests may hold up exit.
const shutdownTimeout = 5 * time.Second

// readyPoll is how often readiness is checked before READY=1 is sent.
const readyPoll = 100 * time.Millisecond

// Daemon is the running daemon's shared parts, handed to the daemon's work.
type Daemon struct {
	Component string
	Logger    *slog.Logger
	// Registry is the daemon's own Prometheus registry, served at /metrics;
	// components register their collectors on it.
	Registry *prometheus.Registry

	mux      *http.ServeMux
	addr     string
	stopping atomic.Bool

	mu     sync.Mutex
	ready  []check
	health []check
}

type check struct {
	name string
	fn   func() error
}

// AddReadyCheck adds a condition /readyz requires (synced caches, a held
// lease...). READY=1 goes to systemd once every check passes. A daemon is
// not ready before it has added a check, so that the work has time to add
// its checks; one with nothing to wait for adds a check returning nil.
func (d *Daemon) AddReadyCheck(name string, fn func() error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ready = append(d.ready, check{name, fn})
}

// AddHealthCheck adds a condition /healthz requires (the process is alive
// and not wedged).
func (d *Daemon) AddHealthCheck(name string, fn func() error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.health = append(d.health, check{name, fn})
}

// Handle serves an extra HTTP handler next to the built-in endpoints.
func (d *Daemon) Handle(pattern string, h http.Handler) { d.mux.Handle(pattern, h) }

// HTTPAddr is the address the endpoints listen on ("" when none), with the
// real port when --http-addr asked for port 0.
func (d *Daemon) HTTPAddr() string { return d.addr }

// Ready reports the first failing readiness check; nil when ready.
func (d *Daemon) Ready() error {
	if d.stopping.Load() {
		return errors.New("shutting down")
	}
	d.mu.Lock()
	none := len(d.ready) == 0
	d.mu.Unlock()
	if none {
		return errors.New("starting: no readiness check added yet")
	}
	return d.run(&d.ready)
}

func (d *Daemon) run(checks *[]check) error {
	d.mu.Lock()
	cs := append([]check(nil), *checks...)
	d.mu.Unlock()
	var failed []string
	for _, c := range cs {
		if err := c.fn(); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", c.name, err))
		}
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

func checkHandler(fn func() error) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := fn(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	}
}

// Run sets the daemon up from f, runs work until ctx ends, SIGTERM or SIGINT
// arrives, or work returns, and then shuts down gracefully. work gets a
// context cancelled on the signal and must return once it is done. A second
// signal during shutdown kills the process.
func Run(ctx context.Context, component string, f Flags, work func(ctx context.Context, d *Daemon) error) error {
	logger, err := NewLogger(os.Stderr, f.LogLevel, f.LogFormat)
	if err != nil {
		return err
	}
	logger = logger.With("component", component)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d := &Daemon{Component: component, Logger: logger, Registry: reg, mux: http.NewServeMux()}
	d.mux.Handle("/healthz", checkHandler(func() error { return d.run(&d.health) }))
	d.mux.Handle("/readyz", checkHandler(d.Ready))
	d.mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// Once the first signal is in, restore the default action so a second
	// one ends a shutdown that hangs.
	context.AfterFunc(ctx, stop)

	var srv *http.Server
	serveErr := make(chan error, 1)
	if f.HTTPAddr != "" {
		ln, err := net.Listen("tcp", f.HTTPAddr)
		if err != nil {
			return fmt.Errorf("listen on --http-addr: %w", err)
		}
		d.addr = ln.Addr().String()
		srv = &http.Server{Handler: d.mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { serveErr <- srv.Serve(ln) }()
		logger.Info("serving health and metrics", "addr", d.addr)
	}

	workCtx, cancelWork := context.WithCancel(ctx)
	defer cancelWork()
	workErr := make(chan error, 1)
	go func() { workErr <- work(workCtx, d) }()
	notified := make(chan struct{})
	go func() {
		defer close(notified)
		notifyWhenReady(workCtx, d)
	}()

	select {
	case err = <-workErr:
		notify(logger, sddaemon.SdNotifyStopping)
		cancelWork()
	case <-ctx.Done():
		logger.Info("shutting down", "reason", context.Cause(ctx))
		d.stopping.Store(true)
		notify(logger, sddaemon.SdNotifyStopping)
		err = <-workErr
	case err = <-serveErr:
		err = fmt.Errorf("serve --http-addr: %w", err)
		notify(logger, sddaemon.SdNotifyStopping)
		cancelWork()
		<-workErr
	}
	d.stopping.Store(true)
	<-notified
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		if serr := srv.Shutdown(sctx); serr != nil {
			logger.Warn("HTTP shutdown", "err", serr)
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		logger.Error("stopped", "err", err)
		return err
	}
	logger.Info("stopped")
	return nil
}

// notifyWhenReady sends READY=1 once every readiness check passes.
func notifyWhenReady(ctx context.Context, d *Daemon) {
	t := time.NewTicker(readyPoll)
	defer t.Stop()
	for {
		if d.Ready() == nil {
			d.Logger.Info("ready")
			notify(d.Logger, sddaemon.SdNotifyReady)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func notify(logger *slog.Logger, state string) {
	if _, err := sddaemon.SdNotify(false, state); err != nil {
		logger.Warn("sd_notify", "state", state, "err", err)
	}
}
