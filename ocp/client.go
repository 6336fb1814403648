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
	groups  map[int64]*ServiceGroup
	lastXid int64
	lastSG  int64
	peerSG  int64 // highest sg-id created by the server
}

// pendingOffer is a negotiation offer we sent and wait an NR for.
type pendingOffer struct {
	sg       int64
	features []Feature
	reply    chan negResult
}

type negResult struct {
	selected *Feature
	err      error
}

// ServiceGroup is a service group created by the processor with SGC
// (RFC 4037 §11.3) and the profile negotiated for it.
type ServiceGroup struct {
	ID       int64
	Services []Service
	Profile  *Feature // negotiated profile, nil if none
	dead     bool
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

// Close ends the connection with CE and closes the transport. Open
// transactions fail with a *ConnError.
func (cl *Client) Close() error {
	cl.c.terminate(Result{}, nil)
	return nil
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

// NewServiceGroup creates a service group (SGC) for services and, when
// offer is not empty, negotiates a feature for it (NO with SG, RFC 4037
// §6). It returns the feature the server selected. When the server
// selects none, the group is still created and returned together with a
// *NegotiationError; when it selects a feature that was not offered the
// connection is ended (CE 400) and the error is a *NegotiationError.
func (cl *Client) NewServiceGroup(ctx context.Context, services []Service, offer []Feature) (*ServiceGroup, Feature, error) {
	select {
	case cl.negMu <- struct{}{}:
	case <-ctx.Done():
		return nil, Feature{}, ctx.Err()
	case <-cl.c.done:
		return nil, Feature{}, cl.c.connErr()
	}
	defer func() { <-cl.negMu }()
	// SGC may not be sent during a negotiation phase the server keeps open.
	for cl.c.inPhase() {
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return nil, Feature{}, ctx.Err()
		case <-cl.c.done:
			return nil, Feature{}, cl.c.connErr()
		}
	}
	cl.mu.Lock()
	cl.lastSG++
	sg := &ServiceGroup{ID: cl.lastSG, Services: services}
	cl.groups[sg.ID] = sg
	var o *pendingOffer
	if len(offer) > 0 {
		o = newOffer(sg.ID, offer)
		cl.offer = o
		for _, f := range offer {
			cl.offered[f.URI] = true
		}
	}
	cl.mu.Unlock()
	err := cl.c.send(&Message{Name: MsgSGC, Anon: []Value{Num(sg.ID), ServicesValue(services)}}, false)
	if err != nil || o == nil {
		return sg, Feature{}, err
	}
	cl.c.setPhase(true)
	no := &Message{Name: MsgNO, Anon: []Value{FeaturesValue(offer)}, Named: []Param{NewParam(ParamSG, Num(sg.ID))}}
	if err := cl.c.send(no, false); err != nil {
		return nil, Feature{}, err
	}
	r, err := cl.await(ctx, o)
	if err != nil {
		return nil, Feature{}, err
	}
	if r.err != nil {
		return sg, Feature{}, r.err
	}
	return sg, *r.selected, nil
}

func newOffer(sg int64, fs []Feature) *pendingOffer {
	return &pendingOffer{sg: sg, features: fs, reply: make(chan negResult, 1)}
}

// await waits for the NR answering o. A negotiation that does not finish in
// time ends the connection (RFC 4037 §2.7).
func (cl *Client) await(ctx context.Context, o *pendingOffer) (negResult, error) {
	t := time.NewTimer(cl.cfg.handshakeTimeout())
	defer t.Stop()
	select {
	case r := <-o.reply:
		return r, nil
	case <-cl.c.done:
		return negResult{}, cl.c.connErr()
	case <-ctx.Done():
		cl.c.terminate(Failure("negotiation abandoned"), ctx.Err())
		return negResult{}, ctx.Err()
	case <-t.C:
		cl.c.terminate(Failure("negotiation timeout"), nil)
		return negResult{}, fmt.Errorf("ocp: negotiation timeout: %w", cl.c.connErr())
	}
}

// DestroyServiceGroup sends SGD for sg. Transactions already started with
// it are not affected.
func (cl *Client) DestroyServiceGroup(sg *ServiceGroup) error {
	cl.mu.Lock()
	if cl.groups[sg.ID] != sg {
		cl.mu.Unlock()
		return fmt.Errorf("%w: unknown service group %d", ErrState, sg.ID)
	}
	delete(cl.groups, sg.ID)
	sg.dead = true
	cl.mu.Unlock()
	return cl.c.send(&Message{Name: MsgSGD, Anon: []Value{Num(sg.ID)}}, false)
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
