package ocp

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// txCore is the state of one transaction shared by both roles: the
// outgoing dataflow with pausing, the checks on the incoming dataflow, the
// queue of messages for Recv and the end state.
type txCore struct {
	xid    int64
	xidA   Atom // xid as an atom, made once: every message of the transaction names it
	c      *conn
	server bool // the callout server's side of the transaction

	last atomic.Int64 // time of the last message in either direction, unix ns

	sendMu  sendLock   // serializes the owner's sends, never taken by the read loop
	stage   stage      // the owner's messages held back by Cork; guarded by c.mu
	mu      sync.Mutex // guards everything below; never held while blocking
	out     outFlow
	in      inFlow
	pres    preservation
	dwss    bool      // processor: DWSS received; server: DWSS sent
	dss     bool      // processor: DSS sent; server: DSS received
	pqSent  bool      // a progress query for an idle transaction is outstanding
	pqAt    time.Time // when it was sent
	queue   []*Message
	queued  int  // payload octets in queue
	pausing bool // we sent DWP because the queue is full
	// drained, when not nil, is where recv tells the read loop, held by
	// backpressure, that the queue went down to queueSoftLimit.
	drained chan struct{}
	end     error // set when the transaction ended: io.EOF, *TxError or *ConnError
	notify  chan struct{}
	done    chan struct{} // closed when the transaction ended
	remove  func()        // unregisters the transaction from its connection
}

func newTxCore(c *conn, xid int64, server bool, remove func()) *txCore {
	t := &txCore{
		xid:    xid,
		xidA:   Num(xid),
		c:      c,
		server: server,
		out:    newOutFlow(),
		pres:   newPreservation(),
		sendMu: make(sendLock, 1),
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
		remove: remove,
	}
	t.touch()
	return t
}

// touch records activity on the transaction for idle detection.
func (t *txCore) touch() { t.last.Store(time.Now().UnixNano()) }

// checkIdle enforces a transaction idle timeout (RFC 4037 §2.7): after
// half of it without any message a PQ is sent; when another half passes
// without an answer the transaction is terminated with TE 400. A PQ
// always precedes the TE, however late the check runs.
func (t *txCore) checkIdle(now time.Time, timeout time.Duration) {
	if now.Sub(time.Unix(0, t.last.Load())) < timeout/2 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.end != nil:
	case !t.pqSent:
		t.pqSent, t.pqAt = true, now
		t.sendCtl(&Message{Name: MsgPQ, Anon: []Value{t.xidAtom()}})
	case now.Sub(t.pqAt) >= timeout/2:
		t.failLocked("idle timeout")
	}
}

// progressed records a PA or PR from the peer naming this transaction.
func (t *txCore) progressed() {
	t.touch()
	t.mu.Lock()
	t.pqSent = false
	t.mu.Unlock()
}

func (t *txCore) xidAtom() Atom { return t.xidA }

// finishLocked ends the transaction with err (io.EOF for a clean end): the
// queue is purged unless err is io.EOF, Recv reports err after the queue.
func (t *txCore) finishLocked(err error) {
	if t.end != nil {
		return
	}
	t.end = err
	if err != io.EOF {
		t.queue, t.queued = nil, 0
	}
	close(t.done)
	t.wakeLocked()
	if t.remove != nil {
		t.remove()
	}
}

// abort ends the transaction because the connection ended.
func (t *txCore) abort(err *ConnError) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.finishLocked(err)
}

// failLocked terminates the transaction after invalid input from the peer
// (transaction scope, RFC 4037 §5): TE xid {400 reason}.
func (t *txCore) failLocked(reason string) {
	if t.end != nil {
		return
	}
	res := Failure(reason)
	t.c.log.Warn("ocp: terminating transaction", "xid", t.xid, "reason", reason)
	t.finishLocked(&TxError{Xid: t.xid, Result: res})
	t.sendCtl(withResult(&Message{Name: MsgTE, Anon: []Value{t.xidAtom()}}, res))
}

func (t *txCore) wakeLocked() {
	select {
	case t.notify <- struct{}{}:
	default:
	}
}

// sendLock serializes the owner's sends. It is a channel so that End can
// stop waiting for a sender blocked on a paused flow when its context ends.
type sendLock chan struct{}

func (l sendLock) Lock()   { l <- struct{}{} }
func (l sendLock) Unlock() { <-l }

// lockCtx takes the lock unless ctx ends first; a free lock is taken
// even when ctx has ended.
func (l sendLock) lockCtx(ctx context.Context) error {
	select {
	case l <- struct{}{}:
		return nil
	default:
	}
	select {
	case l <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
