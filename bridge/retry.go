package bridge

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// This file holds the retry of a mail transaction on another server of the
// set, while nothing reached the MTA, and what the session tells the
// server's circuit breaker.

// When a transaction is tried again on another server.
//
// The OCP transaction of a mail transaction starts at its first RCPT (on a
// route that decides nothing there, with the data: startAtData, retried
// the same way, nothing having reached the MTA either). Until
// the bridge answers that RCPT, the MTA has been told nothing the callout
// server said: MAIL was answered by the bridge alone, and an answer to MAIL or
// to the first RCPT is only relayed in the RCPT reply. So a failure met while
// handling the first RCPT, before its reply, can be retried on another server
// of the set with nothing applied twice or lost: the failed transaction is
// ended with TE 400 and a new one starts from the IP part. It is retried when
//
//   - the server went away: its connection ended from its side (a crash, a
//     restart, a reset), or it refused the transaction or ended the connection
//     with the profile's "go away" (TE/CE {400 "draining"}, docs/profile.md);
//   - or the server did not answer in time and the set has another server:
//     the first attempt then has half of what is left of the RCPT deadline,
//     the next one the rest.
//
// Each server of the set is tried at most once (a set of one server: one
// retry on a new connection after a lost one); all attempts together answer
// within the RCPT deadline. A refusal by the server (an SMTP-Error) is an
// answer, never retried; a protocol violation is not retried (the server
// would do it again). From the moment the RCPT reply reached the MTA the
// transaction finishes where it started: its failures take the failure
// policy.

// minRetry is the least time left in the RCPT deadline worth a retry.
const minRetry = 100 * time.Millisecond

// setSize returns the number of servers of the current route's set.
func (s *session) setSize() int {
	if s.mt.route == nil {
		return 0
	}
	return s.st.pool.size(s.mt.route.Chain.Server)
}

// maxAttempts returns how many attempts the first RCPT may make: one per
// server of the set, at least two (a lost connection is retried once on a
// single server).
func (s *session) maxAttempts() int { return max(2, s.setSize()) }

// attemptContext bounds one attempt of the first RCPT: while another attempt
// may follow on another server, it gets half of what is left of rctx, so a
// server that does not answer leaves time to try the next.
func (s *session) attemptContext(rctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := rctx.Deadline()
	if !s.mt.mayRetry || s.setSize() < 2 || !ok {
		return rctx, func() {}
	}
	return context.WithTimeout(rctx, time.Until(dl)/2)
}

// retryable reports whether the failed attempt of the first RCPT is tried
// again (see above).
func (s *session) retryable(rctx context.Context) bool {
	mt := s.mt
	if !mt.mayRetry || mt.fail == nil || !s.retryableFailure(mt.fail) {
		return false
	}
	if mt.x == nil && len(mt.tried) >= s.setSize() {
		return false // no transaction started and no server left to try
	}
	if dl, ok := rctx.Deadline(); ok && time.Until(dl) < minRetry {
		return false
	}
	return true
}

// retryableFailure reports whether f is a failure that a retry on another
// server may overcome: the server went away, or (with another server in
// the set) it did not answer in time.
func (s *session) retryableFailure(f *AdaptationError) bool {
	switch {
	case isDraining(f.Err), s.lostBeforeAnswer(f):
		return true
	case f.Class == FailTimeout:
		// Waiting for the server (for its answer, or for a connection
		// to it) took this attempt's time.
		return s.setSize() > 1
	}
	return false
}

// lostBeforeAnswer reports whether f is the callout server's side of the
// connection ending (its CE, or the transport failing under a read or a
// write) while the first RCPT is handled. A connection we ended ourselves
// (the server broke the protocol) is not retried: it would do it again.
func (s *session) lostBeforeAnswer(f *AdaptationError) bool {
	return s.mt.x != nil && lostConnection(f.Err)
}

// lostConnection reports whether err is the server's side of the
// connection ending.
func lostConnection(err error) bool {
	var ce *ocp.ConnError
	return errors.As(err, &ce) && ce.Remote
}

// isDraining reports whether err is the server's "go away": a TE or CE
// {400 "draining"} it sent.
func isDraining(err error) bool {
	var te *ocp.TxError
	var ce *ocp.ConnError
	switch {
	case errors.As(err, &te):
		return te.Remote && ocpsmtp.IsDraining(te.Result)
	case errors.As(err, &ce):
		return ce.Remote && ocpsmtp.IsDraining(ce.Result)
	}
	return false
}

// resetExchange drops a failed attempt so the transaction starts over on
// another server.
func (s *session) resetExchange() {
	mt := s.mt
	s.log.Info("callout server failed before anything reached the MTA; retrying the transaction on another server",
		"route", routeName(mt.route), "err", mt.fail.Err)
	if mt.x != nil {
		if !slices.Contains(mt.tried, mt.uc.up) {
			mt.tried = append(mt.tried, mt.uc.up)
		}
		mt.x.close()
		s.b.inflight.Add(-1)
		s.b.metrics.addTransactions(-1)
	}
	mt.x, mt.uc = nil, nil
	mt.fail, mt.status, mt.quarantine, mt.optsSent = nil, traceAdapted, "", nil
}

// report tells the server's circuit breaker about a failure of the current
// transaction: a timeout counts toward it, a lost connection too but once
// per connection (upConn.lost); a "go away" does not, but no new
// transaction starts on that connection.
func (s *session) report(f *AdaptationError) {
	uc := s.mt.uc
	if uc == nil || s.mt.x == nil {
		return // a failure to start is counted by the pool
	}
	switch {
	case isDraining(f.Err):
		uc.draining.Store(true)
	case lostConnection(f.Err):
		uc.lost(f)
	case f.Class == FailTimeout:
		uc.up.failed(f)
	}
}

// succeeded tells the server's circuit breaker that the transaction of mt
// went well so far: the server answered and nothing failed.
func succeeded(mt *mailTx) {
	if mt == nil || mt.x == nil || mt.uc == nil || mt.fail != nil {
		return
	}
	if mt.x.wentWell() {
		mt.uc.up.succeeded()
	}
}
