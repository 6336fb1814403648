package ocp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// ClientConfig configures the processor role. The zero value is usable:
// plain TCP, default timeouts and limits, no logging.
type ClientConfig struct {
	// TLS, when not nil, wraps the connection in TLS before CS. When its
	// ServerName is empty, Dial sets it from the address.
	TLS *tls.Config
	// Dialer opens the transport; nil means a net.Dialer.
	Dialer interface {
		DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	}
	// HandshakeTimeout bounds TLS, CS and the initial negotiation phase
	// (default 10s), and every later negotiation.
	HandshakeTimeout time.Duration
	// TxIdleTimeout bounds how long a transaction may go without any
	// message in either direction: after half of it the client sends PQ,
	// and when another half passes without an answer the transaction ends
	// with TE 400 (RFC 4037 §2.7). A PA naming the transaction restarts it.
	// Zero means 60s; a negative value disables the check.
	TxIdleTimeout time.Duration
	// Known lists the URIs of features the processor knows but does not
	// accept when the server offers them (it offers them itself, per
	// service group). A server's NO naming one of them, or a feature this
	// client offered, is answered with the feature under Rejects; any
	// other under Unknowns (RFC 4037 §11.19).
	Known []string
	// Limits bounds what the decoder accepts from the server.
	Limits Limits
	// Logger receives protocol warnings; nil discards them.
	Logger *slog.Logger
}

func (cfg *ClientConfig) txIdleTimeout() time.Duration {
	if cfg.TxIdleTimeout == 0 {
		return 60 * time.Second
	}
	return cfg.TxIdleTimeout
}

func (cfg *ClientConfig) handshakeTimeout() time.Duration {
	if cfg.HandshakeTimeout > 0 {
		return cfg.HandshakeTimeout
	}
	return 10 * time.Second
}

// Client is the OPES processor's end of one OCP connection (RFC 4037): it
// negotiates, creates service groups and multiplexes transactions by xid.
// It is safe for concurrent use.
type Client struct {
	c   *conn
	cfg ClientConfig

	negMu chan struct{} // one own negotiation at a time

	mu      sync.Mutex
	gotCS   bool
	ready   bool          // handshake complete
	readyCh chan struct{} // closed when the handshake completes
	offer   *pendingOffer // our NO awaiting its NR
	more    bool          // the peer's last NO or NR had Offer-Pending: true
	offered map[string]bool
	txs     map[int64]*Tx
	idle    chan struct{} // closed when txs becomes empty (Drain)
	groups  map[int64]*ServiceGroup
	lastXid int64
	lastSG  int64
	peerSG  int64 // highest sg-id created by the server
}

// Dial connects to the callout server at addr over TCP (and TLS when
// configured), sends CS and an empty connection-scope offer, and waits for
// the server's CS and the end of the negotiation phase.
func Dial(ctx context.Context, addr string, cfg ClientConfig) (*Client, error) {
	var d interface {
		DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	} = &net.Dialer{}
	if cfg.Dialer != nil {
		d = cfg.Dialer
	}
	hctx, cancel := context.WithTimeout(ctx, cfg.handshakeTimeout())
	defer cancel()
	nc, err := d.DialContext(hctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ocp: dial %s: %w", addr, err)
	}
	if cfg.TLS != nil && cfg.TLS.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		cfg.TLS = cfg.TLS.Clone()
		cfg.TLS.ServerName = host
	}
	return NewClient(ctx, nc, cfg)
}

// NewClient runs the OCP handshake over an established transport nc (TLS
// first when cfg.TLS is set). On failure nc is closed.
func NewClient(ctx context.Context, nc net.Conn, cfg ClientConfig) (*Client, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.handshakeTimeout())
	defer cancel()
	if cfg.TLS != nil {
		tc := tls.Client(nc, cfg.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("ocp: TLS handshake: %w", err)
		}
		nc = tc
	}
	cl := &Client{
		cfg:     cfg,
		negMu:   make(chan struct{}, 1),
		readyCh: make(chan struct{}),
		offered: make(map[string]bool),
		txs:     make(map[int64]*Tx),
		groups:  make(map[int64]*ServiceGroup),
	}
	cl.c = newConn(nc, cfg.Limits, cfg.Logger)
	cl.offer = newOffer(0, nil)
	_ = cl.c.send(&Message{Name: MsgCS}, false)
	cl.c.setPhase(true)
	_ = cl.c.send(&Message{Name: MsgNO, Anon: []Value{List{}}}, false)
	go cl.readLoop()
	if d := cfg.txIdleTimeout(); d > 0 {
		go cl.sweep(d)
	}

	select {
	case <-cl.readyCh:
		return cl, nil
	case <-cl.c.done:
		return nil, cl.c.connErr()
	case <-ctx.Done():
		cl.c.terminate(Failure("handshake timeout"), ctx.Err())
		return nil, cl.c.connErr()
	}
}

