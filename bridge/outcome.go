package bridge

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// outcome is everything decided for one message, computed in full before
// any of it reaches the MTA, so the end-of-message actions are all or
// nothing.
type outcome struct {
	reply      Reply
	from       string // new envelope sender, "" = unchanged
	fromArgs   string
	delRcpts   []string
	addRcpts   []string
	trace      []headerField
	traceIndex int
	addHeaders []headerField
	topHeaders []headerField
	headerOps  []headerOp
	body       io.Reader // replacement body, nil = unchanged
	quarantine string
	services   []string
	status     string
	class      string // failure class, if any
}

// finish ends the OCP exchange of the current message and computes the
// outcome.
func (s *session) finish(ctx context.Context, mac Macros, mod Modifier) *outcome {
	mt := s.mt
	p := s.policy()
	out := &outcome{reply: Reply{Kind: Accept}, status: mt.status}
	if mt.route != nil {
		for _, svc := range mt.route.Chain.Group {
			out.services = append(out.services, svc.URI)
		}
	}
	if mt.x == nil && mt.route != nil && mt.fail == nil {
		// No end of header came (the MTA sent none): the transaction
		// of a route that decides nothing at RCPT starts here.
		if rep := s.startAtData(ctx, mac); rep.Kind != Continue && mt.fail == nil {
			out.reply = rep
			return out
		}
	}
	x := mt.x
	if x != nil && mt.fail == nil {
		s.sendHeader(ctx, mac)
		s.sendBodyEnd(ctx, mac)
	}
	if x != nil && mt.fail == nil {
		cctx, cancel := stageContext(ctx, p.Timeouts.EndOfMessage)
		err := s.awaitAnswer(cctx, mod)
		cancel()
		if err != nil {
			s.onFailure(err, false)
		} else {
			s.b.metrics.calloutDone(routeName(mt.route), time.Since(mt.xstart))
		}
	}
	if mt.fail != nil {
		out.class = mt.fail.Class.String()
		if d := s.failureDecision(stageMessage); !d.deliver {
			out.reply = d.reply
			return out
		}
		out.status, out.quarantine = mt.status, mt.quarantine
		quarantineHeader(out, p.QuarantineHeader, mt.fail)
	} else if x != nil {
		if err := s.collect(out, x); err != nil {
			s.onFailure(err, false)
			return s.finish(ctx, mac, mod)
		}
	}
	if x != nil {
		if acted := x.actedServices(); acted != nil {
			// The server named the services that acted (its AMS
			// Services): OPES-Via names exactly those.
			out.services = acted
		}
	}
	if mt.route != nil || mt.status == traceBypassed {
		out.trace = traceFields(p.SystemURI, out.services, out.status, p.TraceVia, p.PrivacyURI)
		// +1: the MTA counts its own Received line, which it does not
		// show the milter (docs/profile.md 12).
		out.traceIndex = traceInsertIndex(mt.headers) + 1
	}
	kept := len(out.addRcpts)
	for _, r := range mt.rcpts {
		switch {
		case r.refused:
		case r.deleted:
			out.delRcpts = append(out.delRcpts, r.addr)
		default:
			kept++
		}
	}
	if kept == 0 && len(out.delRcpts) > 0 && out.reply.Kind == Accept {
		// Every recipient was deleted: the message would go nowhere.
		out.reply = Reply{Kind: Discard}
	}
	return out
}

// awaitAnswer sends the end of the original message and waits for the
// server's, telling the MTA that work goes on every progress interval.
func (s *session) awaitAnswer(ctx context.Context, mod Modifier) *AdaptationError {
	x := s.mt.x
	// The queued data and the AME leave in one write.
	x.cork()
	if rep := s.flushData(ctx); rep.Kind != Continue {
		x.uncork()
		return s.mt.fail
	}
	err := x.endOriginal(okResult)
	x.uncork()
	if err != nil {
		return failure(FailServer, err)
	}
	interval := s.policy().Timeouts.ProgressInterval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	for {
		tctx, cancel := context.WithTimeout(ctx, interval)
		f, timedOut := x.waitUntil(tctx, x.serverEnded)
		cancel()
		if f != nil {
			return f
		}
		if !timedOut {
			break
		}
		if ctx.Err() != nil {
			return x.wait(ctx, x.serverEnded)
		}
		if err := mod.Progress(); err != nil {
			return failure(FailLocal, err)
		}
	}
	// The TE follows once the answer is validated and applied (endTx);
	// an answer found invalid ends the transaction with TE 400 instead.
	return nil
}

// collect turns the server's answers into the outcome.
func (s *session) collect(out *outcome, x *exchange) *AdaptationError {
	mt := s.mt
	ans := x.answers()
	if ans.dataReply != nil {
		out.reply = *ans.dataReply
		return nil
	}
	if ans.mail.done && !ans.mail.keep && ans.mail.reply == nil {
		out.from, out.fromArgs = s.changeFrom(ans.mail.value)
	}
	for i := range mt.rcpts {
		r := &mt.rcpts[i]
		if r.index < 0 || r.refused || r.index >= len(ans.rcpts) {
			continue
		}
		a := ans.rcpts[r.index]
		switch {
		case !a.done || a.keep:
		case a.reply != nil || a.deleted:
			r.deleted = true
		default:
			r.deleted = true
			addr, _, _ := strings.Cut(a.value, " ")
			out.addRcpts = append(out.addRcpts, addr)
		}
	}
	for _, a := range ans.added {
		addr, _, _ := strings.Cut(a, " ")
		out.addRcpts = append(out.addRcpts, addr)
	}
	out.addHeaders = append(out.addHeaders, ans.addHeaders...)
	out.topHeaders = append(out.topHeaders, ans.topHeaders...)
	switch ans.advice {
	case ocpsmtp.AdviceDiscard:
		out.reply = Reply{Kind: Discard}
	case ocpsmtp.AdviceQuarantine:
		out.quarantine = "quarantined by callout service"
	}
	return s.collectData(out, ans)
}

