package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opes-milter/opes-milter/bridge"
	"github.com/opes-milter/opes-milter/cmd/internal/procs"
	"github.com/opes-milter/opes-milter/milter"
)

// readinessInterval is how often a callout server without a connection
// is probed again (see bridge.WatchReadiness).
const readinessInterval = 2 * time.Second

// shutdownGrace bounds how long in-flight sessions may take after SIGTERM.
const shutdownGrace = 30 * time.Second

// cmdRun serves the configured milter sockets until SIGINT or SIGTERM;
// SIGHUP reloads the configuration (the old one stays if the new one is
// invalid). With local, the [callout] services of the same file run in
// process (see localCallout) instead of the configured callout servers.
func cmdRun(ctx context.Context, path string, local bool, stderr io.Writer) error {
	// Take the signals before anything listens: a supervisor (or a test)
	// that sees the socket and sends SIGHUP must not kill the daemon with
	// the signal's default action.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	cfg, policy, err := loadMilter(path)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.Milter.LogFormat, cfg.Milter.LogLevel)
	milter.SetLibraryLogger(log)
	gomaxprocs := procs.Set(cfg.Milter.MaxProcs)
	if policy.SpoolDir != "" {
		if n, err := bridge.RemoveStaleSpools(policy.SpoolDir); err != nil {
			log.Warn("removing stale spool files", "dir", policy.SpoolDir, "err", err)
		} else if n > 0 {
			log.Info("removed stale spool files", "dir", policy.SpoolDir, "count", n)
		}
	}
	reg := newRegistry()
	var lc *localCallout
	if local {
		if lc, err = startLocalCallout(ctx, cfg, policy, stderr, reg); err != nil {
			return err
		}
		// Deferred before the bridge's Close, so it runs after it: the
		// bridge's connections end before the server drains.
		defer lc.stop(log)
		log.Info("callout services run in process (-local)", "services", len(cfg.Callout.Services))
	}
	br := bridge.New(policy, log, bridge.WithMetrics(bridge.NewMetrics(reg)))
	defer br.Close()

	srv := milter.NewServer(br, milter.Options{Logger: log, MaxConnections: cfg.Milter.MaxConnections,
		IdleTimeout: cfg.Milter.TransactionIdleTimeout})
	var lns []net.Listener
	for _, s := range cfg.Milter.Listen {
		ln, err := milter.Listen(s)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("listen %s: %w", s, err)
		}
		lns = append(lns, ln)
	}

	var serving atomic.Bool
	if cfg.Milter.MetricsListen != "" {
		_, stop, err := serveMetrics(cfg.Milter.MetricsListen, reg, probes{healthy: serving.Load, ready: br.Readiness}, cfg.Milter.Pprof, log)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("metrics listener %s: %w", cfg.Milter.MetricsListen, err)
		}
		defer stop()
	}

	var wg sync.WaitGroup
	errc := make(chan error, len(lns))
	for i, ln := range lns {
		log.Info("listening", "socket", cfg.Milter.Listen[i].String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, milter.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	serving.Store(true)
	log.Info("opes-milter started", "config", path, "routes", len(policy.Routes), "gomaxprocs", gomaxprocs)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go br.WatchReadiness(watchCtx, readinessInterval)
	for {
		select {
		case <-ctx.Done():
			return shutdown(srv, &wg, log)
		case err := <-errc:
			shutdown(srv, &wg, log)
			return err
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reload(path, br, lc, log)
				continue
			}
			log.Info("stopping", "signal", sig.String())
			return shutdown(srv, &wg, log)
		}
	}
}

// reload loads the configuration again and switches the bridge to it;
// with lc, the in-process services too.
func reload(path string, br *bridge.Bridge, lc *localCallout, log *slog.Logger) {
	cfg, p, err := loadMilter(path)
	if err == nil && lc != nil {
		err = lc.reload(cfg, p)
	}
	if err == nil {
		br.Reload(p)
		log.Info("configuration reloaded", "config", path, "routes", len(p.Routes))
		return
	}
	log.Error("reload failed; keeping the running configuration", "err", err)
}

// shutdown lets in-flight sessions finish up to the grace period.
func shutdown(srv *milter.Server, wg *sync.WaitGroup, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := srv.Shutdown(ctx)
	wg.Wait()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	log.Info("opes-milter stopped")
	return nil
}