// Close ends the connection with CE carrying res and closes the transport.
// Open transactions fail with a *ConnError. RFC 4037 §5: a connection
// ended because of an error (a broken negotiation, invalid input) carries
// 400 (use Failure); a zero res sends a bare CE, which reads as 200. Close
// waits for the CE to be written, at most until ctx ends (the transport is
// then closed at once); it returns ctx's error in that case.
func (cl *Client) Close(ctx context.Context, res Result) error {
	cl.c.terminateCtx(ctx, res, nil)
	return ctx.Err()
}

// Drain waits until no transaction is open, then ends the connection like
// Close. If ctx ends first, the connection is ended at once with CE 400
// and ctx's error returned. Transactions may still start while it waits;
// the caller stops starting them first.
func (cl *Client) Drain(ctx context.Context, res Result) error {
	for {
		cl.mu.Lock()
		if len(cl.txs) == 0 {
			cl.mu.Unlock()
			return cl.Close(ctx, res)
		}
		if cl.idle == nil {
			cl.idle = make(chan struct{})
		}
		idle := cl.idle
		cl.mu.Unlock()
		select {
		case <-idle:
		case <-cl.c.done:
			return nil
		case <-ctx.Done():
			cl.c.terminateCtx(ctx, Failure("closing"), ctx.Err())
			return ctx.Err()
		}
	}
}

// Done returns a channel closed when the connection has ended.
func (cl *Client) Done() <-chan struct{} { return cl.c.done }

// Err returns how the connection ended (a *ConnError), or nil while it is
// open.
func (cl *Client) Err() error {
	if err := cl.c.connErr(); err != nil {
		return err
	}
	return nil
}

// InFlight returns the number of open transactions.
func (cl *Client) InFlight() int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return len(cl.txs)
}

// Start begins a transaction (TS) using the service group sg.
func (cl *Client) Start(ctx context.Context, sg *ServiceGroup) (*Tx, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cl.mu.Lock()
	if err := cl.c.connErr(); err != nil {
		cl.mu.Unlock()
		return nil, err
	}
	if cl.groups[sg.ID] != sg {
		cl.mu.Unlock()
		return nil, fmt.Errorf("%w: unknown service group %d", ErrState, sg.ID)
	}
	if cl.lastXid == MaxSize {
		cl.mu.Unlock()
		cl.c.terminate(Failure("xid space exhausted"), nil)
		return nil, cl.c.connErr()
	}
	cl.lastXid++
	xid := cl.lastXid
	tx := &Tx{txCore: newTxCore(cl.c, xid, false, nil), cl: cl}
	tx.remove = func() { cl.removeTx(xid) }
	cl.txs[xid] = tx
	// TS is queued under cl.mu so that xids reach the wire in increasing
	// order; it does not wait for output space.
	err := cl.c.send(&Message{Name: MsgTS, Anon: []Value{Num(xid), Num(sg.ID)}}, false)
	cl.mu.Unlock()
	if err != nil {
		tx.abort(asConnError(err))
		return nil, err
	}
	return tx, nil
}

func (cl *Client) removeTx(xid int64) {
	cl.mu.Lock()
	delete(cl.txs, xid)
	if len(cl.txs) == 0 && cl.idle != nil {
		close(cl.idle)
		cl.idle = nil
	}
	cl.mu.Unlock()
}

// asConnError returns err as a *ConnError.
func asConnError(err error) *ConnError {
	var ce *ConnError
	if errors.As(err, &ce) {
		return ce
	}
	return &ConnError{Result: Failure("closed"), Err: err}
}

// sweep enforces TxIdleTimeout until the connection ends.
func (cl *Client) sweep(timeout time.Duration) {
	tick := time.NewTicker(max(timeout/8, 5*time.Millisecond))
	defer tick.Stop()
	var txs []*Tx
	for {
		select {
		case <-cl.c.done:
			return
		case now := <-tick.C:
			txs = txs[:0]
			cl.mu.Lock()
			for _, tx := range cl.txs {
				txs = append(txs, tx)
			}
			cl.mu.Unlock()
			for _, tx := range txs {
				tx.checkIdle(now, timeout)
			}
		}
	}
}
