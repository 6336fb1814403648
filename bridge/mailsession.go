package bridge

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// session is the bridge's state for one MTA connection.
type session struct {
	b   *Bridge
	st  *state
	log *slog.Logger

	// replies are the events whose replies the MTA waits for
	// (Handler.NewSession); a refusal decided at another is deferred to
	// end of message.
	replies Events

	client     Client
	helo       string
	daemonName string
	nonSMTP    bool
	postfix    bool // the MTA is Postfix (macro v)

	mt *mailTx // the current mail transaction, nil between transactions
}

// mailTx is one SMTP mail transaction (MAIL … end of data).
type mailTx struct {
	started time.Time
	from    string
	args    []string
	authed  bool
	rcpts   []rcptState

	route  *mapping.Route
	x      *exchange   // nil until the first RCPT (or the data: startAtData) starts the OCP transaction
	uc     *upConn     // the connection x runs on
	tried  []*upstream // servers an earlier attempt of the first RCPT failed on
	xstart time.Time   // when the OCP transaction started
	// status is how the message is traced: adapted, unadapted (a failure
	// policy let it through) or bypassed.
	status     string
	quarantine string
	fail       *AdaptationError // the failure that changed the status

	mayRetry bool            // a failure now may be retried (first RCPT, attempts left; see retry.go)
	optsSent map[string]bool // AM-OPT keywords already sent
	dataOpts bool            // the first data DUM (with its AM-OPT) was sent
	deferred *Reply          // a refusal decided at a header or body event

	headers     []headerField
	headerBytes int
	headerSent  bool
	bodyBytes   int64
	body        *Spool    // the body, spooled for SECTIONS
	pending     pending   // data queued for the callout server
	sections    []section // the body's sections, cut at end of message
}

// rcptState is one recipient the MTA passed.
type rcptState struct {
	addr    string
	args    []string
	index   int  // index in the exchange's answers, -1 if not sent
	refused bool // refused at RCPT (not part of the message)
	deleted bool // to delete at end of message (non-SMTP refusals, server deletions)
}

func (s *session) policy() *Policy { return s.st.policy }

// Connect implements Session.
func (s *session) Connect(ctx context.Context, mac Macros, c Client) Reply {
	s.st = s.b.current()
	s.client = c
	s.daemonName = mac.Get("{daemon_name}")
	s.postfix = strings.HasPrefix(mac.Get("v"), "Postfix")
	if f := s.policy().NonSMTP; f != nil {
		s.nonSMTP = f(s.daemonName)
	}
	s.log = s.b.log.With("client", c.Addr)
	return Reply{Kind: Continue}
}

// Helo implements Session.
func (s *session) Helo(ctx context.Context, mac Macros, name string) Reply {
	s.helo = name
	return Reply{Kind: Continue}
}

// Mail implements Session.
func (s *session) Mail(ctx context.Context, mac Macros, from string, args []string) Reply {
	// Each mail transaction runs on the configuration current when it
	// starts: a session that outlives a reload picks up the new one.
	s.st = s.b.current()
	s.endTx("new MAIL")
	s.mt = &mailTx{started: time.Now(), from: from, args: args, authed: mac.Get("{auth_authen}") != ""}
	return Reply{Kind: Continue}
}

// facts returns what route selection looks at.
func (s *session) facts(rcpt string) mapping.Facts {
	addr, _ := netip.ParseAddr(s.client.Addr)
	return mapping.Facts{
		DaemonName:    s.daemonName,
		ClientAddr:    addr,
		Authenticated: s.mt.authed,
		SenderDomain:  domainOf(s.mt.from),
		RcptDomain:    domainOf(rcpt),
		NonSMTP:       s.nonSMTP,
	}
}

// domainOf returns the lower-cased domain of an address as the MTA passes it.
func domainOf(addr string) string {
	addr = strings.TrimSuffix(strings.TrimPrefix(addr, "<"), ">")
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(addr[i+1:])
	}
	return ""
}

// rcpt answers RCPT (see Rcpt in rcpt.go, which counts and logs the
// refusals). whole is set when a refusal is the failure of the whole
// message: the first RCPT could not start the OCP transaction.
func (s *session) rcpt(ctx context.Context, mac Macros, rcpt string, args []string) (rep Reply, whole bool) {
	if s.mt == nil {
		return Reply{Kind: Continue}, false
	}
	mt := s.mt
	p := s.policy()
	r := rcptState{addr: rcpt, args: args, index: -1}
	first := len(mt.rcpts) == 0 && mt.route == nil && mt.status == traceAdapted
	if first {
		f := s.facts(rcpt)
		if p.Skip != nil && p.Skip(f) {
			mt.status = traceBypassed
		} else if p.Select != nil {
			mt.route = p.Select(f)
		}
	} else if mt.route != nil && p.Select != nil {
		if other := p.Select(s.facts(rcpt)); other != mt.route {
			// One OCP transaction per mail transaction: this recipient
			// needs another route, so the client retries it separately.
			mt.rcpts = append(mt.rcpts, rcptState{addr: rcpt, args: args, index: -1, refused: true})
			return Reply{Kind: TempFail, SMTP: ocpsmtp.Reply{Code: 452, Text: "4.5.3 Recipient needs a separate transaction, try again"}}, false
		}
	}
	rctx := ctx
	if first {
		// Every attempt of the first RCPT, retries included, is answered
		// within the RCPT deadline.
		var cancel context.CancelFunc
		rctx, cancel = stageContext(ctx, p.Timeouts.Rcpt)
		defer cancel()
	}
	defer func() { mt.mayRetry = false }()
	for attempt := 0; ; attempt++ {
		mt.mayRetry = first && attempt < s.maxAttempts()-1
		actx, acancel := s.attemptContext(rctx)
		if first && mt.route != nil && mt.x == nil && decidesAtRcpt(mt.route) {
			var ok bool
			if rep, ok = s.startExchange(actx, mac, rcpt, false); !ok {
				acancel()
				if s.retryable(rctx) {
					s.resetExchange()
					continue
				}
				mt.rcpts = append(mt.rcpts, rcptState{addr: rcpt, args: args, index: -1, refused: rep.Kind == Reject || rep.Kind == TempFail})
				return rep, true
			}
		}
		rep = Reply{Kind: Continue}
		if mt.x != nil {
			rep = s.sendRcpt(actx, mac, &r)
		}
		acancel()
		if first && s.retryable(rctx) {
			s.resetExchange()
			r.index = -1
			continue
		}
		break
	}
	if rep.Kind == Reject || rep.Kind == TempFail {
		r.refused = true
	}
	mt.rcpts = append(mt.rcpts, r)
	return rep, false
}

