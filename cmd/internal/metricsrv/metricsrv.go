// Package metricsrv serves the daemons' metrics endpoint (metrics_listen)
// with bounds: a cap on connections and deadlines on reading, writing and
// idle keep-alive connections, so that scrapers (or anything else that
// reaches the port) cannot hold the daemon's descriptors and memory.
package metricsrv

import (
	"net"
	"net/http"
	"sync"
	"time"
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

// Listener returns ln accepting at most max connections at once.
func Listener(ln net.Listener, max int) net.Listener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, max), done: make(chan struct{})}
}

// limitListener accepts a connection only when a slot is free and frees
// it when the connection is closed (as golang.org/x/net/netutil does).
type limitListener struct {
	net.Listener
	slots chan struct{}
	done  chan struct{}
	once  sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
