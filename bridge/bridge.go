package bridge

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Bridge turns MTA sessions into OCP transactions for the configured callout
// servers. It implements Handler. The zero value is not usable; use New.
type Bridge struct {
	log     *slog.Logger
	metrics *Metrics

	mu      sync.Mutex
	state   *state  // current policy and its connection pool
	retired []*pool // pools replaced by a reload, draining
	closed  bool

	wg sync.WaitGroup // the exchanges' receivers

	sessions atomic.Int64
	inflight atomic.Int64

	pendingBufs *bufPool // buffers of data queued for callout servers
	spoolBufs   *bufPool // memory of the exchanges' spools

	probes probeState // readiness probes (readiness.go)
}

// state is one loaded policy with the pool built for it.
type state struct {
	policy *Policy
	pool   *pool
	// replies are the events a session of this policy needs replies to
	// (Policy.replies).
	replies Events
}

// newState builds the state of policy p.
func newState(p *Policy, log *slog.Logger, m *Metrics) *state {
	return &state{policy: p, pool: newPool(p, log, m), replies: p.replies()}
}

// Option configures a Bridge.
type Option func(*Bridge)

// WithMetrics records the bridge's Prometheus metrics in m.
func WithMetrics(m *Metrics) Option { return func(b *Bridge) { b.metrics = m } }

// New returns a Bridge serving p. A nil logger discards logs.
func New(p *Policy, log *slog.Logger, opts ...Option) *Bridge {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Bridge{
		log:         log,
		pendingBufs: newBufPool(pendingMax, pendingMax),
		spoolBufs:   newBufPool(spoolBufMin, spoolBufMax),
	}
	for _, o := range opts {
		o(b)
	}
	b.state = newState(p, log, b.metrics)
	b.metrics.init(p)
	return b
}

// Reload switches to a new policy: new transactions use it and new OCP
// connections negotiate its service groups; transactions in flight finish on
// the old connections, which are then closed.
func (b *Bridge) Reload(p *Policy) {
	b.mu.Lock()
	old := b.state
	b.state = newState(p, b.log, b.metrics)
	// Pools retired by earlier reloads whose connections have all closed
	// are done: forget them, so that reloads do not pile them up.
	var done []*pool
	kept := b.retired[:0]
	for _, pl := range b.retired {
		if pl.idle() {
			done = append(done, pl)
		} else {
			kept = append(kept, pl)
		}
	}
	b.retired = append(kept, old.pool)
	b.mu.Unlock()
	for _, pl := range done {
		pl.close(context.Background()) // nothing left to wait for
	}
	// Each retired connection closes once its transactions are done (or
	// at Close).
	old.pool.closeWhenIdle()
	b.metrics.init(p)
}

func (b *Bridge) current() *state {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// closeTimeout bounds how long Close waits for each connection's CE to be
// written.
const closeTimeout = 5 * time.Second

// Close closes every OCP connection, those of pools a reload retired too,
// and waits for the goroutines the bridge started (the pools' and the
// exchanges' receivers, which end with their transactions).
func (b *Bridge) Close() error {
	b.mu.Lock()
	pools := append(b.retired, b.state.pool)
	b.retired = nil
	b.closed = true
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	for _, pl := range pools {
		pl.close(ctx)
	}
	b.wg.Wait()
	return nil
}

// spawn runs fn in a goroutine Close waits for, unless the bridge is
// closed.
func (b *Bridge) spawn(fn func()) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		fn()
	}()
	return true
}

// Requirements implements Handler.
func (b *Bridge) Requirements() Requirements {
	return Requirements{
		Connect: true, Helo: true, Mail: true, Rcpt: true, Data: false,
		Headers: true, EndOfHeaders: true, Body: true,
		// RCPT when the configuration or the load needs it (Replies);
		// everything found while the message streams is answered at
		// end of message. CONNECT needs no reply: a session over
		// max_sessions is refused at its first RCPT (the MTA then waits
		// for one reply fewer per SMTP session).
		Replies: EventRcpt | EventEndOfMessage,
		Actions: ActAddHeader | ActChangeHeader | ActReplaceBody | ActAddRcpt | ActDelRcpt | ActChangeFrom | ActQuarantine,
		Macros: map[Stage][]string{
			StageConnect: {"j", "v", "{daemon_name}", "{client_addr}", "{client_name}"},
			StageHelo:    {"{tls_version}", "{cipher}"},
			StageMail:    {"i", "{auth_authen}", "{auth_type}"},
			StageData:    {"i"},
			StageEOM:     {"i"},
		},
	}
}

// Replies implements Handler: end of message always; RCPT when the loaded
// policy may refuse a recipient there (Policy.replies), or when the session
// limit is reached, so that the refused session is answered at its first
// RCPT rather than after its message was transferred.
func (b *Bridge) Replies() Events {
	st := b.current()
	r := st.replies
	if max := st.policy.MaxSessions; max > 0 && b.sessions.Load() >= int64(max) {
		r |= EventRcpt
	}
	return r
}

// NewSession implements Handler.
func (b *Bridge) NewSession(ctx context.Context, replies Events) (Session, error) {
	st := b.current()
	if max := st.policy.MaxSessions; max > 0 && b.sessions.Load() >= int64(max) {
		b.metrics.refused("sessions")
		return nil, ErrOverloaded
	}
	b.sessions.Add(1)
	b.metrics.addSessions(1)
	return &session{b: b, log: b.log, replies: replies}, nil
}