// Data implements Session.
func (s *session) Data(ctx context.Context, mac Macros) Reply { return Reply{Kind: Continue} }

// Header implements Session.
func (s *session) Header(ctx context.Context, mac Macros, name, value string) Reply {
	if s.mt == nil {
		return Reply{Kind: Continue}
	}
	mt := s.mt
	mt.headerBytes += len(name) + len(value) + 3
	if max := s.policy().MaxHeaderBytes; max > 0 && mt.headerBytes > max {
		return s.defer_(Reply{Kind: Reject, SMTP: ocpsmtp.Reply{Code: 552, Text: "5.3.4 Message header too large"}})
	}
	mt.headers = append(mt.headers, headerField{name: name, value: value})
	return Reply{Kind: Continue}
}

// EndOfHeaders implements Session.
func (s *session) EndOfHeaders(ctx context.Context, mac Macros) Reply {
	if s.mt == nil {
		return Reply{Kind: Continue}
	}
	if mt := s.mt; mt.x == nil && mt.route != nil && mt.deferred == nil {
		if rep := s.startAtData(ctx, mac); rep.Kind != Continue {
			return s.defer_(rep)
		}
	}
	if s.mt.x == nil {
		return Reply{Kind: Continue}
	}
	return s.defer_(s.sendHeader(ctx, mac))
}

// Body implements Session.
func (s *session) Body(ctx context.Context, mac Macros, chunk []byte) Reply {
	if s.mt == nil || s.mt.x == nil {
		if s.mt != nil && s.mt.route == nil {
			return Reply{Kind: Skip}
		}
		return Reply{Kind: Continue}
	}
	if rep := s.sendHeader(ctx, mac); rep.Kind != Continue {
		return s.defer_(rep)
	}
	return s.defer_(s.sendBody(ctx, mac, chunk))
}

// EndOfMessage implements Session.
func (s *session) EndOfMessage(ctx context.Context, mac Macros, mod Modifier) Reply {
	mt := s.mt
	if mt == nil {
		return Reply{Kind: Accept}
	}
	if d := mt.deferred; d != nil {
		// A refusal decided while the message streamed (the MTA does
		// not wait for replies to header and body events). When it is
		// the server's SMTP-Error, its answer is what the MTA gets: TE
		// 200; a refusal of our own ends the transaction with 400.
		s.logSummary(mac, &outcome{}, *d)
		reason := "message refused"
		if mt.x != nil && mt.fail == nil && mt.x.refusedWith(*d) {
			reason = ""
		}
		s.endTx(reason)
		return *d
	}
	defer s.endTx("")
	out := s.finish(ctx, mac, mod)
	rep := out.apply(s, mod)
	s.logSummary(mac, out, rep)
	return rep
}

// defer_ keeps the first refusal decided at a header or body event for
// end of message: the bridge asks the MTA not to wait for replies there
// (Requirements.Replies). Skip passes through (without effect when the
// MTA does not wait for the reply).
func (s *session) defer_(rep Reply) Reply {
	if rep.Kind == Reject || rep.Kind == TempFail {
		if s.mt != nil && s.mt.deferred == nil {
			s.mt.deferred = &rep
		}
		return Reply{Kind: Continue}
	}
	return rep
}

// Abort implements Session.
func (s *session) Abort(ctx context.Context, mac Macros) { s.endTx("aborted by the MTA") }

// Close implements Session.
func (s *session) Close() {
	s.endTx("MTA connection closed")
	s.b.sessions.Add(-1)
	s.b.metrics.addSessions(-1)
}

// endTx ends the current mail transaction, aborting its OCP transaction
// when it is still open.
func (s *session) endTx(reason string) {
	mt := s.mt
	s.mt = nil
	if mt != nil {
		mt.pending.release(s.b.pendingBufs)
		if mt.body != nil {
			mt.body.Close()
		}
	}
	if mt == nil || mt.x == nil {
		return
	}
	succeeded(mt)
	if reason != "" {
		mt.x.abort(reason)
	} else {
		// The outcome was validated and applied (a failure found on
		// the way decided TE 400 before).
		mt.x.endOK()
	}
	mt.x.close()
	s.b.inflight.Add(-1)
	s.b.metrics.addTransactions(-1)
}

// dropExchange ends the OCP transaction of the current message early; the
// message goes on without adaptation (or is refused by the caller).
func (s *session) dropExchange(reason string) {
	mt := s.mt
	if mt.x == nil {
		return
	}
	mt.x.abort(reason)
	mt.x.close()
	mt.x = nil
	mt.route = nil
	mt.pending.reset()
	s.b.inflight.Add(-1)
	s.b.metrics.addTransactions(-1)
}

// stageContext bounds a wait for the callout server by the stage deadline.
func stageContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
