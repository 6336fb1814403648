package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// This file holds the exchange's receiver: the server's messages applied
// to the exchange's state as they arrive.

// receive reads the server's messages for this transaction until it ends.
// It runs in its own goroutine for the life of the exchange (close waits
// for it). A failure it finds ends the transaction with TE 400 at once.
func (x *exchange) receive(ctx context.Context) {
	defer close(x.recvDone)
	defer x.sendEnd()
	for {
		m, err := x.tx.Recv(ctx)
		if err != nil {
			x.mu.Lock()
			var ce *ocp.ConnError
			if errors.Is(err, io.EOF) && !errors.As(err, &ce) {
				// The server's TE 200 (or ours): the transaction is over.
				x.end, x.endPending = true, false
				if !x.ame && x.fail == nil {
					x.fail = protocolError("server ended the transaction before its AME")
				}
				x.signal()
			} else if x.fail == nil {
				x.setFail(classify(err))
			}
			x.mu.Unlock()
			return
		}
		x.mu.Lock()
		x.serverSpoke = true
		failed := false
		if x.fail == nil {
			if f := x.handle(m); f != nil {
				x.setFail(f)
				failed = true
			} else {
				x.signal()
			}
		}
		x.mu.Unlock()
		if failed {
			x.sendEnd()
		}
	}
}

// classify maps an ocp error to a failure class.
func classify(err error) *AdaptationError {
	if f := serviceFailure(err); f != nil {
		return f
	}
	var te *ocp.TxError
	var ce *ocp.ConnError
	var se *ocp.SyntaxError
	switch {
	case errors.As(err, &te):
		if te.Remote {
			return failure(FailServer, err)
		}
		return failure(FailProtocol, err)
	case errors.As(err, &se):
		return failure(FailProtocol, err)
	case errors.As(err, &ce):
		if ce.Remote {
			return failure(FailServer, err)
		}
		return failure(FailProtocol, err)
	}
	return failure(FailServer, err)
}

// handle applies one server message to the state; call with mu held.
func (x *exchange) handle(m *ocp.Message) *AdaptationError {
	switch m.Name {
	case ocp.MsgAMS:
		a, err := ocpsmtp.ParseAMS(m)
		if err != nil {
			return protocolError("%v", err)
		}
		if a.HasServices {
			return x.takeServices(a.Services)
		}
		return nil
	case ocp.MsgAME:
		a, err := ocpsmtp.ParseAME(m)
		if err != nil {
			return protocolError("%v", err)
		}
		switch res := a.Result; res.Code {
		case ocp.CodeOK:
		case ocp.CodePartial:
			// The engine let it through: we sent DSS (RFC 4037 §11.14).
			// The answers given so far stand, unanswered parts are
			// unchanged, and each answered data part goes on with the
			// original after what it reused (docs/profile.md 6).
			x.partial = true
			if x.pendingMail {
				x.mail, x.pendingMail = partAnswer{done: true, keep: true}, false
			}
			if x.pendingRcpt >= 0 {
				x.rcpts[x.pendingRcpt], x.pendingRcpt = partAnswer{done: true, keep: true}, -1
			}
		default:
			return failure(FailServer, fmt.Errorf("server ended its adapted message with %d %s", res.Code, res.Reason))
		}
		x.ame = true
		return nil
	case ocp.MsgDWSS:
		// The server wants to stop sending adapted data. Every data part
		// is kept when one is adaptive, so the message can be rebuilt from
		// its answers and the original at once: allow it (DSS).
		if err := x.tx.SendDSS(); err != nil {
			return failure(FailServer, err)
		}
		return nil
	case ocp.MsgDWSR:
		// The server needs no original data beyond org-size: the session
		// ends the original flow with AME 206 once that much is sent.
		d, err := ocpsmtp.ParseDWSR(m)
		if err != nil {
			return protocolError("%v", err)
		}
		if x.dwsr < 0 || d.OrgSize < x.dwsr {
			x.dwsr = d.OrgSize
		}
		return nil
	case ocp.MsgDUY:
		d, err := ocpsmtp.ParseDUY(m)
		if err != nil {
			return protocolError("%v", err)
		}
		if d.AddHeader != "" {
			if f := x.addHeader(d.AddHeader, d.AddHeaderTop); f != nil {
				return f
			}
		}
		x.takeAdvice(d.Advice)
		return x.handleDUY(d.Offset, d.Size)
	case ocp.MsgDUM:
		d, err := ocpsmtp.ParseData(m)
		if err != nil {
			return protocolError("DUM: %v", err)
		}
		return x.handleDUM(d, m.Payload)
	}
	// DPI and unknown messages: nothing for the profile layer.
	return nil
}

