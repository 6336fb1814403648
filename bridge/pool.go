package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// pool holds the OCP connections to every callout server the policy names.
// Each connection negotiates, at connect, one service group per chain that
// uses its server set, so no later negotiation blocks running transactions.
type pool struct {
	log     *slog.Logger
	metrics *Metrics
	chains  map[*mapping.ServerSet][]*mapping.Chain
	ups     map[*mapping.ServerSet][]*upstream

	mu      sync.Mutex
	next    map[*mapping.ServerSet]int // round-robin cursor
	retired atomic.Bool                // replaced by a reload: starts no transaction

	ctx    context.Context // ends when the pool closes: stops waiting drains
	cancel context.CancelFunc
	wg     sync.WaitGroup // the goroutines the pool started (spawn)
	closed bool           // guarded by mu: spawn starts nothing more
	live   int            // guarded by mu: goroutines started by spawn still running
}

// spawn runs fn in a goroutine close waits for, unless the pool is closed.
func (pl *pool) spawn(fn func()) bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.closed {
		return false
	}
	pl.wg.Add(1)
	pl.live++
	go func() {
		defer pl.wg.Done()
		defer func() {
			pl.mu.Lock()
			pl.live--
			pl.mu.Unlock()
		}()
		fn()
	}()
	return true
}

// idle reports whether none of the goroutines the pool started runs (a
// retired pool whose connections have all closed).
func (pl *pool) idle() bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.live == 0
}

// errRetired is returned by start on a pool a reload replaced; the caller
// retries with the current one.
var errRetired = errors.New("bridge: callout pool retired by a reload")

// upstream is one callout server address with its connections and its
// circuit breaker.
type upstream struct {
	addr string
	set  *mapping.ServerSet
	cfg  ocp.ClientConfig // the set's client settings
	err  error            // why they could not be built: every dial fails

	mu        sync.Mutex
	conns     []*upConn
	dialing   int
	changed   chan struct{} // closed and replaced when a dial ends
	failures  int
	openUntil time.Time
	tripped   bool
}

// upConn is one negotiated OCP connection.
type upConn struct {
	c        *ocp.Client
	groups   map[groupKey]group
	lastUsed atomic.Int64 // unix nanoseconds of the last transaction start
}

// groupKey names the service group of one route on a connection: routes
// sharing a chain share a group only when they offer the same profile
// (URI, parts and Header-List); a receiver route and a sender route on one
// chain negotiate two groups, each with its own parts.
type groupKey struct {
	chain *mapping.Chain
	offer string // the offer in wire form
}

// keyOf returns the service group key of route r.
func keyOf(r *mapping.Route) groupKey {
	no := &ocp.Message{Name: ocp.MsgNO, Anon: []ocp.Value{r.Offer().Feature().Value()}}
	return groupKey{chain: r.Chain, offer: string(ocp.AppendMessage(nil, no))}
}

// group is a service group negotiated on one connection.
type group struct {
	sg      *ocp.ServiceGroup
	profile ocpsmtp.Profile
}

func newPool(p *Policy, log *slog.Logger, m *Metrics) *pool {
	pl := &pool{log: log, metrics: m, chains: map[*mapping.ServerSet][]*mapping.Chain{}, ups: map[*mapping.ServerSet][]*upstream{}, next: map[*mapping.ServerSet]int{}}
	pl.ctx, pl.cancel = context.WithCancel(context.Background())
	seen := map[*mapping.Chain]bool{}
	for _, r := range p.Routes {
		c := r.Chain
		if seen[c] {
			continue
		}
		seen[c] = true
		pl.chains[c.Server] = append(pl.chains[c.Server], c)
		if _, ok := pl.ups[c.Server]; !ok {
			cfg, err := c.Server.ClientConfig()
			for _, a := range c.Server.Addresses {
				pl.ups[c.Server] = append(pl.ups[c.Server], &upstream{addr: a, set: c.Server, cfg: cfg, err: err})
			}
		}
	}
	return pl
}

// offers returns the service groups to negotiate on a server set: one per
// distinct (chain, offer), in route order, each with a route offering it.
func (pl *pool) offers(set *mapping.ServerSet, routes []*mapping.Route) ([]groupKey, map[groupKey]*mapping.Route) {
	var keys []groupKey
	by := map[groupKey]*mapping.Route{}
	for _, r := range routes {
		if r.Chain.Server != set {
			continue
		}
		k := keyOf(r)
		if _, ok := by[k]; !ok {
			keys = append(keys, k)
			by[k] = r
		}
	}
	return keys, by
}

