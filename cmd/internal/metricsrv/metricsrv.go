// Package metricsrv serves the daemons' metrics endpoint (metrics_listen)
// with bounds: a cap on connections and deadlines on reading, writing and
// idle keep-alive connections, so that scrapers (or anything else that
// reaches the port) cannot hold the daemon's descriptors and memory.
package metricsrv

import (
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// The bounds of the metrics endpoint (docs/security.md).
const (
	// MaxConns bounds the connections served at once; more wait in the
	// listen backlog until one ends.
	MaxConns          = 32
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	// WriteTimeout leaves room for a 30 s CPU profile (pprof).
	WriteTimeout   = 60 * time.Second
	IdleTimeout    = 30 * time.Second
	MaxHeaderBytes = 16 << 10
)

// Server returns an http.Server for h with the bounds above.
func Server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// Listener returns ln accepting at most max connections at once
// (golang.org/x/net/netutil).
func Listener(ln net.Listener, max int) net.Listener { return netutil.LimitListener(ln, max) }
