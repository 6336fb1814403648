package callout

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// Backend is the client side of a scanner that a service talks to over a
// socket (clamd, spamd, rspamd, an ICAP server): where it listens, the
// deadline of one exchange, a bound on concurrent connections, idle
// connections kept for reuse, and the health that the last exchanges
// showed. Services that need a backend use it instead of dialling
// themselves, so that every one of them is bounded and reports its health
// the same way. A Backend is safe for concurrent use.
type Backend struct {
	name             string
	network, address string
	timeout          time.Duration
	maxIdle          int
	slots            chan struct{}
	dialer           net.Dialer

	mu     sync.Mutex
	idle   []net.Conn
	closed bool // Close was called: no connection is kept idle any more
	health BackendHealth
}

// BackendOptions configure a Backend.
type BackendOptions struct {
	// Name names the backend in errors, logs and health ("clamd").
	Name string
	// Address is "unix:/path", an absolute path (a unix socket),
	// "tcp:host:port", "inet:port@host" or "host:port".
	Address string
	// Timeout bounds one exchange: waiting for a connection slot, dialling
	// and the I/O until Release (default 30 s).
	Timeout time.Duration
	// MaxConns bounds the concurrent connections (0: 16).
	MaxConns int
	// MaxIdle is how many idle connections are kept for reuse (0: none; a
	// protocol without keep-alive keeps none).
	MaxIdle int
}

// DefaultBackendTimeout and DefaultBackendConns are the defaults of
// BackendOptions.
const (
	DefaultBackendTimeout = 30 * time.Second
	DefaultBackendConns   = 16
)

// BackendError is a failure of a backend: unreachable, too slow, or an
// answer that breaks its protocol. It is the failure of the service that
// uses the backend, not of the callout server: the server ends the
// transaction as a service failure (docs/profile.md), which the processor's
// chain policy turns into the configured outcome.
type BackendError struct {
	Backend string
	Err     error
}

func (e *BackendError) Error() string { return "backend " + e.Backend + ": " + e.Err.Error() }

func (e *BackendError) Unwrap() error { return e.Err }

// ErrResponseTooLarge reports a backend answer beyond the limit the reader
// set.
var ErrResponseTooLarge = errors.New("callout: backend response too large")

// BackendHealth is what the last exchanges with a backend showed.
type BackendHealth struct {
	Name    string
	Address string
	// Up is false after a failed exchange until one succeeds.
	Up bool
	// Err is the last failure ("" when Up).
	Err string
	// Since is when Up last changed (zero before the first exchange).
	Since time.Time
}

// ParseBackendAddress splits a backend address into a network ("tcp" or
// "unix") and an address for net.Dial.
func ParseBackendAddress(s string) (network, address string, err error) {
	switch {
	case strings.HasPrefix(s, "unix:"):
		network, address = "unix", strings.TrimPrefix(s, "unix:")
	case strings.HasPrefix(s, "/"):
		network, address = "unix", s
	case strings.HasPrefix(s, "tcp:"):
		network, address = "tcp", strings.TrimPrefix(s, "tcp:")
	case strings.HasPrefix(s, "inet:") && strings.Contains(s, "@"):
		port, host, _ := strings.Cut(strings.TrimPrefix(s, "inet:"), "@")
		network, address = "tcp", net.JoinHostPort(host, port)
	default:
		network, address = "tcp", s
	}
	if network == "unix" {
		if address == "" {
			return "", "", fmt.Errorf("backend address %q: empty socket path", s)
		}
		return network, address, nil
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil || host == "" || port == "" {
		return "", "", fmt.Errorf("backend address %q: want host:port, unix:/path or inet:port@host", s)
	}
	return network, address, nil
}

// NewBackend returns a Backend for o.
func NewBackend(o BackendOptions) (*Backend, error) {
	network, address, err := ParseBackendAddress(o.Address)
	if err != nil {
		return nil, err
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultBackendTimeout
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultBackendConns
	}
	b := &Backend{
		name: o.Name, network: network, address: address,
		timeout: o.Timeout, maxIdle: min(o.MaxIdle, o.MaxConns),
		slots: make(chan struct{}, o.MaxConns),
	}
	b.health = BackendHealth{Name: o.Name, Address: o.Address, Up: true}
	return b, nil
}

// Name returns the backend's name.
func (b *Backend) Name() string { return b.name }

// Timeout returns the deadline of one exchange.
func (b *Backend) Timeout() time.Duration { return b.timeout }

// BackendConn is one connection to a backend, held for one exchange. Its
// deadline is set; Release gives it back.
type BackendConn struct {
	net.Conn
	b        *Backend
	released bool
	// Reused reports whether the connection served an earlier exchange (a
	// protocol with keep-alive retries once on a fresh connection when a
	// reused one turns out closed by the backend).
	Reused bool
}

// Conn takes a connection slot (waiting at most the backend's timeout or
// until ctx ends), reuses an idle connection or dials a new one, and sets
// the connection's deadline to the earlier of ctx's and the timeout. A
// failure is a *BackendError and marks the backend down.
func (b *Backend) Conn(ctx context.Context) (*BackendConn, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, b.fail(fmt.Errorf("all %d connections busy: %w", cap(b.slots), ctx.Err()))
	}
	deadline, _ := ctx.Deadline()
	if c := b.takeIdle(); c != nil {
		if err := c.SetDeadline(deadline); err == nil {
			return &BackendConn{Conn: c, b: b, Reused: true}, nil
		}
		c.Close()
	}
	c, err := b.dialer.DialContext(ctx, b.network, b.address)
	if err != nil {
		<-b.slots
		return nil, b.fail(err)
	}
	if err := c.SetDeadline(deadline); err != nil {
		c.Close()
		<-b.slots
		return nil, b.fail(err)
	}
	return &BackendConn{Conn: c, b: b}, nil
}