// takeServices records the services the server's AMS names as acting on
// the transaction (docs/profile.md 12): OPES-Via names exactly those. A
// service outside the transaction's service group breaks the profile.
func (x *exchange) takeServices(ss []ocp.Service) *AdaptationError {
	acted := []string{}
	for _, sv := range ss {
		if !slices.Contains(x.group, sv.URI) {
			return protocolError("AMS names service %s, which is not in the service group", sv.URI)
		}
		acted = append(acted, sv.URI)
	}
	x.acted = acted
	return nil
}

// addHeader takes one Add-Header value of a DUM or DUY; top is
// Add-Header-At: top (header_top.go).
func (x *exchange) addHeader(raw string, top bool) *AdaptationError {
	name, value, err := ocpsmtp.ParseHeaderField(raw)
	if err != nil {
		return protocolError("Add-Header: %v", err)
	}
	if ocpsmtp.IsOPESHeader(name) {
		return protocolError("Add-Header of %s, which belongs to the processor", name)
	}
	if f := x.use.addHeader(name, value); f != nil {
		return f
	}
	if top {
		x.topHeaders = append(x.topHeaders, headerField{name: name, value: value})
		return nil
	}
	x.addHeaders = append(x.addHeaders, headerField{name: name, value: value})
	return nil
}

// takeAdvice records an Advice value.
func (x *exchange) takeAdvice(a ocpsmtp.Advice) {
	switch {
	case a == ocpsmtp.AdviceAccept:
		x.stopAsked = true
	case a.Known():
		x.advice = a
	case a != "":
		x.log.Info("ignoring unknown Advice", "advice", string(a))
	}
}

// handleDUY resolves a reference to kept original data.
func (x *exchange) handleDUY(off, size int64) *AdaptationError {
	// A DUY answers the pending MAIL/RCPT when it names exactly that part.
	if p, ok := x.partAt(off, size); ok && !p.part.Data() {
		if a, _ := x.prof.Has(p.part); !a {
			return protocolError("DUY for informative part %s", p.part)
		}
		return x.answerPart(p.part, nil, true)
	}
	d := x.instanceAt(off, size)
	if d == nil {
		return protocolError("DUY %d+%d does not match a kept part", off, size)
	}
	if a, _ := x.prof.Has(d.part); !a {
		return protocolError("DUY for informative part %s", d.part)
	}
	if !d.part.Splittable() && (off != d.off || size != d.size) {
		return protocolError("DUY of part of a %s instance", d.part)
	}
	if !x.keepData {
		return protocolError("DUY references data that was not kept")
	}
	if f := x.use.adaptedData(d.part, size, true); f != nil {
		return f
	}
	d.answered = true
	d.segs = append(d.segs, segment{fromOriginal: true, off: off - x.dataStart, size: size})
	return nil
}

// partAt finds the sent part covering exactly [off, off+size).
func (x *exchange) partAt(off, size int64) (sentPart, bool) {
	for _, p := range x.parts {
		if p.off == off && p.size == size {
			return p, true
		}
	}
	return sentPart{}, false
}

