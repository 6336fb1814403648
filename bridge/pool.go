package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
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
	// keys are the routes' service group keys; written once by newPool.
	keys   map[*mapping.Route]groupKey
	chains map[*mapping.ServerSet][]*mapping.Chain
	ups    map[*mapping.ServerSet][]*upstream

	mu      sync.Mutex
	next    map[*mapping.ServerSet]int // round-robin cursor
	retired atomic.Bool                // replaced by a reload: starts no transaction

	ctx    context.Context // ends when the pool closes: stops waiting drains
	cancel context.CancelFunc
	wg     sync.WaitGroup // the goroutines the pool started (spawn)
	closed bool           // guarded by mu: spawn starts nothing more
	live   int            // guarded by mu: goroutines started by spawn still running

	routes   []*mapping.Route // what a probe negotiates
	resolver *net.Resolver
	kicks    map[*mapping.ServerSet]chan struct{} // resolve a set with names now
	cfgs     map[*mapping.ServerSet]setConfig     // each set's client settings, for servers DNS adds
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
	pl   *pool
	addr string // IP:port (or host:port as given)
	set  *mapping.ServerSet
	cfg  ocp.ClientConfig // the set's client settings
	err  error            // why they could not be built: every dial fails
	// host is the DNS name addr came from ("" when given as an address);
	// group and weight order the set's servers (resolve.go). Guarded by
	// pl.mu.
	host          string
	group, weight int
	removed       atomic.Bool // no longer a server of the set (DNS)

	mu       sync.Mutex
	conns    []*upConn
	dialing  int
	changed  chan struct{} // closed and replaced when a dial ends
	failures int           // failures in a row (timeouts, lost connections, failed connects)
	// tripped: the breaker is open. No transaction starts on the server
	// until a probe (a connection and its negotiation) succeeds; the
	// prober goroutine then closes it.
	tripped bool
}

// upConn is one negotiated OCP connection.
type upConn struct {
	up       *upstream
	c        *ocp.Client
	groups   map[groupKey]group
	lastUsed atomic.Int64 // unix nanoseconds of the last transaction start
	draining atomic.Bool  // the server said it is going away: no new transaction
	lostSeen atomic.Bool  // its end was counted toward the breaker (lost)
}

// lost counts the end of the connection, as one of its transactions saw
// it, toward the server's circuit breaker: once per connection, however
// many transactions it carried. A server that restarts with twenty
// messages in flight failed once, not twenty times; a server that loses
// connection after connection still opens its breaker.
func (uc *upConn) lost(err error) {
	if uc.lostSeen.CompareAndSwap(false, true) {
		uc.up.failed(err)
	}
}

// groupKey names the service group of one route on a connection: routes
// sharing a chain share a group only when they offer the same profile
// (URI, parts and Header-List); a receiver route and a sender route on one
// chain negotiate two groups, each with its own parts.
type groupKey struct {
	chain *mapping.Chain
	offer string // the offer in wire form
}

