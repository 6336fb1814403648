package bridge

import (
	"context"
	"strings"
)

// Rcpt implements Session: the recipient is answered by rcpt; a refusal
// is counted (opes_milter_rcpt_refusals_total) and logged, since the MTA
// then ends the recipient and no message line will name it.
func (s *session) Rcpt(ctx context.Context, mac Macros, rcpt string, args []string) Reply {
	rep := s.rcpt(ctx, mac, rcpt, args)
	if rep.Kind != Reject && rep.Kind != TempFail {
		return rep
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
