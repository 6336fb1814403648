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

// This file holds the session's OCP side before the message data: the
// start of the exchange (the pool, the TS, IP, HELO and MAIL) and each
// RCPT, with the answers the MTA waits for.

// startExchange opens the OCP transaction for the current mail transaction
// and sends the parts that precede the first RCPT. ok is false when it
// failed; the reply is then the failure policy's answer. held keeps
// everything after the TS back until the message data is flushed
// (exchange.hold), for a transaction started with the data.
func (s *session) startExchange(ctx context.Context, mac Macros, firstRcpt string, held bool) (Reply, bool) {
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
	mt.x.serveChain(mt.route.Chain.Group, p.AnswerLimits)
	x := mt.x
	if held {
		x.hold()
	}
	if !s.b.spawn(func() { x.receive(context.WithoutCancel(ctx)) }) {
		x.noReceiver()
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
	x.expectMailAnswer()
	if err := send(ocpsmtp.PartMAIL, mail); err != nil {
		return s.onFailure(failure(FailServer, err), true), false
	}
	if x.adaptive(ocpsmtp.PartMAIL) {
		mctx, cancel := stageContext(cctx, p.Timeouts.Mail)
		defer cancel()
		r, f := x.mailRefusal(mctx)
		if f != nil {
			return s.onFailure(f, true), false
		}
		if r != nil {
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
	r.index = x.addRcpt(adaptive)
	if !adaptive && r.index > 0 {
		x.hold()
	}
	if err := x.sendPart(cctx, ocpsmtp.PartRCPT, []byte(payload), x.allowFor(ocpsmtp.PartRCPT), nil); err != nil {
		return s.onFailure(failure(FailServer, err), true)
	}
	if !adaptive {
		return Reply{Kind: Continue}
	}
	a, f := x.rcptAnswer(cctx, r.index)
	if f != nil {
		return s.onFailure(f, true)
	}
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

func routeName(r *mapping.Route) string {
	if r == nil {
		return ""
	}
	return r.Name
}

// startAtData starts the OCP transaction of a route that decides nothing
// at RCPT (decidesAtRcpt), at the end of the header, with the recipients
// the MTA accepted: the envelope parts, informative, then leave with the
// message data in one write instead of waking the callout server while
// the MTA sends the envelope. Nothing of the server has reached the MTA
// yet, so a failure is retried on another server of the set as at the
// first RCPT (retry.go), within the RCPT deadline. It returns Continue,
// or the reply for the whole message (the failure policy's).
func (s *session) startAtData(ctx context.Context, mac Macros) Reply {
	mt := s.mt
	first := -1
	for i, r := range mt.rcpts {
		if !r.refused {
			first = i
			break
		}
	}
	if first < 0 || mt.status != traceAdapted || decidesAtRcpt(mt.route) {
		return Reply{Kind: Continue}
	}
	rctx, cancel := stageContext(ctx, s.policy().Timeouts.Rcpt)
	defer cancel()
	defer func() { mt.mayRetry = false }()
	for attempt := 0; ; attempt++ {
		mt.mayRetry = attempt < s.maxAttempts()-1
		actx, acancel := s.attemptContext(rctx)
		rep, ok := s.startExchange(actx, mac, mt.rcpts[first].addr, true)
		refused := ""
		for i := range mt.rcpts {
			if r := &mt.rcpts[i]; ok && !r.refused && rep.Kind == Continue && mt.fail == nil {
				rep, refused = s.sendRcpt(actx, mac, r), r.addr
			}
		}
		acancel()
		if s.retryable(rctx) {
			s.resetExchange()
			for i := range mt.rcpts {
				mt.rcpts[i].index = -1
			}
			continue
		}
		if (rep.Kind == Reject || rep.Kind == TempFail) && mt.fail == nil && ok {
			// A recipient refused by its own answer: only a route
			// chosen by a reload since the first RCPT can decide there
			// (startExchange's errRetired).
			rep = s.refusedAfterReload(mac, refused, rep)
		}
		return rep
	}
}
