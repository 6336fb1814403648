package ocp

import (
	"fmt"
)

// readLoop decodes the server's messages and dispatches them until the
// connection ends.
func (cl *Client) readLoop() {
	defer cl.abortAll()
	for {
		m, err := cl.c.dec.Decode()
		if err != nil {
			cl.c.readErr(err)
			return
		}
		if end := cl.dispatch(m); end != nil {
			cl.c.dispatchEnd(end, m, "server")
			return
		}
	}
}

// abortAll fails every open transaction and a pending negotiation once the
// connection has ended.
func (cl *Client) abortAll() { abortTxs(cl.c, &cl.mu, cl.txs) }

// connFailure returns a *ConnError for an invalid message with connection
// scope: the connection is ended with CE 400.
func connFailure(format string, args ...any) *ConnError {
	return &ConnError{Result: Failure(fmt.Sprintf(format, args...))}
}

// dispatch handles one message from the server. A non-nil result ends the
// connection: a remote CE, or our CE 400 for invalid input. Lock order:
// a transaction's mu may take cl.mu, so cl.mu is never held while calling
// into a transaction.
func (cl *Client) dispatch(m *Message) *ConnError {
	cl.mu.Lock()
	first := !cl.gotCS
	cl.gotCS = true
	cl.mu.Unlock()
	if first {
		if m.Name != MsgCS {
			return connFailure("expected CS, got %s", m.Name)
		}
		return nil
	}
	switch m.Name {
	case MsgTE, MsgAMS, MsgAME, MsgDUM, MsgDUY, MsgDPI, MsgDWSS, MsgDWSR, MsgDWP, MsgDPM, MsgDWM:
		tx, err := cl.route(m)
		if err != nil || tx == nil {
			return err
		}
		tx.handle(m)
		tx.backpressure()
		return nil
	case MsgPQ:
		cl.answerPQ(m)
		return nil
	case MsgPA, MsgPR:
		if _, tx := cl.progressTx(m); tx != nil {
			tx.progressed()
		}
		return nil
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if !cl.ready && !phaseMessage(m.Name) {
		return connFailure("%s during the negotiation phase", m.Name)
	}
	switch m.Name {
	case MsgCE:
		res, err := resultOf(m, 0)
		if err != nil {
			res = Failure("bad result")
		}
		return &ConnError{Result: res, Remote: true}
	case MsgNR:
		return cl.handleNR(m)
	case MsgNO:
		return cl.handleNO(m)
	case MsgAQ:
		f, err := ParseFeature(anon(m, 0))
		if err != nil {
			return connFailure("AQ: %v", err)
		}
		_ = cl.c.send(&Message{Name: MsgAA, Anon: []Value{BoolAtom(cl.offered[f.URI])}}, false)
	case MsgSGC:
		id, err := m.AnonUint(0)
		if err != nil || id <= cl.peerSG {
			return connFailure("SGC with bad or reused sg-id")
		}
		cl.peerSG = id // server-created groups are accepted and unused
	}
	// Anything else (CS again, PA, PR, AA, SGD, unknown names) is ignored
	// (RFC 4037 §11, §11.1).
	return nil
}

// route finds the transaction a message is for. An xid this connection
// never created ends the connection; an ended one yields nil (the message
// is dropped).
func (cl *Client) route(m *Message) (*Tx, *ConnError) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if !cl.ready {
		return nil, connFailure("%s during the negotiation phase", m.Name)
	}
	xid, err := m.AnonUint(0)
	if err != nil {
		return nil, connFailure("%s: bad xid: %v", m.Name, err)
	}
	if xid > cl.lastXid || xid == 0 {
		return nil, connFailure("%s for unknown transaction %d", m.Name, xid)
	}
	return cl.txs[xid], nil
}

// anon returns the i-th anonymous parameter of m or nil.
func anon(m *Message, i int) Value {
	if i < len(m.Anon) {
		return m.Anon[i]
	}
	return nil
}

// offerPending parses the optional Offer-Pending parameter.
func offerPending(m *Message) (bool, error) {
	p, ok := m.Param(ParamOfferPending)
	if !ok {
		return false, nil
	}
	return Bool(p.Value())
}

// sgParam parses the optional SG parameter; 0 means absent.
func sgParam(m *Message) (int64, error) {
	p, ok := m.Param(ParamSG)
	if !ok {
		return 0, nil
	}
	id, err := Uint(p.Value())
	if err == nil && id == 0 {
		err = badValue("sg-id 0")
	}
	return id, err
}

// readNO reads a negotiation offer, which either role may receive (RFC
// 4037 §11.18): the offered features, the SG (0 when absent) and
// Offer-Pending.
func readNO(m *Message) (fs []Feature, sg int64, more bool, end *ConnError) {
	fs, err := ParseFeatures(anon(m, 0))
	if err != nil {
		return nil, 0, false, connFailure("NO: %v", err)
	}
	if sg, err = sgParam(m); err != nil {
		return nil, 0, false, connFailure("NO: %v", err)
	}
	if more, err = offerPending(m); err != nil {
		return nil, 0, false, connFailure("NO: Offer-Pending: %v", err)
	}
	return fs, sg, more, nil
}