func (b *Backend) takeIdle() net.Conn {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := len(b.idle); n > 0 {
		c := b.idle[n-1]
		b.idle = b.idle[:n-1]
		return c
	}
	return nil
}

// Release ends the exchange. err is its outcome: nil marks the backend up
// and, with keep true, keeps the connection for reuse (when the backend
// keeps idle connections); an error closes the connection, marks the
// backend down and is returned as a *BackendError (nil stays nil).
// Release may be called more than once; only the first call counts.
func (c *BackendConn) Release(keep bool, err error) error {
	if c.released {
		if err != nil {
			return c.b.wrap(err)
		}
		return nil
	}
	c.released = true
	defer func() { <-c.b.slots }()
	if err != nil {
		c.Conn.Close()
		return c.b.fail(err)
	}
	c.b.ok()
	if keep && c.b.keepIdle(c.Conn) {
		return nil
	}
	c.Conn.Close()
	return nil
}

func (b *Backend) keepIdle(c net.Conn) bool {
	if c.SetDeadline(time.Time{}) != nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || len(b.idle) >= b.maxIdle {
		return false
	}
	b.idle = append(b.idle, c)
	return true
}

// Close closes the idle connections, and the connections in use as they
// are released: a backend closed by a reload keeps none open behind it.
// Exchanges may still be made; their connections are not kept.
func (b *Backend) Close() error {
	b.mu.Lock()
	idle := b.idle
	b.idle = nil
	b.closed = true
	b.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
	return nil
}

func (b *Backend) wrap(err error) error {
	var be *BackendError
	if errors.As(err, &be) {
		return err
	}
	return &BackendError{Backend: b.name, Err: err}
}

// fail records a failed exchange and returns err as a *BackendError.
func (b *Backend) fail(err error) error {
	err = b.wrap(err)
	b.mu.Lock()
	if b.health.Up || b.health.Since.IsZero() {
		b.health.Since = time.Now()
	}
	b.health.Up, b.health.Err = false, err.Error()
	b.mu.Unlock()
	return err
}

func (b *Backend) ok() {
	b.mu.Lock()
	if !b.health.Up || b.health.Since.IsZero() {
		b.health.Since = time.Now()
	}
	b.health.Up, b.health.Err = true, ""
	b.mu.Unlock()
}

// Health returns what the last exchanges showed.
func (b *Backend) Health() BackendHealth {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.health
}

// ReadLine reads one line ending in '\n' of at most max bytes (the line
// ending included) and returns it without the line ending ("\n" or "\r\n").
// A longer line is ErrResponseTooLarge, so a backend cannot make a service
// hold more than max bytes for one line.
func ReadLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(line)+len(frag) > max {
			return nil, fmt.Errorf("%w: line over %d bytes", ErrResponseTooLarge, max)
		}
		line = append(line, frag...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// ReadAtMost reads r to its end and fails with ErrResponseTooLarge when it
// holds more than max bytes.
func ReadAtMost(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: over %d bytes", ErrResponseTooLarge, max)
	}
	return b, nil
}

// HealthReporter is implemented by services that depend on backends. The
// server reports their health (metrics, the readiness of the chains that
// use them); a service whose backend is down fails its calls with a
// *BackendError, never passes the content.
type HealthReporter interface {
	// CheckHealth asks the backends (clamd's PING, an ICAP OPTIONS) and
	// returns their health.
	CheckHealth(ctx context.Context) []BackendHealth
}
