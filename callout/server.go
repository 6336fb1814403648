package callout

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// DefaultTxTimeout bounds one transaction when Server.TxTimeout is zero.
const DefaultTxTimeout = 10 * time.Minute

// Server serves OPES mail services to OPES processors over OCP (the
// server role of package ocp) with the OCP/SMTP profiles. For each service
// group a processor creates, it builds a Chain from the services the SGC
// names, negotiates the group's profile from the chain's needs (see
// Negotiate), and runs every transaction of the group through the chain:
// adaptive MAIL and RCPT parts are answered as soon as they arrive, the
// message after the processor's AME.
//
// Set the fields, then call Serve (or ServeTLS) once per listener;
// Shutdown or Close end it. The fields must not change after the first
// Serve.
type Server struct {
	// Services maps a service URI, as processors name it in SGC, to the
	// service. Groups naming an unknown URI are refused.
	Services map[string]Service

	// gen holds the current generation of services: Services, then those
	// of each SetServices (see generation.go).
	gen   atomic.Pointer[generation]
	names atomic.Pointer[map[string]string] // see SetServiceNames
	// Logger receives connection and transaction events; nil discards.
	Logger *slog.Logger
	// Observer, when not nil, is told about every transaction and
	// service call (callout/promobserver counts them for Prometheus).
	Observer Observer
	// Spool says where message data is kept while services work on it.
	Spool SpoolOptions
	// TLSConfig, when not nil, makes every connection speak TLS before
	// CS.
	TLSConfig *tls.Config
	// MaxConnections bounds concurrent OCP connections; further ones wait
	// in the listen queue. Zero means no bound.
	MaxConnections int
	// Limits bounds what the OCP decoder accepts from processors.
	Limits ocp.Limits
	// IdleTimeout closes an OCP connection without transactions after
	// this long without a message (0 = never).
	IdleTimeout time.Duration
	// TxTimeout bounds one transaction; zero means DefaultTxTimeout.
	TxTimeout time.Duration
	// Extensions are the EHLO keywords whose MAIL and RCPT arguments the
	// services understand, announced in the negotiated profile (draft
	// §3.4.1); nil announces none.
	Extensions []string

	once    sync.Once
	ocp     *ocp.Server
	txSeq   atomic.Int64
	semOnce sync.Once
	slots   chan struct{}
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Server) init() *ocp.Server {
	s.once.Do(func() {
		s.ocp = &ocp.Server{
			Handler:     ocp.HandlerFunc(s.serveTx),
			Negotiate:   s.Negotiate,
			Limits:      s.Limits,
			TLSConfig:   s.TLSConfig,
			IdleTimeout: s.IdleTimeout,
			Logger:      s.logger(),
			// Shutdown is the profile's go-away (docs/profile.md 3.2).
			DrainResult: ocpsmtp.Draining,
		}
	})
	return s.ocp
}

// Serve accepts connections on ln until Shutdown or Close. It returns
// ocp.ErrClosed after Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	if s.MaxConnections > 0 {
		ln = newLimitListener(ln, s.sem())
	}
	return s.init().Serve(ln)
}

// sem returns the connection semaphore shared by all listeners.
func (s *Server) sem() chan struct{} {
	s.semOnce.Do(func() { s.slots = make(chan struct{}, s.MaxConnections) })
	return s.slots
}

// Shutdown drains (docs/profile.md 3.2): it stops accepting connections,
// refuses new transactions with TE {400 "draining"}, ends idle connections
// with CE {400 "draining"} and the others once their transactions ended
// (or ctx ends).
func (s *Server) Shutdown(ctx context.Context) error { return s.init().Shutdown(ctx) }

// Close ends every connection at once.
func (s *Server) Close() error { return s.init().Close() }

// SetServiceNames gives the configured name of each service URI, which
// the logs use instead of the URI (a URI without a name stays as it is);
// call it with the services at start and after a reload.
func (s *Server) SetServiceNames(names map[string]string) { s.names.Store(&names) }

// serviceName returns the configured name of uri, or uri.
func (s *Server) serviceName(uri string) string {
	if p := s.names.Load(); p != nil && (*p)[uri] != "" {
		return (*p)[uri]
	}
	return uri
}

// chain builds the chain of a service group from its SGC services.
func (s *Server) chain(services []ocp.Service) (*Chain, error) {
	return s.chainOf(s.services(), services)
}

// chainOf builds the chain of services from current.
func (s *Server) chainOf(current map[string]Service, services []ocp.Service) (*Chain, error) {
	c := &Chain{Links: make([]Link, 0, len(services)), names: s.serviceName}
	c.Observer = s.Observer
	for _, sv := range services {
		svc, ok := current[sv.URI]
		if !ok {
			return nil, fmt.Errorf("callout: unknown service %q", sv.URI)
		}
		c.Links = append(c.Links, Link{URI: sv.URI, Service: svc})
	}
	return c, nil
}

// allServices returns a chain of every configured service, used to answer
// offers made for the whole connection rather than one group.
func (s *Server) allServices() *Chain {
	c := &Chain{}
	current := s.services()
	for _, uri := range slices.Sorted(maps.Keys(current)) {
		c.Links = append(c.Links, Link{URI: uri, Service: current[uri]})
	}
	return c
}
