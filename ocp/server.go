package ocp

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Handler serves the transactions of a callout server. ServeOCP runs in its
// own goroutine for each TS received; ctx is cancelled when the
// transaction or its connection ends. When ServeOCP returns without having
// ended the transaction, the server ends it: TE without result if the
// adapted message was completed (or never started), TE 400 otherwise.
type Handler interface {
	ServeOCP(ctx context.Context, tx *ServerTx)
}

// HandlerFunc adapts a function to the Handler interface.
type HandlerFunc func(ctx context.Context, tx *ServerTx)

// ServeOCP calls f(ctx, tx).
func (f HandlerFunc) ServeOCP(ctx context.Context, tx *ServerTx) { f(ctx, tx) }

// Group is a service group the processor created (SGC) and the profile
// negotiated for it.
type Group struct {
	ID       int64
	Services []Service
	Profile  *Feature // negotiated, nil if none
}

// Server is the callout server role of OCP: it accepts connections from
// OPES processors, answers their negotiation offers and runs Handler for
// every transaction. The zero value plus a Handler is usable.
type Server struct {
	// Handler serves transactions; required.
	Handler Handler
	// Negotiate chooses a feature for an offer. It is called from the
	// connection's read loop for each NO; sg is nil for connection scope.
	// Returning ok=false answers NR without a feature. A nil Negotiate
	// accepts nothing (an empty offer is still answered).
	Negotiate func(sg *Group, offer []Feature) (selected Feature, ok bool)
	// TLSConfig, when not nil, makes the server speak TLS before CS.
	TLSConfig *tls.Config
	// Limits bounds what the decoder accepts from processors.
	Limits Limits
	// IdleTimeout closes a connection without open transactions after
	// this long without a message (0 = never).
	IdleTimeout time.Duration
	// Logger receives connection and protocol events; nil discards them.
	Logger *slog.Logger
	// DrainResult, when set, is how Shutdown says the server is going
	// away: the result of the TE refusing a transaction started during
	// Shutdown, and of the CE ending each connection as soon as it has no
	// transaction in flight. The zero value refuses with
	// TE {400 "server shutting down"} and ends connections with CE.
	DrainResult Result

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	shutdown  bool
	connWG    sync.WaitGroup
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// ListenAndServe listens on the TCP address addr and calls Serve.
func (s *Server) ListenAndServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln until Shutdown or Close, serving each in
// its own goroutine. It returns ErrClosed after Shutdown or Close, or the
// accept error.
func (s *Server) Serve(ln net.Listener) error {
	if s.Handler == nil {
		return errors.New("ocp: Server.Handler is nil")
	}
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing() {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		s.connWG.Add(1)
		go func() {
			defer s.connWG.Done()
			s.serveConn(nc)
		}()
	}
}

func (s *Server) closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdown
}

// Shutdown stops accepting connections and transactions (a TS is refused
// with TE, see DrainResult) and ends each connection with CE as soon as it
// has no transaction in flight: the idle ones at once, the others when
// their transactions are done. If ctx ends first, the remaining
// connections are ended with CE 400 and ctx's error returned.
func (s *Server) Shutdown(ctx context.Context) error {
	conns := s.stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	ended := make(map[*serverConn]bool, len(conns))
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		busy := false
		for _, sc := range conns {
			if ended[sc] {
				continue
			}
			if sc.inFlight() > 0 {
				busy = true
				continue
			}
			// No TS is accepted any more: an idle connection stays idle.
			ended[sc] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				sc.c.terminate(s.DrainResult, nil)
			}()
		}
		if !busy {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			for _, sc := range conns {
				if !ended[sc] {
					sc.c.terminate(Failure("server shutting down"), nil)
				}
			}
			s.connWG.Wait()
			return ctx.Err()
		}
	}
	s.connWG.Wait()
	return nil
}

// refusal returns the result of the TE refusing a transaction during
// Shutdown.
func (s *Server) refusal() Result {
	if s.DrainResult.Failed() {
		return s.DrainResult
	}
	return Failure("server shutting down")
}

// Close stops accepting connections and ends every connection at once
// with CE 400.
func (s *Server) Close() error {
	for _, sc := range s.stop() {
		sc.c.terminate(Failure("server closed"), nil)
	}
	s.connWG.Wait()
	return nil
}

// stop marks the server shut down, closes its listeners and returns the
// open connections.
func (s *Server) stop() []*serverConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutdown = true
	for ln := range s.listeners {
		ln.Close()
	}
	conns := make([]*serverConn, 0, len(s.conns))
	for sc := range s.conns {
		conns = append(conns, sc)
	}
	return conns
}

func (s *Server) track(sc *serverConn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.shutdown {
			return false
		}
		if s.conns == nil {
			s.conns = make(map[*serverConn]struct{})
		}
		s.conns[sc] = struct{}{}
	} else {
		delete(s.conns, sc)
	}
	return true
}
