package bridge

import (
	"context"

	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp"
)

// Readiness: a chain is ready when at least one server of its set has
// negotiated the chain's service group and its circuit breaker is closed.
// The daemon does not wait for mail to find out: WatchReadiness connects
// to every server when it starts (which also warms the pool) and probes
// again, while a server has no connection, every interval.

// ChainReadiness is the readiness of one chain.
type ChainReadiness struct {
	Chain   string            `json:"chain"`
	Ready   bool              `json:"ready"`
	Servers []ServerReadiness `json:"servers,omitempty"`
}

// ServerReadiness is what the last probe of one server found for a chain.
type ServerReadiness struct {
	ServerSet string `json:"server_set"`
	Server    string `json:"server"`
	Ready     bool   `json:"ready"`
	Error     string `json:"error,omitempty"`
}

// probeState is the last probe outcome of each server of the current
// pool: nil error when it negotiated every chain's group.
type probeState struct {
	mu   sync.Mutex
	last map[*upstream]error
}

func (s *probeState) get(u *upstream) (err error, probed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	err, probed = s.last[u]
	return err, probed
}

func (s *probeState) set(u *upstream, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = map[*upstream]error{}
	}
	s.last[u] = err
}

// keepOnly forgets the servers of pools a reload replaced.
func (s *probeState) keepOnly(pl *pool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for u := range s.last {
		found := false
		for _, u2 := range pl.serversOf(u.set) {
			found = found || u2 == u
		}
		if !found {
			delete(s.last, u)
		}
	}
}

// errNotProbed is the state of a server before its first probe.
var errNotProbed = errors.New("not probed yet")

// errBreakerOpen is the state of a server whose circuit breaker is open.
var errBreakerOpen = errors.New("circuit breaker open")

// serving reports whether u has a live connection with chain's service
// group (the one place readiness reads the pool's connections) and
// whether its breaker is open.
func (u *upstream) serving(chain *mapping.Chain, now time.Time) (negotiated, open bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	open = u.tripped
	for _, c := range u.conns {
		select {
		case <-c.c.Done():
			continue
		default:
		}
		for k := range c.groups {
			if k.chain == chain {
				return true, open
			}
		}
	}
	return false, open
}

// adopt adds a connection a probe negotiated to u's connections, for the
// next transaction to use.
func (u *upstream) adopt(uc *upConn) {
	u.mu.Lock()
	u.conns = append(u.conns, uc)
	u.mu.Unlock()
}

// Readiness reports whether every chain of the current policy is ready,
// and the state of each chain and its servers.
func (b *Bridge) Readiness() (bool, []ChainReadiness) {
	st := b.current()
	sets, chains := chainsBySet(st.policy.Routes)
	now := time.Now()
	all := true
	var out []ChainReadiness
	for _, set := range sets {
		for _, ch := range chains[set] {
			cr := ChainReadiness{Chain: ch.Name}
			for _, u := range st.pool.serversOf(set) {
				sr := ServerReadiness{ServerSet: set.Name, Server: u.addr}
				negotiated, open := u.serving(ch, now)
				err, probed := b.probes.get(u)
				switch {
				case open:
					sr.Error = errBreakerOpen.Error()
				case negotiated:
					sr.Ready = true
				case !probed:
					sr.Error = errNotProbed.Error()
				case err != nil:
					sr.Error = err.Error()
				default:
					// Negotiated at the last probe; the connection has
					// ended since (an idle timeout): the next probe
					// decides.
					sr.Ready = true
				}
				cr.Ready = cr.Ready || sr.Ready
				cr.Servers = append(cr.Servers, sr)
			}
			all = all && cr.Ready
			out = append(out, cr)
		}
	}
	return all, out
}

// readinessProbeTimeout bounds one probe of one server.
const readinessProbeTimeout = 15 * time.Second

// serversOf returns the servers of set (those DNS removed left out), in
// configuration order, without touching the round-robin cursor.
func (pl *pool) serversOf(set *mapping.ServerSet) []*upstream {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	var out []*upstream
	for _, u := range pl.ups[set] {
		if !u.removed.Load() {
			out = append(out, u)
		}
	}
	return out
}

// ProbeNow connects to every server of the current policy that has no
// live connection (and whose breaker is closed) and negotiates its
// chains' service groups, as the first transaction would; the connection
// joins the pool. A failed probe does not count for the circuit breaker.
// It returns when every probe has ended.
func (b *Bridge) ProbeNow(ctx context.Context) {
	st := b.current()
	sets, chains := chainsBySet(st.policy.Routes)
	b.probes.keepOnly(st.pool)
	var wg sync.WaitGroup
	for _, set := range sets {
		for _, u := range st.pool.serversOf(set) {
			if negotiated, _ := u.serving(chains[set][0], time.Now()); negotiated {
				b.probes.set(u, nil)
				continue
			}
			if u.isOpen() { // the pool's own prober revives it

				b.probes.set(u, errBreakerOpen)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				pctx, cancel := context.WithTimeout(ctx, readinessProbeTimeout)
				defer cancel()
				// Dial as the pool does, but outside the circuit breaker:
				// a probe of a server that is down must not trip it (the
				// breaker is about mail), and mail must not wait for it.
				uc, err := st.pool.dial(pctx, u, st.policy.Routes)
				switch {
				case err != nil:
				case st.pool.retired.Load():
					// A reload replaced the pool meanwhile: its
					// connections are being closed, so is this one.
					uc.c.Close(pctx, ocp.Result{})
				default:
					u.adopt(uc)
				}
				if ctx.Err() != nil {
					return // shutting down: keep the last state
				}
				b.probes.set(u, err)
			}()
		}
	}
	wg.Wait()
}

// WatchReadiness probes every server at once, logs a warning for each
// chain none of whose servers negotiated its group, and then probes
// again every interval until ctx ends, logging each chain that becomes
// ready or not ready.
func (b *Bridge) WatchReadiness(ctx context.Context, interval time.Duration) {
	b.ProbeNow(ctx)
	was := map[string]bool{}
	report := func(start bool) {
		_, chains := b.Readiness()
		for _, c := range chains {
			if prev, seen := was[c.Chain]; seen && prev == c.Ready {
				continue
			}
			was[c.Chain] = c.Ready
			if c.Ready {
				if !start {
					b.log.Info("chain ready", "chain", c.Chain)
				}
				continue
			}
			args := []any{"chain", c.Chain}
			for _, s := range c.Servers {
				args = append(args, slog.Group("server", "set", s.ServerSet, "addr", s.Server, "err", s.Error))
			}
			msg := "chain not ready: no callout server negotiated its service group"
			if start {
				msg = "no callout server of the chain is ready at start; its mail is handled by on_failure until one is"
			}
			b.log.Warn(msg, args...)
		}
	}
	report(true)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.ProbeNow(ctx)
			report(false)
		}
	}
}

// chainsBySet returns the server sets the routes use, sorted by name, and
// the chains on each, in route order.
func chainsBySet(routes []*mapping.Route) ([]*mapping.ServerSet, map[*mapping.ServerSet][]*mapping.Chain) {
	sets, groups := groupsBySet(routes)
	chains := map[*mapping.ServerSet][]*mapping.Chain{}
	for set, gs := range groups {
		seen := map[*mapping.Chain]bool{}
		for _, g := range gs {
			if !seen[g.chain] {
				seen[g.chain] = true
				chains[set] = append(chains[set], g.chain)
			}
		}
	}
	return sets, chains
}
