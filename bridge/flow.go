package bridge

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// allowReply lists the server parameters the processor honours on an
// adaptive part.
var allowAdaptive = []string{ocpsmtp.ParamSMTPError, ocpsmtp.ParamAddHeader, ocpsmtp.ParamAdvice}

// allowInformative lists what the processor honours on an informative part.
var allowInformative = []string{ocpsmtp.ParamAddHeader, ocpsmtp.ParamAdvice}

// allowFor returns the Allow list for a part.
func (x *exchange) allowFor(part ocpsmtp.Part) []string {
	if x.adaptive(part) {
		return allowAdaptive
	}
	return allowInformative
}

// startExchange opens the OCP transaction for the current mail transaction
// and sends the parts that precede the first RCPT. ok is false when it
// failed; the reply is then the failure policy's answer.
func (s *session) startExchange(ctx context.Context, mac Macros, firstRcpt string) (Reply, bool) {
	mt := s.mt
	p := s.policy()
	if max := p.MaxTransactions; max > 0 && s.b.inflight.Load() >= int64(max) {
		mt.route = nil
		s.b.metrics.refused("transactions")
		return Reply{Kind: TempFail, SMTP: ocpsmtp.Reply{Code: 451, Text: "4.3.2 Too many messages in adaptation, try again later"}}, false
	}
	// The whole start is answered within the RCPT deadline; reaching a
	// callout server (dial, negotiation, TS) within the connect deadline.
	cctx, cancel := stageContext(ctx, p.Timeouts.Rcpt)
	defer cancel()
	start := func() (*ocp.Tx, ocpsmtp.Profile, *upConn, error) {
		sctx, cancel := stageContext(cctx, p.Timeouts.Connect)
		defer cancel()
		return s.st.pool.start(sctx, mt.route, p.Routes, &mt.tried)
	}
	tx, prof, uc, err := start()
	if errors.Is(err, errRetired) {
		// A reload replaced the pool between MAIL and this RCPT: the
		// transaction starts on the new configuration.
		s.st = s.b.current()
		p = s.policy()
		if mt.route = p.Select(s.facts(firstRcpt)); mt.route == nil {
			return Reply{Kind: Continue}, false
		}
		tx, prof, uc, err = start()
	}
	if err != nil {
		return s.onFailure(failure(FailConnect, err), true), false
	}
	s.b.inflight.Add(1)
	s.b.metrics.addTransactions(1)
	mt.uc = uc
	mt.xstart = time.Now()
	mt.x = newExchange(tx, prof, s.log, p.SpoolDir, p.SpoolMemory, s.b.spoolBufs)
	mt.x.use.lim = p.AnswerLimits
	for _, svc := range mt.route.Chain.Group {
		mt.x.group = append(mt.x.group, svc.URI)
	}
	x := mt.x
	if !s.b.spawn(func() { x.receive(context.WithoutCancel(ctx)) }) {
		close(x.recvDone)
		return s.onFailure(failure(FailConnect, errors.New("bridge closed")), true), false
	}
	if err := tx.StartMessage(); err != nil {
		return s.onFailure(failure(FailServer, err), true), false
	}
	// AM-OPT travels on the MAIL DUM, or on the first DUM when MAIL is
	// not negotiated (docs/profile.md 5.4).
	optsOn := ocpsmtp.PartMAIL
	for _, part := range []ocpsmtp.Part{ocpsmtp.PartIP, ocpsmtp.PartHELO} {
		if x.negotiated(part) && !x.negotiated(ocpsmtp.PartMAIL) {
			optsOn = part
			break
		}
	}
	send := func(part ocpsmtp.Part, payload string) error {
		if !x.negotiated(part) {
			return nil
		}
		var opts []ocpsmtp.Opt
		if part == optsOn {
			opts = s.newOpts(mac)
		}
		return x.sendPart(cctx, part, []byte(payload), x.allowFor(part), opts)
	}
	if err := send(ocpsmtp.PartIP, s.client.Addr); err != nil {
		return s.onFailure(failure(FailServer, err), true), false
	}
	if err := send(ocpsmtp.PartHELO, s.helo); err != nil {
		return s.onFailure(failure(FailServer, err), true), false
	}
	mail := strings.Join(append([]string{mt.from}, mt.args...), " ")
	x.mu.Lock()
	x.pendingMail = x.adaptive(ocpsmtp.PartMAIL)
	x.mu.Unlock()
	if err := send(ocpsmtp.PartMAIL, mail); err != nil {
		return s.onFailure(failure(FailServer, err), true), false
	}
	if x.adaptive(ocpsmtp.PartMAIL) {
		mctx, cancel := stageContext(cctx, p.Timeouts.Mail)
		defer cancel()
		if f := x.wait(mctx, func() bool { return !x.pendingMail }); f != nil {
			return s.onFailure(f, true), false
		}
		if r := x.mail.reply; r != nil {
			// The sender was refused: the MTA already accepted MAIL,
			// so the refusal answers this (and every) recipient.
			return *r, false
		}
	}
	return Reply{Kind: Continue}, true
}