// start opens a transaction for route r on the best available connection,
// failing over across the set's servers. Errors are *AdaptationError of
// class FailConnect.
func (pl *pool) start(ctx context.Context, r *mapping.Route, routes []*mapping.Route) (*ocp.Tx, ocpsmtp.Profile, error) {
	if pl.retired.Load() {
		return nil, ocpsmtp.Profile{}, errRetired
	}
	set := r.Chain.Server
	ups := pl.ups[set]
	if len(ups) == 0 {
		return nil, ocpsmtp.Profile{}, failure(FailConnect, fmt.Errorf("server set %q has no servers", set.Name))
	}
	first := 0
	if set.RoundRobin() {
		pl.mu.Lock()
		first = pl.next[set] % len(ups)
		pl.next[set]++
		pl.mu.Unlock()
	}
	var errs []error
	for i := range ups {
		u := ups[(first+i)%len(ups)]
		if u.isOpen(time.Now(), pl.metrics) {
			errs = append(errs, fmt.Errorf("%s: circuit breaker open", u.addr))
			continue
		}
		uc, err := u.get(ctx, pl, routes)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		g, ok := uc.groups[keyOf(r)]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: chain %q has no service group", u.addr, r.Chain.Name))
			continue
		}
		uc.lastUsed.Store(time.Now().UnixNano())
		tx, err := uc.c.Start(ctx, g.sg)
		if err != nil {
			u.failed(pl.log, pl.metrics, err)
			errs = append(errs, err)
			continue
		}
		u.succeeded()
		return tx, g.profile, nil
	}
	return nil, ocpsmtp.Profile{}, failure(FailConnect, errors.Join(errs...))
}

// isOpen reports whether the breaker is open at now; a breaker whose
// revival delay passed closes (half-open: the next try decides).
func (u *upstream) isOpen(now time.Time, m *Metrics) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.tripped && !now.Before(u.openUntil) {
		u.tripped = false
		m.breaker(u.addr, false)
	}
	return now.Before(u.openUntil)
}

func (u *upstream) failed(log *slog.Logger, m *Metrics, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.failures++
	limit := u.set.FailureLimit
	if limit <= 0 {
		limit = 5
	}
	if u.failures >= limit {
		delay := u.set.RevivalDelay
		if delay <= 0 {
			delay = 30 * time.Second
		}
		u.openUntil = time.Now().Add(delay)
		u.failures = 0
		u.tripped = true
		m.breaker(u.addr, true)
		log.Warn("circuit breaker open", "server", u.addr, "for", delay, "err", err)
	}
}

func (u *upstream) succeeded() {
	u.mu.Lock()
	u.failures = 0
	u.mu.Unlock()
}

