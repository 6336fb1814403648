package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof/ on http.DefaultServeMux
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/opes-milter/opes-milter/cmd/internal/calloutsrv"
	"github.com/opes-milter/opes-milter/cmd/internal/cli"
	"github.com/opes-milter/opes-milter/cmd/internal/metricsrv"
	"github.com/opes-milter/opes-milter/ocp"
)

// listening tells a test where the daemon listens.
type listening struct {
	ocp     []net.Addr
	metrics net.Addr // nil without metrics_listen
}

// cmdRun serves the configured listeners until SIGINT or SIGTERM (or ctx
// ends), then shuts down gracefully. setProcs, when not nil, applies
// max_procs (procs.Set; tests leave their process alone). ready, when not
// nil, receives the bound addresses once listening (for tests).
func cmdRun(ctx context.Context, path string, stderr io.Writer, setProcs func(int) int, ready chan<- listening) error {
	cfg, services, tlsConfig, err := calloutsrv.Load(path)
	if err != nil {
		return err
	}
	c := cfg.Callout
	log := newLogger(stderr, c.LogFormat, c.LogLevel)
	gomaxprocs := runtime.GOMAXPROCS(0)
	if setProcs != nil {
		gomaxprocs = setProcs(c.MaxProcs)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		cli.BuildInfo("opes_callout"))
	d := calloutsrv.New(c, services, tlsConfig, log, reg)
	srv := d.Server

	// Take the signals before anything listens (a SIGHUP sent as soon as
	// the port answers must reload, not kill).
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	for _, addr := range c.Listen {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll()
			return err
		}
		lns = append(lns, ln)
	}
	var metricsSrv *http.Server
	var up listening
	if c.MetricsListen != "" {
		ln, err := net.Listen("tcp", c.MetricsListen)
		if err != nil {
			closeAll()
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		// The OCP listeners are bound before this one: the process serves
		// (/livez), is ready for processors (/readyz), and /healthz keeps
		// its old meaning (the same).
		ok := func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) }
		mux.HandleFunc("/healthz", ok)
		mux.HandleFunc("/livez", ok)
		mux.HandleFunc("/readyz", ok)
		if c.Pprof {
			mux.Handle("/debug/pprof/", http.DefaultServeMux) // only net/http/pprof registers there
		}
		metricsSrv = metricsrv.Server(mux)
		go func() {
			if err := metricsSrv.Serve(metricsrv.Listener(ln, metricsrv.MaxConns)); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics listener failed", "err", err)
			}
		}()
		up.metrics = ln.Addr()
		log.Info("metrics listening", "addr", ln.Addr().String())
	}

	// Scanner health: opes_callout_backend_up, checked in the background.
	d.Watch(ctx)

	errc := make(chan error, len(lns))
	for _, ln := range lns {
		up.ocp = append(up.ocp, ln.Addr())
		log.Info("listening", "addr", ln.Addr().String(), "tls", srv.TLSConfig != nil, "services", len(services), "gomaxprocs", gomaxprocs)
		go func() { errc <- srv.Serve(ln) }()
	}
	if ready != nil {
		ready <- up
	}

	var runErr error
wait:
	for {
		select {
		case <-ctx.Done():
			log.Info("draining: new transactions and idle connections get the go-away", "drain_timeout", c.DrainTimeout)
			break wait
		case runErr = <-errc:
			log.Error("listener failed", "err", runErr)
			break wait
		case <-hup:
			d.Reload(path)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), c.DrainTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown cut short; connections closed", "err", err)
	}
	if metricsSrv != nil {
		metricsSrv.Shutdown(sctx)
	}
	if errors.Is(runErr, ocp.ErrClosed) {
		runErr = nil
	}
	log.Info("stopped")
	return runErr
}

// newLogger returns the daemon's logger in the configured format.
func newLogger(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