// keyOf returns the service group key of route r, computed once per
// route when the pool was made (each transaction looks its group up).
func (pl *pool) keyOf(r *mapping.Route) groupKey {
	if k, ok := pl.keys[r]; ok {
		return k
	}
	return keyOf(r)
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
	pl := &pool{log: log, metrics: m, chains: map[*mapping.ServerSet][]*mapping.Chain{}, ups: map[*mapping.ServerSet][]*upstream{}, next: map[*mapping.ServerSet]int{},
		routes: p.Routes, resolver: newResolver(p.Resolver), kicks: map[*mapping.ServerSet]chan struct{}{},
		cfgs: map[*mapping.ServerSet]setConfig{}}
	pl.keys = make(map[*mapping.Route]groupKey, len(p.Routes))
	for _, r := range p.Routes {
		pl.keys[r] = keyOf(r)
	}
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
			set := c.Server
			pl.ups[set] = []*upstream{}
			cfg, err := set.ClientConfig()
			pl.cfgs[set] = setConfig{cfg, err}
			if hasNames(set) {
				// Resolved now (bounded), then again in the background.
				_ = pl.resolveSet(set)
				kick := make(chan struct{}, 1)
				pl.kicks[set] = kick
				pl.spawn(func() { pl.resolveLoop(set, kick) })
				continue
			}
			for i, a := range set.Addresses {
				pl.ups[set] = append(pl.ups[set], &upstream{pl: pl, addr: a, set: set, cfg: cfg, err: err, group: i})
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
// failing over across the set's servers, and returns the connection too.
// Servers in *tried (those an earlier attempt of the same transaction
// failed on) are tried only when no other server could start it; every
// server that fails here is added to *tried. It gives up when ctx ends.
// Errors are *AdaptationError of class FailConnect (FailTimeout when ctx
// ended).
func (pl *pool) start(ctx context.Context, r *mapping.Route, routes []*mapping.Route, tried *[]*upstream) (*ocp.Tx, ocpsmtp.Profile, *upConn, error) {
	if pl.retired.Load() {
		return nil, ocpsmtp.Profile{}, nil, errRetired
	}
	set := r.Chain.Server
	ups := pl.servers(set)
	if len(ups) == 0 {
		pl.kickResolve(set)
		return nil, ocpsmtp.Profile{}, nil, failure(FailConnect, fmt.Errorf("server set %q has no servers", set.Name))
	}
	order := make([]*upstream, 0, len(ups))
	var later []*upstream
	for _, u := range ups {
		if slices.Contains(*tried, u) {
			later = append(later, u)
			continue
		}
		order = append(order, u)
	}
	order = append(order, later...)
	var errs []error
	for _, u := range order {
		if err := ctx.Err(); err != nil {
			// Out of time: the next server is not to blame.
			errs = append(errs, err)
			break
		}
		if u.isOpen() {
			errs = append(errs, fmt.Errorf("%s: circuit breaker open", u.addr))
			continue
		}
		uc, err := u.get(ctx, pl, routes)
		if err != nil {
			errs = append(errs, err)
			if !slices.Contains(*tried, u) {
				*tried = append(*tried, u)
			}
			continue
		}
		g, ok := uc.groups[pl.keyOf(r)]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: chain %q has no service group", u.addr, r.Chain.Name))
			continue
		}
		uc.lastUsed.Store(time.Now().UnixNano())
		tx, err := uc.c.Start(ctx, g.sg)
		if err != nil {
			if lostConnection(err) {
				uc.lost(err) // as a transaction on it may have counted already
			} else {
				u.failed(err)
			}
			errs = append(errs, err)
			if !slices.Contains(*tried, u) {
				*tried = append(*tried, u)
			}
			continue
		}
		// A started transaction is no success yet: a server that stopped
		// still lets TS through. The session reports how it went.
		return tx, g.profile, uc, nil
	}
	pl.kickResolve(set) // the set's names may point elsewhere by now
	return nil, ocpsmtp.Profile{}, nil, failure(FailConnect, errors.Join(errs...))
}

// isOpen reports whether the breaker is open.
func (u *upstream) isOpen() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.tripped
}

// failed counts one failure of the server toward its breaker; at
// FailureLimit failures in a row the breaker opens and a prober starts.
func (u *upstream) failed(err error) {
	pl := u.pl
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.tripped {
		return
	}
	u.failures++
	limit := u.set.FailureLimit
	if limit <= 0 {
		limit = 5
	}
	if u.failures >= limit {
		u.failures = 0
		u.tripped = true
		if u.removed.Load() {
			return // DNS dropped it: no series, no probe (the transactions in flight still fail here)
		}
		pl.metrics.breaker(u.addr, true)
		pl.log.Warn("circuit breaker open", "server", u.addr, "err", err)
		pl.spawn(func() { pl.probe(u) })
	}
}

// succeeded resets the count of failures in a row.
func (u *upstream) succeeded() {
	u.mu.Lock()
	u.failures = 0
	u.mu.Unlock()
}

