package callout

import (
	"io"
	"reflect"
	"sync"

	"github.com/opes-milter/opes-milter/ocp"
)

// generation is one set of services: the configured ones, then each
// reload's (Server.SetServices). A transaction holds the generation its
// chain came from while it runs. Once a reload replaced it and nothing
// holds it, the services it does not share with its successor are closed
// when they are io.Closer (the pooled connections of clamd, ICAP and
// rspamd), so a reload leaves no connection behind.
type generation struct {
	services map[string]Service

	mu      sync.Mutex
	held    int
	retired bool
	closed  bool
	closers []io.Closer // set by retire: what to close once not held
}

// hold takes a reference; false when the generation is closed already
// (a reload came in between: use the current one).
func (g *generation) hold() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.held++
	return true
}

// release drops a reference taken by hold.
func (g *generation) release() {
	g.mu.Lock()
	g.held--
	closers := g.closeIfDoneLocked()
	g.mu.Unlock()
	closeAll(closers)
}

// retire marks g as replaced by next: its services that next does not
// have are closed once no transaction holds g.
func (g *generation) retire(next *generation) {
	g.mu.Lock()
	g.retired = true
	for _, svc := range g.services {
		c, ok := svc.(io.Closer)
		if ok && !next.has(svc) {
			g.closers = append(g.closers, c)
		}
	}
	closers := g.closeIfDoneLocked()
	g.mu.Unlock()
	closeAll(closers)
}

func (g *generation) closeIfDoneLocked() []io.Closer {
	if !g.retired || g.held > 0 || g.closed {
		return nil
	}
	g.closed = true
	c := g.closers
	g.closers = nil
	return c
}

// has reports whether svc is one of g's services (the same instance).
func (g *generation) has(svc Service) bool {
	t := reflect.TypeOf(svc)
	if t == nil || !t.Comparable() {
		return false
	}
	for _, s := range g.services {
		if reflect.TypeOf(s) == t && s == svc {
			return true
		}
	}
	return false
}

func closeAll(cs []io.Closer) {
	for _, c := range cs {
		_ = c.Close()
	}
}

// current returns the generation new transactions use.
func (s *Server) current() *generation {
	if g := s.gen.Load(); g != nil {
		return g
	}
	s.gen.CompareAndSwap(nil, &generation{services: s.Services})
	return s.gen.Load()
}

// SetServices replaces the services for transactions and service groups
// from now on (a configuration reload); transactions in progress finish
// with theirs, and the replaced services are then closed when they
// implement io.Closer (unless services still has them). It is safe to
// call while the server runs.
func (s *Server) SetServices(services map[string]Service) {
	next := &generation{services: services}
	old := s.current()
	for !s.gen.CompareAndSwap(old, next) {
		old = s.current()
	}
	old.retire(next)
}

// services returns the current services.
func (s *Server) services() map[string]Service { return s.current().services }

// heldChain builds the chain of a transaction from the current services
// and holds their generation until release is called.
func (s *Server) heldChain(services []ocp.Service) (c *Chain, release func(), err error) {
	for {
		g := s.current()
		if !g.hold() {
			continue
		}
		c, err := s.chainOf(g.services, services)
		if err != nil {
			g.release()
			return nil, nil, err
		}
		return c, g.release, nil
	}
}
