package ocp

import (
	"context"
	"fmt"
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
	c      *conn
	server bool // the callout server's side of the transaction

	last atomic.Int64 // time of the last message in either direction, unix ns

	sendMu  sync.Mutex // serializes the owner's sends, never taken by the read loop
	mu      sync.Mutex // guards everything below; never held while blocking
	out     outFlow
	in      inFlow
	pres    preservation
	dwss    bool      // processor: DWSS received; server: DWSS sent
	dss     bool      // processor: DSS sent; server: DSS received
	pqSent  bool      // a progress query for an idle transaction is outstanding
	pqAt    time.Time // when it was sent
	queue   []*Message
	queued  int   // payload octets in queue
	pausing bool  // we sent DWP because the queue is full
	end     error // set when the transaction ended: io.EOF, *TxError or *ConnError
	notify  chan struct{}
	done    chan struct{} // closed when the transaction ended
	remove  func()        // unregisters the transaction from its connection
}

func newTxCore(c *conn, xid int64, server bool, remove func()) *txCore {
	t := &txCore{
		xid:    xid,
		c:      c,
		server: server,
		out:    newOutFlow(),
		pres:   newPreservation(),
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

func (t *txCore) xidAtom() Atom { return Num(t.xid) }

// ---- sending ----

// checkOpenLocked returns the error for sending on an ended transaction.
func (t *txCore) checkOpenLocked() error {
	if t.end != nil {
		if t.end == io.EOF {
			return fmt.Errorf("%w: transaction %d ended", ErrClosed, t.xid)
		}
		return t.end
	}
	return nil
}

func (t *txCore) startMessage(named []Param) error {
	t.sendMu.Lock()
	defer t.sendMu.Unlock()
	t.mu.Lock()
	if err := t.checkOpenLocked(); err != nil {
		t.mu.Unlock()
		return err
	}
	if t.out.started {
		t.mu.Unlock()
		return fmt.Errorf("%w: application message already started", ErrState)
	}
	t.out.started = true
	t.mu.Unlock()
	t.touch()
	return t.c.send(&Message{Name: MsgAMS, Anon: []Value{t.xidAtom()}, Named: named}, true)
}

// sendData sends a DUM (payload != nil or isDUM) or, for the server, a DUY
// of size octets of original data at orgOff. It honours pausing.
func (t *txCore) sendData(ctx context.Context, m *Message, size int64, duy bool) (int64, error) {
	t.sendMu.Lock()
	defer t.sendMu.Unlock()
	t.mu.Lock()
	for {
		if err := t.checkOpenLocked(); err != nil {
			t.mu.Unlock()
			return 0, err
		}
		if !t.out.active() {
			t.mu.Unlock()
			return 0, fmt.Errorf("%w: no application message in progress", ErrState)
		}
		if !t.out.stopped() {
			break
		}
		if !t.out.dpmSent {
			t.out.dpmSent = true
			t.sendCtl(&Message{Name: MsgDPM, Anon: []Value{t.xidAtom()}})
		}
		resume := t.out.resume
		t.mu.Unlock()
		if err := waitChan(ctx, resume, t.done); err != nil {
			return 0, err
		}
		t.mu.Lock()
	}
	if duy {
		orgOff, _ := Uint(m.Anon[1])
		if !t.pres.covers(orgOff, size) {
			t.mu.Unlock()
			return 0, fmt.Errorf("%w: DUY of octets %d+%d not kept by the processor", ErrState, orgOff, size)
		}
	} else {
		m.Anon[1] = Num(t.out.offset)
	}
	off := t.out.offset
	t.out.offset += size
	t.out.inflight = true
	t.mu.Unlock()

	err := t.c.send(m, true)
	t.touch()

	t.mu.Lock()
	t.out.inflight = false
	if err == nil && t.out.stopped() && !t.out.dpmSent && t.end == nil {
		t.out.dpmSent = true
		t.sendCtl(&Message{Name: MsgDPM, Anon: []Value{t.xidAtom()}})
	}
	t.mu.Unlock()
	return off, err
}

func (t *txCore) send(ctx context.Context, named []Param, payload []byte) (int64, error) {
	if payload == nil {
		payload = []byte{}
	}
	m := &Message{Name: MsgDUM, Anon: []Value{t.xidAtom(), nil}, Named: named, Payload: payload, HasPayload: true}
	if !t.server {
		for _, p := range named {
			if p.Name == ParamKept {
				off, size, err := keptParam(p)
				if err != nil {
					return 0, err
				}
				t.mu.Lock()
				t.pres.keep(off, size)
				t.mu.Unlock()
			}
		}
	}
	return t.sendData(ctx, m, int64(len(payload)), false)
}

func (t *txCore) endMessage(res Result) error {
	t.sendMu.Lock()
	defer t.sendMu.Unlock()
	t.mu.Lock()
	if err := t.checkOpenLocked(); err != nil {
		t.mu.Unlock()
		return err
	}
	if !t.out.active() {
		t.mu.Unlock()
		return fmt.Errorf("%w: no application message in progress", ErrState)
	}
	t.out.ended = true
	// A processor that got DWSS and then DWSR must send DSS before ending
	// its original flow prematurely (RFC 4037 §8.3).
	needDSS := !t.server && res.Partial() && t.dwss && !t.dss
	if needDSS {
		t.dss = true
	}
	t.mu.Unlock()
	t.touch()
	if needDSS {
		if err := t.c.send(&Message{Name: MsgDSS, Anon: []Value{t.xidAtom()}}, false); err != nil {
			return err
		}
	}
	return t.c.send(withResult(&Message{Name: MsgAME, Anon: []Value{t.xidAtom()}}, res), true)
}

// endTx sends TE with res unless the transaction already ended. It is
// idempotent.
func (t *txCore) endTx(res Result) error {
	t.sendMu.Lock()
	defer t.sendMu.Unlock()
	t.mu.Lock()
	if t.end != nil {
		t.mu.Unlock()
		return nil
	}
	if res.Failed() {
		t.finishLocked(&TxError{Xid: t.xid, Result: res})
	} else {
		t.finishLocked(io.EOF)
	}
	t.mu.Unlock()
	return t.c.send(withResult(&Message{Name: MsgTE, Anon: []Value{t.xidAtom()}}, res), false)
}

// sendCtl queues a control message that must not wait for output space.
func (t *txCore) sendCtl(m *Message) {
	_ = t.c.send(m, false) // a failed connection is reported through Recv
}

// withResult appends res to m's anonymous parameters unless it is zero.
func withResult(m *Message, res Result) *Message {
	if res.Code != 0 {
		m.Anon = append(m.Anon, res.Value())
	}
	return m
}

// ---- ending ----

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

// ---- receiving ----

// recv returns the next queued message for the transaction.
func (t *txCore) recv(ctx context.Context) (*Message, error) {
	for {
		t.mu.Lock()
		if len(t.queue) > 0 {
			m := t.queue[0]
			t.queue[0] = nil
			t.queue = t.queue[1:]
			t.queued -= len(m.Payload)
			if t.pausing && t.queued < queueSoftLimit/2 && t.end == nil {
				t.pausing = false
				t.sendCtl(&Message{Name: MsgDWM, Anon: []Value{t.xidAtom()}})
			}
			t.mu.Unlock()
			return m, nil
		}
		if t.end != nil {
			err := t.end
			t.mu.Unlock()
			return nil, err
		}
		t.mu.Unlock()
		select {
		case <-t.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.c.done:
			t.abort(t.c.connErr())
		}
	}
}

// Unread payload octets queued for one transaction: above the soft limit
// the peer is asked to pause (DWP) until the application catches up (DWM);
// above the hard limit the peer is ignoring the pause and the transaction
// ends with TE 400.
const (
	queueSoftLimit = 4 << 20
	queueHardLimit = 64 << 20
)

func (t *txCore) deliverLocked(m *Message) {
	t.queue = append(t.queue, m)
	t.queued += len(m.Payload)
	t.wakeLocked()
	switch {
	case t.queued > queueHardLimit:
		t.failLocked("too much unread data: DWP not honoured")
	case t.queued > queueSoftLimit && !t.pausing && t.in.started && !t.in.ended:
		t.pausing = true
		t.sendCtl(&Message{Name: MsgDWP, Anon: []Value{t.xidAtom(), Num(t.in.offset)}})
	}
}

// handle processes a message from the peer carrying this transaction's
// xid. Invalid messages terminate the transaction.
func (t *txCore) handle(m *Message) {
	t.touch()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pqSent = false
	if t.end != nil {
		return // late message for an ended transaction: dropped
	}
	if name := m.DuplicateParam(); name != "" {
		t.failLocked(fmt.Sprintf("duplicate parameter %s in %s", name, m.Name))
		return
	}
	switch m.Name {
	case MsgAMS:
		if t.in.started {
			t.failLocked("second AMS")
			return
		}
		t.in.started = true
		t.deliverLocked(m)
	case MsgDUM:
		t.handleDUM(m)
	case MsgDUY:
		t.handleDUY(m)
	case MsgAME:
		t.handleAME(m)
	case MsgTE:
		res, err := resultOf(m, 1)
		if err != nil {
			res = Failure("bad result")
		}
		if res.Failed() {
			t.finishLocked(&TxError{Xid: t.xid, Result: res, Remote: true})
			return
		}
		t.deliverLocked(m)
		t.finishLocked(io.EOF)
	case MsgDWP:
		off, err := m.AnonUint(1)
		if err != nil {
			t.failLocked("DWP: " + err.Error())
			return
		}
		t.out.pauseAt, t.out.dpmSent = off, false
		if t.out.active() && !t.out.inflight && t.out.stopped() {
			t.out.dpmSent = true
			t.sendCtl(&Message{Name: MsgDPM, Anon: []Value{t.xidAtom()}})
		}
	case MsgDWM:
		if t.out.pauseAt >= 0 {
			t.out.pauseAt, t.out.dpmSent = -1, false
			close(t.out.resume)
			t.out.resume = make(chan struct{})
		}
	case MsgDPM:
		// The peer paused its data; we never rely on it.
	default:
		if t.server {
			t.handleServerOnly(m)
		} else {
			t.handleProcessorOnly(m)
		}
	}
}

func (t *txCore) handleDUM(m *Message) {
	if !t.in.started || t.in.ended {
		t.failLocked("DUM outside an application message")
		return
	}
	if !m.HasPayload {
		t.failLocked("DUM without payload")
		return
	}
	off, err := m.AnonUint(1)
	if err != nil {
		t.failLocked("DUM: " + err.Error())
		return
	}
	if off != t.in.offset {
		t.failLocked(fmt.Sprintf("DUM offset %d, expected %d", off, t.in.offset))
		return
	}
	if t.server {
		if p, ok := m.Param(ParamKept); ok {
			koff, ksize, err := keptParam(p)
			if err != nil {
				t.failLocked("Kept: " + err.Error())
				return
			}
			t.pres.keep(koff, ksize)
		}
	}
	t.in.offset += int64(len(m.Payload))
	t.deliverLocked(m)
}

func (t *txCore) handleAME(m *Message) {
	if !t.in.started || t.in.ended {
		t.failLocked("AME outside an application message")
		return
	}
	res, err := resultOf(m, 1)
	if err != nil {
		t.failLocked("AME: " + err.Error())
		return
	}
	if !t.server && res.Partial() && !t.dss {
		// Premature end of the adapted flow without our DSS: act as if no
		// DWSS had been received (RFC 4037 §11.13).
		t.failLocked("AME 206 without DSS")
		return
	}
	t.in.ended = true
	t.deliverLocked(m)
}

// handleDUY checks a server's DUY against the kept data (processor side).
func (t *txCore) handleDUY(m *Message) {
	if t.server {
		return // DUY is server-only; ignore it from a processor
	}
	if !t.in.started || t.in.ended {
		t.failLocked("DUY outside an application message")
		return
	}
	off, err1 := m.AnonUint(1)
	size, err2 := m.AnonUint(2)
	if err1 != nil || err2 != nil {
		t.failLocked("DUY: bad offset or size")
		return
	}
	if !t.pres.covers(off, size) {
		t.failLocked(fmt.Sprintf("DUY of octets %d+%d that are not kept", off, size))
		return
	}
	t.in.offset += size
	t.deliverLocked(m)
}

func (t *txCore) handleProcessorOnly(m *Message) {
	switch m.Name {
	case MsgDPI:
		off, err1 := m.AnonUint(1)
		size, err2 := m.AnonUint(2)
		if err1 != nil || err2 != nil {
			t.failLocked("DPI: bad offset or size")
			return
		}
		if !t.pres.shrink(off, size) {
			t.failLocked("DPI grows the reusable area")
			return
		}
		t.deliverLocked(m)
	case MsgDWSS:
		t.dwss = true
		t.deliverLocked(m)
	case MsgDWSR:
		if _, err := m.AnonUint(1); err != nil {
			t.failLocked("DWSR: " + err.Error())
			return
		}
		t.deliverLocked(m)
	}
}

func (t *txCore) handleServerOnly(m *Message) {
	switch m.Name {
	case MsgDSS:
		t.dss = true
		if t.out.active() {
			// A solicited (or unsolicited, treated as solicited) DSS: end
			// the adapted flow now with AME 206 (RFC 4037 §11.14).
			t.out.ended = true
			t.sendCtl(&Message{Name: MsgAME, Anon: []Value{t.xidAtom(), Result{Code: CodePartial}.Value()}})
		}
		t.deliverLocked(m)
	}
}

// progress returns the PA parameters for this transaction (RFC 4037
// §11.21): Org-Data while the original dataflow is active.
func (t *txCore) progress() (orgData int64, active bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.server {
		return t.in.offset, t.in.started && !t.in.ended
	}
	return t.out.offset, t.out.active()
}