// changeFrom splits an adapted MAIL payload into the address and the
// ESMTP arguments the MTA accepts in a change-from: RET and ENVID for
// Postfix, none for Sendmail (docs/profile.md 11).
func (s *session) changeFrom(payload string) (string, string) {
	fields := strings.Fields(payload)
	if len(fields) == 0 {
		return "", ""
	}
	if !s.postfix {
		return fields[0], ""
	}
	var args []string
	for _, a := range fields[1:] {
		k, _, _ := strings.Cut(strings.ToUpper(a), "=")
		if k == "RET" || k == "ENVID" {
			args = append(args, a)
		}
	}
	return fields[0], strings.Join(args, " ")
}

// apply sends the outcome to the MTA: every modification, then the reply.
func (o *outcome) apply(s *session, mod Modifier) Reply {
	if o.reply.Kind != Accept && o.reply.Kind != Discard {
		return o.reply
	}
	if err := o.check(); err != nil {
		// Nothing was sent yet: the failure policy decides.
		f := protocolError("adapted message: %v", err)
		s.onFailure(f, false)
		o.class = f.Class.String()
		if d := s.failureDecision(stageMessage); !d.deliver {
			return d.reply
		}
		*o = outcome{reply: Reply{Kind: Accept}, services: o.services, class: o.class, status: traceUnadapted,
			trace:      traceFields(s.policy().SystemURI, o.services, traceUnadapted, s.policy().TraceVia, s.policy().PrivacyURI),
			traceIndex: o.traceIndex, quarantine: s.mt.quarantine}
	}
	if err := o.modify(mod); err != nil {
		// The MTA connection failed mid-way: the MTA discards what it
		// got with the message (Postfix answers 421/451).
		s.log.Error("applying the adaptation failed", "err", err)
		if s.mt.x != nil {
			s.mt.x.abort("the adapted message could not be applied")
		}
		o.class = FailLocal.String()
		s.b.metrics.failure(routeName(s.mt.route), FailLocal, mapping.TempFail)
		return Reply{Kind: TempFail, SMTP: ocpsmtp.Reply{Code: 451, Text: "4.3.0 Content adaptation could not be applied, try again later"}}
	}
	return o.reply
}

func (o *outcome) modify(mod Modifier) error {
	var errs []error
	try := func(err error) { errs = append(errs, err) }
	if o.from != "" {
		try(mod.ChangeFrom(o.from, o.fromArgs))
	}
	for _, r := range o.delRcpts {
		try(mod.DeleteRecipient(r))
	}
	for _, r := range o.addRcpts {
		try(mod.AddRecipient(r, ""))
	}
	for i := len(o.trace) - 1; i >= 0; i-- {
		try(mod.InsertHeader(o.traceIndex, o.trace[i].name, o.trace[i].value))
	}
	for i := len(o.headerOps) - 1; i >= 0; i-- {
		op := o.headerOps[i]
		if op.insert {
			continue
		}
		try(mod.ChangeHeader(op.index, op.name, op.value))
	}
	for _, op := range o.headerOps {
		if op.insert {
			try(mod.AddHeader(op.name, op.value))
		}
	}
	try(o.insertTop(mod))
	for _, h := range o.addHeaders {
		try(mod.AddHeader(h.name, " "+strings.TrimLeft(h.value, " \t")))
	}
	if o.body != nil {
		try(mod.ReplaceBody(o.body))
	}
	if o.quarantine != "" {
		try(mod.Quarantine(o.quarantine))
	}
	return errors.Join(errs...)
}

// logSummary writes the one line per message an admin greps for.
func (s *session) logSummary(mac Macros, o *outcome, rep Reply) {
	mt := s.mt
	verdict := map[ReplyKind]string{Accept: "accept", Discard: "discard", Reject: "reject", TempFail: "tempfail", Continue: "accept"}[rep.Kind]
	if o.quarantine != "" {
		verdict = "quarantine"
	}
	status := statusName(o.status)
	if o.class != "" && (rep.Kind == Reject || rep.Kind == TempFail) {
		status = "failed"
	}
	attrs := s.messageFields(mac.Get("i")) // qid, ocp_tx, message_id, route (logfields.go)
	if len(o.services) > 0 {
		attrs = append(attrs, "services", serviceNames(mt.route, o.services))
	}
	attrs = append(attrs, "verdict", verdict, "status", status)
	attrs = append(attrs, mt.recipientFields()...)
	attrs = append(attrs, "size", mt.bodyBytes, "duration", time.Since(mt.started).Round(time.Millisecond))
	if rep.SMTP.Code != 0 {
		attrs = append(attrs, "reply", rep.SMTP.Code)
	}
	if o.class != "" {
		attrs = append(attrs, "failure", o.class)
	}
	if o.quarantine != "" {
		attrs = append(attrs, "quarantine", o.quarantine)
	}
	s.log.Info("message", attrs...)
	s.b.metrics.message(routeName(mt.route), verdict, status)
}

func statusName(s string) string {
	if s == traceAdapted {
		return "adapted"
	}
	return s
}