// get returns a live connection, dialling a new one while fewer than the
// configured number exist and every existing one is busy. At most
// Connections connections exist or are being dialled at any time: a caller
// that finds none ready and the limit reached waits for a dial in
// progress.
func (u *upstream) get(ctx context.Context, pl *pool, routes []*mapping.Route) (*upConn, error) {
	max := u.set.Connections
	if max <= 0 {
		max = 1
	}
	for {
		u.mu.Lock()
		live := u.conns[:0]
		now := time.Now().UnixNano()
		for _, c := range u.conns {
			select {
			case <-c.c.Done():
				continue
			default:
			}
			if idle := u.set.IdleTimeout; idle > 0 && c.c.InFlight() == 0 && now-c.lastUsed.Load() > int64(idle) {
				// Close it before the callout server's own idle timeout
				// does, so no transaction starts on a connection the
				// server is closing.
				cc := c.c
				if !pl.spawn(func() { cc.Close(pl.ctx, ocp.Result{}) }) {
					cc.Close(pl.ctx, ocp.Result{})
				}
				continue
			}
			live = append(live, c)
		}
		u.conns = live
		var best *upConn
		for _, c := range u.conns {
			if best == nil || c.c.InFlight() < best.c.InFlight() {
				best = c
			}
		}
		full := len(u.conns)+u.dialing >= max
		if best != nil && (best.c.InFlight() == 0 || full) {
			u.mu.Unlock()
			return best, nil
		}
		if u.changed == nil {
			u.changed = make(chan struct{})
		}
		if full {
			// No connection yet and the limit reached by dials in
			// progress: wait for one of them.
			ch := u.changed
			u.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		u.dialing++
		u.mu.Unlock()

		uc, err := pl.dial(ctx, u, routes)

		u.mu.Lock()
		u.dialing--
		if err == nil {
			u.conns = append(u.conns, uc)
		}
		close(u.changed)
		u.changed = make(chan struct{})
		u.mu.Unlock()
		if err != nil {
			u.failed(pl.log, pl.metrics, err)
			if best != nil {
				return best, nil
			}
			return nil, err
		}
		return uc, nil
	}
}

// dial connects to u and negotiates a service group for every chain on its
// set.
func (pl *pool) dial(ctx context.Context, u *upstream, routes []*mapping.Route) (*upConn, error) {
	if u.err != nil {
		return nil, fmt.Errorf("%s: %w", u.addr, u.err)
	}
	cfg := u.cfg
	// The profiles are features the processor knows: a server offering
	// one is refused with Rejects, not Unknowns (RFC 4037 §11.19).
	cfg.Known = append(cfg.Known[:len(cfg.Known):len(cfg.Known)], ocpsmtp.ReceiverURI, ocpsmtp.SenderURI)
	c, err := ocp.Dial(ctx, u.addr, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.addr, err)
	}
	uc := &upConn{c: c, groups: map[groupKey]group{}}
	uc.lastUsed.Store(time.Now().UnixNano())
	keys, by := pl.offers(u.set, routes)
	for _, k := range keys {
		offer, chain := by[k].Offer(), k.chain
		sg, feat, err := c.NewServiceGroup(ctx, chain.Group, []ocp.Feature{offer.Feature()})
		if err != nil {
			c.Close(ctx, ocp.Failure("negotiation failed"))
			return nil, fmt.Errorf("%s: chain %q: %w", u.addr, chain.Name, err)
		}
		answer, err := ocpsmtp.ParseProfile(feat)
		if err == nil {
			err = ocpsmtp.CheckAnswer(offer, answer)
		}
		if err != nil {
			// RFC 4037 §5: the agent ending a connection because of an
			// error says so with 400 (docs/profile.md 2.3).
			c.Close(ctx, ocp.Failure(truncate("profile violation: "+err.Error(), 200)))
			return nil, fmt.Errorf("%s: chain %q: %w", u.addr, chain.Name, err)
		}
		uc.groups[k] = group{sg: sg, profile: answer}
	}
	pl.log.Info("callout connection ready", "server", u.addr, "groups", len(uc.groups))
	pl.metrics.addConnections(1)
	if !pl.spawn(func() {
		<-c.Done()
		pl.metrics.addConnections(-1)
	}) {
		c.Close(ctx, ocp.Result{})
		pl.metrics.addConnections(-1)
		return nil, errRetired
	}
	return uc, nil
}

// close closes every connection (a retired pool's draining ones too) and
// waits for the goroutines the pool started.
func (pl *pool) close(ctx context.Context) {
	pl.retired.Store(true)
	pl.mu.Lock()
	pl.closed = true
	pl.mu.Unlock()
	var conns []*upConn
	for _, ups := range pl.ups {
		for _, u := range ups {
			u.mu.Lock()
			conns = append(conns, u.conns...)
			u.conns = nil
			u.mu.Unlock()
		}
	}
	for _, c := range conns {
		c.c.Close(ctx, ocp.Result{})
	}
	pl.cancel()
	pl.wg.Wait()
}

// closeWhenIdle closes every connection once it has no transaction in
// flight (after a reload).
func (pl *pool) closeWhenIdle() {
	pl.retired.Store(true)
	for _, ups := range pl.ups {
		for _, u := range ups {
			u.mu.Lock()
			conns := u.conns
			u.conns = nil
			u.mu.Unlock()
			for _, c := range conns {
				cc := c.c
				if !pl.spawn(func() { cc.Drain(pl.ctx, ocp.Result{}) }) {
					cc.Close(pl.ctx, ocp.Result{})
				}
			}
		}
	}
}