// Probes of a server whose breaker is open: the first after probeFirst,
// then twice as long each time up to the set's revival delay (by default
// probeMax); each bounded by probeTimeout and the handshake timeout.
const (
	probeFirst   = 100 * time.Millisecond
	probeMax     = time.Second
	probeTimeout = 2 * time.Second
)

// probe tries u with a connection and its negotiation (an OCP handshake,
// every service group of its set), backing off, until one succeeds or the
// pool is closed or retired. A success closes the breaker and the probe's
// connection joins the server's connections, so traffic flows as soon as
// the server is back.
func (pl *pool) probe(u *upstream) {
	maxWait := u.set.RevivalDelay
	if maxWait <= 0 {
		maxWait = probeMax
	}
	wait := min(probeFirst, maxWait)
	timeout := probeTimeout
	if h := u.cfg.HandshakeTimeout; h > 0 && h < timeout {
		timeout = h
	}
	for {
		select {
		case <-pl.ctx.Done():
			return
		case <-time.After(wait):
		}
		if pl.retired.Load() || u.removed.Load() {
			return
		}
		wait = min(2*wait, maxWait)
		ctx, cancel := context.WithTimeout(pl.ctx, timeout)
		uc, err := pl.dial(ctx, u, pl.routes)
		cancel()
		if err != nil {
			pl.log.Debug("circuit breaker probe failed", "server", u.addr, "err", err)
			continue
		}
		u.mu.Lock()
		if pl.retired.Load() {
			u.mu.Unlock()
			uc.c.Close(pl.ctx, ocp.Result{})
			return
		}
		u.conns = append(u.conns, uc)
		u.tripped = false
		u.failures = 0
		u.mu.Unlock()
		if !u.removed.Load() {
			pl.metrics.breaker(u.addr, false)
		}
		pl.log.Info("circuit breaker closed: the server answered a probe", "server", u.addr)
		return
	}
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
			if c.draining.Load() {
				// The server is going away: its transactions in flight
				// finish, new ones go elsewhere.
				cc := c.c
				if !pl.spawn(func() { cc.Drain(pl.ctx, ocp.Result{}) }) {
					cc.Close(pl.ctx, ocp.Result{})
				}
				continue
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
				err := fmt.Errorf("%s: waiting for a connection: %w", u.addr, ctx.Err())
				if errors.Is(ctx.Err(), context.DeadlineExceeded) {
					// A dial to the server took all our time:
					// a server that does not answer.
					u.failed(err)
				}
				return nil, err
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
			u.failed(err)
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
	pl.mu.Lock()
	host := u.host
	pl.mu.Unlock()
	if cfg.TLS != nil && cfg.TLS.ServerName == "" && host != "" {
		// A server found by DNS is verified under its name, not its IP.
		cfg.TLS = cfg.TLS.Clone()
		cfg.TLS.ServerName = host
	}
	c, err := ocp.Dial(ctx, u.addr, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.addr, err)
	}
	uc := &upConn{up: u, c: c, groups: map[groupKey]group{}}
	uc.lastUsed.Store(time.Now().UnixNano())
	keys, by := pl.offers(u.set, routes)
	for _, k := range keys {
		offer, chain := by[k].Offer(), k.chain
		sg, feat, err := c.NewServiceGroup(ctx, chain.Group, []ocp.Feature{offer.Feature()})
		if err != nil {
			err = refusal(ctx, c, u.addr, chain, offer, err) // names the services refused
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
	for _, ups := range pl.allServers() {
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
	for _, ups := range pl.allServers() {
		for _, u := range ups {
			pl.drainConns(u)
		}
	}
}

// drainConns takes the server's connections out of use and closes each
// once its transactions have ended.
func (pl *pool) drainConns(u *upstream) {
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

// allServers returns the servers of every set.
func (pl *pool) allServers() [][]*upstream {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	out := make([][]*upstream, 0, len(pl.ups))
	for _, ups := range pl.ups {
		out = append(out, slices.Clone(ups))
	}
	return out
}