// handleDUM applies one adapted data message.
func (x *exchange) handleDUM(d ocpsmtp.Data, payload []byte) *AdaptationError {
	adaptive, informative := x.prof.Has(d.Part)
	if !adaptive && !informative {
		return protocolError("DUM for part %s that was not negotiated", d.Part)
	}
	if d.AddHeader != "" {
		if f := x.addHeader(d.AddHeader, d.AddHeaderTop); f != nil {
			return f
		}
	}
	x.takeAdvice(d.Advice)
	headerOnly := len(payload) == 0 && d.SMTPError == "" && (d.AddHeader != "" || d.Advice != "")
	if headerOnly {
		return nil
	}
	if !adaptive {
		return protocolError("adapted DUM for informative part %s", d.Part)
	}
	var reply *Reply
	if d.SMTPError != "" {
		r, err := ocpsmtp.ParseReply(d.SMTPError)
		if err != nil {
			return protocolError("SMTP-Error: %v", err)
		}
		reply = replyFrom(r)
	}
	switch d.Part {
	case ocpsmtp.PartMAIL, ocpsmtp.PartRCPT:
		if reply != nil {
			return x.answerPartReply(d.Part, reply)
		}
		return x.answerPart(d.Part, payload, false)
	}
	if !d.Part.Data() {
		return protocolError("adapted part %s is not supported by this processor", d.Part)
	}
	inst := x.instance(d.Part, d.Index)
	if inst == nil {
		return protocolError("answer for %s %q that was not sent", d.Part, d.Index)
	}
	if reply != nil {
		x.dataReply = reply
		return nil
	}
	inst.answered = true
	if len(payload) == 0 {
		return nil
	}
	if f := x.use.adaptedData(d.Part, int64(len(payload)), false); f != nil {
		return f
	}
	if x.adapted == nil {
		x.adapted = newPooledSpool(x.spoolDir, x.spoolMem, x.spoolBufs)
	}
	off := x.adapted.Size()
	if _, err := x.adapted.Write(payload); err != nil {
		return failure(FailLocal, err)
	}
	inst.segs = append(inst.segs, segment{off: off, size: int64(len(payload))})
	return nil
}

// answerPart records the answer to the pending MAIL or RCPT: unchanged
// (keep), or the new value (an empty one deletes a recipient); a RCPT answer
// with no RCPT pending adds a recipient.
func (x *exchange) answerPart(part ocpsmtp.Part, payload []byte, keep bool) *AdaptationError {
	a := partAnswer{done: true, keep: keep}
	if !keep {
		a.value = string(payload)
		a.deleted = len(payload) == 0
		if !a.deleted {
			if err := checkPathAnswer(a.value); err != nil {
				return protocolError("adapted %s: %v", part, err)
			}
		}
	}
	switch {
	case part == ocpsmtp.PartMAIL && x.pendingMail:
		if a.deleted {
			return protocolError("MAIL answered with an empty sender")
		}
		x.mail, x.pendingMail = a, false
	case part == ocpsmtp.PartRCPT && x.pendingRcpt >= 0:
		x.rcpts[x.pendingRcpt], x.pendingRcpt = a, -1
	case part == ocpsmtp.PartRCPT && !keep && !a.deleted:
		if f := x.use.addRecipient(); f != nil {
			return f
		}
		x.added = append(x.added, a.value)
	default:
		return protocolError("unexpected answer for part %s", part)
	}
	return nil
}

// answerPartReply records an SMTP-Error answer to the pending MAIL or RCPT.
func (x *exchange) answerPartReply(part ocpsmtp.Part, r *Reply) *AdaptationError {
	a := partAnswer{done: true, reply: r}
	switch {
	case part == ocpsmtp.PartMAIL && x.pendingMail:
		x.mail, x.pendingMail = a, false
	case part == ocpsmtp.PartRCPT && x.pendingRcpt >= 0:
		x.rcpts[x.pendingRcpt], x.pendingRcpt = a, -1
	default:
		return protocolError("SMTP-Error for part %s with no such part pending", part)
	}
	return nil
}

// replyFrom converts a validated SMTP reply into a bridge reply.
func replyFrom(r ocpsmtp.Reply) *Reply {
	kind := Reject
	if r.Code < 500 {
		kind = TempFail
	}
	return &Reply{Kind: kind, SMTP: r}
}