// handleNR applies the server's answer to our pending offer (RFC 4037
// §11.19). Violations end the connection.
func (cl *Client) handleNR(m *Message) *ConnError {
	o := cl.offer
	if o == nil {
		return connFailure("NR without a pending offer")
	}
	sg, err := sgParam(m)
	if err != nil {
		return connFailure("NR: %v", err)
	}
	if sg != o.sg {
		return connFailure("NR: SG %d does not match the offer's SG %d", sg, o.sg)
	}
	more, err := offerPending(m)
	if err != nil {
		return connFailure("NR: Offer-Pending: %v", err)
	}
	var sel *Feature
	if len(m.Anon) > 0 {
		f, err := ParseFeature(m.Anon[0])
		if err != nil {
			return connFailure("NR: %v", err)
		}
		sel = &f
	}
	cl.offer = nil
	cl.more = more
	var res negResult
	switch {
	case sel == nil && len(o.features) > 0:
		res.err = &NegotiationError{SG: o.sg, Offer: o.features, Reason: "no feature selected"}
	case sel != nil && !offered(o.features, sel.URI):
		o.reply <- negResult{err: &NegotiationError{SG: o.sg, Offer: o.features, Selected: sel, Reason: "feature not offered"}}
		return connFailure("NR selected a feature that was not offered")
	case sel != nil:
		res.selected = sel
		if g := cl.groups[o.sg]; g != nil {
			g.Profile = sel
		}
	default:
		res.selected = &Feature{}
	}
	o.reply <- res
	cl.phaseCheckLocked()
	return nil
}

func offered(fs []Feature, uri string) bool {
	for _, f := range fs {
		if f.URI == uri {
			return true
		}
	}
	return false
}

// handleNO answers a server's offer. The processor accepts no feature the
// server proposes: it answers NR without a feature and lists the offered
// features it knows (ClientConfig.Known, or offered by itself) under
// Rejects, the others under Unknowns. While our own offer is pending the server's offer is
// disregarded (RFC 4037 §11.18).
func (cl *Client) handleNO(m *Message) *ConnError {
	fs, sg, more, end := readNO(m)
	if end != nil {
		return end
	}
	if cl.offer != nil {
		return nil
	}
	nr := &Message{Name: MsgNR}
	if sg != 0 {
		nr.Named = append(nr.Named, NewParam(ParamSG, Num(sg)))
	}
	var rejects, unknowns []Feature
	for _, f := range fs {
		if cl.knows(f.URI) {
			rejects = append(rejects, f)
		} else {
			unknowns = append(unknowns, f)
		}
	}
	if len(rejects) > 0 {
		nr.Named = append(nr.Named, NewParam(ParamRejects, FeaturesValue(rejects)))
	}
	if len(unknowns) > 0 {
		nr.Named = append(nr.Named, NewParam(ParamUnknowns, FeaturesValue(unknowns)))
	}
	cl.more = more
	if more {
		cl.c.setPhase(true)
	}
	_ = cl.c.send(nr, false)
	cl.phaseCheckLocked()
	return nil
}

// phaseCheckLocked ends the negotiation phase when no offer is pending and
// the peer does not announce more (RFC 4037 §6.1).
func (cl *Client) phaseCheckLocked() {
	if cl.offer != nil || cl.more {
		return
	}
	cl.c.setPhase(false)
	if !cl.ready {
		cl.ready = true
		close(cl.readyCh)
	}
}

// answerPQ answers a progress query with PA (RFC 4037 §11.20), even for an
// unknown xid.
func (cl *Client) answerPQ(m *Message) {
	pa := &Message{Name: MsgPA}
	if xid, tx := cl.progressTx(m); tx != nil {
		pa.Anon = []Value{Num(xid)}
		if n, active := tx.progress(); active {
			pa.Named = []Param{NewParam(ParamOrgData, Num(n))}
		}
	}
	_ = cl.c.send(pa, false)
}

// progressTx returns the transaction a PQ, PA or PR names, or nil: for
// these an unknown or malformed xid is no error (RFC 4037 §11.20-11.23).
func (cl *Client) progressTx(m *Message) (int64, *Tx) {
	xid, err := m.AnonUint(0)
	if err != nil {
		return 0, nil
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return xid, cl.txs[xid]
}

// knows reports whether the processor knows the feature uri (it refuses
// it rather than not understanding it); call with cl.mu held.
func (cl *Client) knows(uri string) bool {
	if cl.offered[uri] {
		return true
	}
	for _, k := range cl.cfg.Known {
		if k == uri {
			return true
		}
	}
	return false
}
