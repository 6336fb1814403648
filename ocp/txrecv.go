package ocp

import (
	"context"
	"fmt"
	"io"
	"time"
)

// The receiving side of a transaction: the checks applied to the peer's
// messages (RFC 4037 §5, §7, §8, §11.5-11.17) and the queue Recv reads.

// recv returns the next queued message for the transaction.
func (t *txCore) recv(ctx context.Context) (*Message, error) {
	for {
		t.mu.Lock()
		if len(t.queue) > 0 {
			m := t.queue[0]
			t.queue[0] = nil
			t.queue = t.queue[1:]
			t.queued -= len(m.Payload)
			if t.drained != nil && t.queued <= t.c.queueSoft {
				close(t.drained)
				t.drained = nil
			}
			if t.pausing && t.queued < t.c.queueSoft/2 && t.end == nil {
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

// Unread payload octets queued for one transaction (the defaults of
// conn.queueSoft and conn.queueHard): above the soft limit
// the peer is asked to pause (DWP) until the application catches up (DWM).
// The peer cannot pause at once: what it sent before it read the DWP
// (socket buffers, and as long as its scheduler takes to look at its
// socket) still arrives. Above the hard limit the connection stops reading
// (backpressure) until the application has read the queue down to the
// soft limit, so that TCP holds the rest back.
const (
	queueSoftLimit = 4 << 20
	queueHardLimit = 16 << 20
)

func (t *txCore) deliverLocked(m *Message) {
	t.queue = append(t.queue, m)
	t.queued += len(m.Payload)
	t.wakeLocked()
	if t.queued > t.c.queueSoft && !t.pausing && t.in.started && !t.in.ended {
		t.pausing = true
		t.sendCtl(&Message{Name: MsgDWP, Anon: []Value{t.xidAtom(), Num(t.in.offset)}})
	}
}

// backpressure is called by the read loop after each message it handed to
// the transaction. While more than queueHardLimit octets wait unread, it
// holds the read loop (and so the connection's other transactions) until
// the application has read down to queueSoftLimit: a bounded queue
// without ending a transaction whose peer only paused late (with one CPU
// for Go code the read loop can outrun both the application and the
// writer of the DWP). An application that has not read down to the soft
// limit within the connection's drain wait (30 s) ends its transaction
// with TE 400, which frees the connection.
func (t *txCore) backpressure() {
	t.mu.Lock()
	if t.queued <= t.c.queueHard || t.end != nil {
		t.mu.Unlock()
		return
	}
	drained := make(chan struct{})
	t.drained = drained
	t.mu.Unlock()
	timer := time.NewTimer(t.c.drainWait)
	defer timer.Stop()
	select {
	case <-drained:
	case <-t.done:
	case <-t.c.done:
	case <-timer.C:
		t.mu.Lock()
		if t.drained == drained { // recv did not drain it meanwhile
			t.drained = nil
			t.failLocked("too much unread data: the peer ignored DWP and the data was not read")
		}
		t.mu.Unlock()
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
			t.finishLocked(&TxError{Xid: t.xid, Result: res, Remote: true, Params: m.Named})
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
	off, size, ok := offsetSize(m)
	if !ok {
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

// offsetSize reads the org-offset and org-size that follow the xid of a
// DUY or a DPI (RFC 4037 §11.10, §11.11).
func offsetSize(m *Message) (off, size int64, ok bool) {
	off, err1 := m.AnonUint(1)
	size, err2 := m.AnonUint(2)
	return off, size, err1 == nil && err2 == nil
}

func (t *txCore) handleProcessorOnly(m *Message) {
	switch m.Name {
	case MsgDPI:
		off, size, ok := offsetSize(m)
		if !ok {
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
