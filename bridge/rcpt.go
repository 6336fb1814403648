package bridge

import (
	"context"
	"strings"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// Rcpt implements Session: the recipient is answered by rcpt; a refusal
// is counted (opes_milter_rcpt_refusals_total) and logged, since the MTA
// then ends the recipient and no message line will name it.
func (s *session) Rcpt(ctx context.Context, mac Macros, rcpt string, args []string) Reply {
	rep, whole := s.rcpt(ctx, mac, rcpt, args)
	if rep.Kind != Reject && rep.Kind != TempFail {
		return rep
	}
	if s.replies&EventRcpt == 0 {
		return s.deferRcpt(mac, rcpt, rep, whole)
	}
	route := ""
	if s.mt != nil {
		route = routeName(s.mt.route)
	}
	verdict := "reject"
	if rep.Kind == TempFail {
		verdict = "tempfail"
	}
	s.b.metrics.rcptRefused(route, verdict)
	attrs := append(s.messageFields(mac.Get("i")), "rcpt", rcpt, "verdict", verdict)
	if rep.SMTP.Code != 0 {
		attrs = append(attrs, "reply", rep.SMTP.Code)
	}
	if rep.SMTP.Text != "" {
		attrs = append(attrs, "text", strings.ReplaceAll(rep.SMTP.Text, "\r\n", " / "))
	}
	s.log.Info("recipient refused", attrs...)
	return rep
}

// deferRcpt keeps a refusal decided at RCPT for end of message, where the
// MTA does not wait for RCPT replies: Handler.Replies left them out
// because the policy had nothing to decide per recipient. The failure of
// the whole message (whole: the first RCPT could not start the OCP
// transaction) keeps its reply, as the failure policy says. A refusal of
// one recipient, possible only when a reload between the negotiation and
// the session's start brought such a decision, becomes a temporary
// failure of the message: refusing every recipient for one would refuse
// mail nobody refused, and the retry negotiates RCPT replies.
func (s *session) deferRcpt(mac Macros, rcpt string, rep Reply, whole bool) Reply {
	if !whole {
		rep = s.refusedAfterReload(mac, rcpt, rep)
	}
	return s.defer_(rep)
}

// refusedAfterReload turns rep, a refusal of recipient rcpt by its own
// answer where the MTA no longer waits for one (a reload brought a route
// that decides at RCPT), into the temporary failure of the whole message,
// and logs it.
func (s *session) refusedAfterReload(mac Macros, rcpt string, rep Reply) Reply {
	s.log.Warn("recipient refused in a session negotiated without RCPT replies (configuration reloaded); message tempfailed at end of data",
		append(s.messageFields(mac.Get("i")), "rcpt", rcpt, "reply", rep.SMTP.Code)...)
	return Reply{Kind: TempFail, SMTP: ocpsmtp.Reply{Code: 451, Text: "4.3.0 Recipient decision needs a new session, try again"}}
}
