package ocp

import (
	"context"
	"fmt"
	"io"
)

// The sending side of a transaction: the owner's AMS, DUM, DUY, AME and TE,
// with pausing (DWP/DPM/DWM) and the state checks that keep our own output
// valid.

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
	return t.post(&Message{Name: MsgAMS, Anon: []Value{t.xidAtom()}, Named: named}, true)
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
		// What a cork holds goes before the DPM and the wait.
		t.c.flushStage(&t.stage)
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

	err := t.post(m, true)
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
		if err := t.post(&Message{Name: MsgDSS, Anon: []Value{t.xidAtom()}}, false); err != nil {
			return err
		}
	}
	return t.post(withResult(&Message{Name: MsgAME, Anon: []Value{t.xidAtom()}}, res), true)
}

// endTx sends TE with res unless the transaction already ended. It is
// idempotent. The transaction counts as ended at once (a sender waiting on
// a paused flow returns); the TE follows the owner's messages already
// being sent, unless ctx ends first, in which case it is queued at once.
func (t *txCore) endTx(ctx context.Context, res Result) error { return t.endTxWith(ctx, res, nil) }

// endTxWith is endTx with named parameters on the TE (a profile's).
func (t *txCore) endTxWith(ctx context.Context, res Result, named []Param) error {
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
	te := withResult(&Message{Name: MsgTE, Anon: []Value{t.xidAtom()}, Named: named}, res)
	if err := t.sendMu.lockCtx(ctx); err != nil {
		t.c.flushStage(&t.stage)
		_ = t.c.send(te, false)
		return err
	}
	defer t.sendMu.Unlock()
	return t.post(te, false)
}

// post sends one of the owner's messages, held back while corked.
func (t *txCore) post(m *Message, wait bool) error {
	return t.c.sendStaged(&t.stage, m, wait)
}

// pause sends DWP: the peer pauses its data from yourOffset on.
func (t *txCore) pause(yourOffset int64) error {
	return t.post(&Message{Name: MsgDWP, Anon: []Value{t.xidAtom(), Num(yourOffset)}}, false)
}

// resume sends DWM, with an optional suggested minimum chunk size (0 =
// any).
func (t *txCore) resume(sizeRequest int64) error {
	m := &Message{Name: MsgDWM, Anon: []Value{t.xidAtom()}}
	if sizeRequest > 0 {
		m.Named = []Param{NewParam(ParamSizeRequest, Num(sizeRequest))}
	}
	return t.post(m, false)
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
