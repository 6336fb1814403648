package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof/ on http.DefaultServeMux
	"time"

	"github.com/opes-milter/opes-milter/bridge"
	"github.com/opes-milter/opes-milter/cmd/internal/cli"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/opes-milter/opes-milter/cmd/internal/metricsrv"
)

// newRegistry returns a registry with the Go and process collectors and
// opes_milter_build_info.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		cli.BuildInfo("opes_milter"))
	return reg
}

// probes are what the HTTP endpoints report.
type probes struct {
	// healthy reports whether the daemon serves its milter sockets
	// (/healthz, kept for old probes).
	healthy func() bool
	// ready reports whether every chain has a callout server that
	// negotiated its service group (/readyz); nil: always ready.
	ready func() (bool, []bridge.ChainReadiness)
}

// serveMetrics serves on addr, until the returned stop is called:
// /metrics; /livez (200 while the process serves HTTP); /healthz (200
// once the milter sockets are served, as before /readyz existed);
// /readyz (200 when every chain has a callout server that negotiated its
// service group, else 503 with a JSON body naming the chains and servers
// that are not ready); with pprof Go's profiles under /debug/pprof/. It
// returns the address it listens on.
func serveMetrics(addr string, reg *prometheus.Registry, pr probes, pprof bool, log *slog.Logger) (net.Addr, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/livez", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !pr.healthy() {
			http.Error(w, "not serving", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) { readyz(w, pr) })
	if pprof {
		mux.Handle("/debug/pprof/", http.DefaultServeMux) // only net/http/pprof registers there
	}
	srv := metricsrv.Server(mux)
	go func() {
		if err := srv.Serve(metricsrv.Listener(ln, metricsrv.MaxConns)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener failed", "err", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String())
	return ln.Addr(), func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}, nil
}

// readyz answers /readyz: 200 {"status":"ready"}, or 503 with the chains
// that are not ready and why for each of their servers.
func readyz(w http.ResponseWriter, pr probes) {
	type notReady struct {
		Status string                  `json:"status"`
		Chains []bridge.ChainReadiness `json:"chains,omitempty"`
	}
	w.Header().Set("Content-Type", "application/json")
	if !pr.healthy() {
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(notReady{Status: "not serving the milter sockets yet"})
		return
	}
	if pr.ready == nil {
		json.NewEncoder(w).Encode(notReady{Status: "ready"})
		return
	}
	ok, chains := pr.ready()
	if ok {
		json.NewEncoder(w).Encode(notReady{Status: "ready"})
		return
	}
	body := notReady{Status: "not ready"}
	for _, c := range chains {
		if !c.Ready {
			body.Chains = append(body.Chains, c)
		}
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	json.NewEncoder(w).Encode(body)
}
