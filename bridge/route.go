package bridge

import "github.com/opes-milter/opes-milter/mapping"

// Policy is everything the bridge needs from the configuration. It is
// immutable once built; a reload builds a new one.
//
// Routes, their chains and server sets are the compiled configuration of
// package mapping as they are: the bridge has no copies of them. A route
// offers Route.Offer() for its chain's service group (Chain.Group) on the
// chain's server set, and the chain's OnFailure says what a failure does.
type Policy struct {
	Routes []*mapping.Route
	// Select returns the route for the facts, or nil when no route
	// matches (the message then passes without adaptation). It chooses by
	// the routes' Match: a route whose Match has no recipient domains
	// does not make the choice depend on the recipient (replies relies
	// on it).
	Select func(mapping.Facts) *mapping.Route
	// Skip reports whether a skip rule exempts the message.
	Skip func(mapping.Facts) bool
	// NonSMTP reports whether a daemon name marks the non-SMTP path
	// (Postfix non_smtpd_milters, Sendmail -bs …), where recipients are
	// never refused at RCPT.
	NonSMTP func(daemonName string) bool

	SystemURI  string // OPES-System entry
	PrivacyURI string // the system's privacy policy (privacy-policy parameter of OPES-System); "" for none
	TraceVia   bool   // add OPES-Via too
	Bypassable func(serviceURI string) bool

	// Timeouts are the per-stage deadlines for waiting on callout
	// servers. Connect bounds reaching a server (dial, negotiation, TS)
	// and Mail the answer to an adaptive MAIL, both inside Rcpt, which
	// bounds everything the first RCPT waits for; EndOfMessage bounds
	// sending the queued data parts and the wait for the answer.
	// ProgressInterval paces PROGRESS at end of message.
	Timeouts mapping.Timeouts
	// MaxMessageSize bounds what is sent to a callout server; Oversize
	// says what happens to a larger message: mapping.Reject (552),
	// mapping.TempFail (452) or mapping.SkipAdaptation (delivered
	// unadapted, traced as skipped; mapping.Accept does the same).
	MaxMessageSize int64
	Oversize       mapping.Action
	// QuarantineHeader names the header field added, with the reason, to
	// a message the failure policy quarantines ("" for none).
	QuarantineHeader string
	MaxSessions      int
	MaxTransactions  int
	MaxHeaderBytes   int
	SpoolDir         string
	SpoolMemory      int
	// AnswerLimits bound what a callout server may ask of the MTA per
	// message (limits.go); zero fields are unlimited.
	AnswerLimits AnswerLimits
	// Resolver is the host:port of the DNS server that resolves names in
	// server sets' addresses; "" means the system's resolver.
	Resolver string
}

// replies are the events at which a session under p may have to refuse
// something that end of message cannot refuse in its place: RCPT when a
// route offers an envelope part (IP, EHLO/HELO, MAIL, RCPT) as adaptive,
// whose answer may refuse the recipient, or when a route is chosen by
// recipient domain, so that a recipient needing another route than the
// first is deferred with 452 (one OCP transaction per mail transaction).
// Otherwise every RCPT is answered Continue or by the failure policy of
// the whole message, which end of message applies as well, and the MTA
// need not wait at RCPT: one round trip fewer per recipient.
func (p *Policy) replies() Events {
	r := EventEndOfMessage
	for _, rt := range p.Routes {
		if decidesAtRcpt(rt) {
			r |= EventRcpt
		}
	}
	return r
}

// decidesAtRcpt reports whether rt may decide something at RCPT: it
// offers an envelope part as adaptive, or it is chosen by recipient
// domain. A route that does not has nothing to say before the message
// data: its OCP transaction starts with the data (session.startAtData).
func decidesAtRcpt(rt *mapping.Route) bool {
	if len(rt.Match.RcptDomains) > 0 {
		return true
	}
	for _, part := range rt.Adaptive {
		if part.Rank() > 0 && !part.Data() {
			return true
		}
	}
	return false
}