// sendRcpt sends one RCPT part and, when it is adaptive, waits for the
// server's answer within the RCPT deadline.
func (s *session) sendRcpt(ctx context.Context, mac Macros, r *rcptState) Reply {
	mt, x := s.mt, s.mt.x
	if mt.fail != nil {
		return s.failedReply(true)
	}
	if !x.negotiated(ocpsmtp.PartRCPT) {
		return Reply{Kind: Continue}
	}
	adaptive := x.adaptive(ocpsmtp.PartRCPT)
	cctx, cancel := stageContext(ctx, s.policy().Timeouts.Rcpt)
	defer cancel()
	payload := strings.Join(append([]string{r.addr}, r.args...), " ")
	x.mu.Lock()
	r.index = len(x.rcpts)
	x.rcpts = append(x.rcpts, partAnswer{})
	if adaptive {
		x.pendingRcpt = r.index
	}
	x.mu.Unlock()
	if err := x.sendPart(cctx, ocpsmtp.PartRCPT, []byte(payload), x.allowFor(ocpsmtp.PartRCPT), nil); err != nil {
		return s.onFailure(failure(FailServer, err), true)
	}
	if !adaptive {
		return Reply{Kind: Continue}
	}
	if f := x.wait(cctx, func() bool { return x.pendingRcpt < 0 }); f != nil {
		return s.onFailure(f, true)
	}
	x.mu.Lock()
	a := x.rcpts[r.index]
	x.mu.Unlock()
	if a.reply != nil {
		if s.nonSMTP {
			// Never refuse at RCPT on the non-SMTP path: the MTA would
			// keep the message queued. Delete the recipient instead.
			r.deleted = true
			s.log.Info("recipient removed (non-SMTP path)", "qid", mac.Get("i"), "rcpt", r.addr,
				"reply", a.reply.SMTP.String(), "daemon", s.daemonName)
			return Reply{Kind: Continue}
		}
		return *a.reply
	}
	return Reply{Kind: Continue}
}

// onFailure applies the chain's failure policy to a failed adaptation and
// returns the reply for the current event. preData tells whether the event
// precedes the message data (a refusal then concerns one recipient).
func (s *session) onFailure(f *AdaptationError, preData bool) Reply {
	mt := s.mt
	if mt.fail == nil {
		mt.fail = f
		s.report(f)
		if !(mt.mayRetry && s.retryableFailure(f)) {
			// A failure that will be retried is neither logged as one
			// nor counted.
			s.log.Warn("adaptation failed", "route", routeName(mt.route), "class", f.Class.String(), "err", f.Err)
			s.b.metrics.failure(routeName(mt.route), f.Class, s.actionFor(f))
		}
		if mt.x != nil {
			mt.x.abort(f.Error())
		}
		switch s.action() {
		case mapping.Accept:
			mt.status = traceUnadapted
		case mapping.Quarantine:
			mt.status = traceUnadapted
			mt.quarantine = "content adaptation failed (" + f.Class.String() + ")"
		}
	}
	return s.failedReply(preData)
}

// action returns the failure action configured for the current failure.
func (s *session) action() mapping.Action {
	if s.mt.fail == nil {
		return mapping.TempFail
	}
	return s.actionFor(s.mt.fail)
}

// actionFor returns the action the route's chain configures for f.
func (s *session) actionFor(f *AdaptationError) mapping.Action {
	mt := s.mt
	if mt.route == nil {
		return mapping.TempFail
	}
	return mt.route.Chain.OnFailure.For(f.Class)
}

// failedReply answers an event after a failure.
func (s *session) failedReply(preData bool) Reply {
	switch s.action() {
	case mapping.Accept, mapping.Quarantine:
		return Reply{Kind: Continue}
	case mapping.Reject:
		if s.nonSMTP && preData {
			return Reply{Kind: Continue}
		}
		return Reply{Kind: Reject, SMTP: ocpsmtp.Reply{Code: 554, Text: "5.7.0 Content adaptation failed"}}
	}
	if s.nonSMTP && preData {
		return Reply{Kind: Continue}
	}
	return Reply{Kind: TempFail, SMTP: ocpsmtp.Reply{Code: 451, Text: "4.3.0 Content adaptation unavailable, try again later"}}
}

func routeName(r *mapping.Route) string {
	if r == nil {
		return ""
	}
	return r.Name
}

// okResult is the result of a successful transaction.
var okResult = ocp.Result{Code: 200}
