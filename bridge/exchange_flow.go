package bridge

import (
	"context"

	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// This file holds what the session asks of the exchange while it sends
// the original parts: the negotiated profile, the answers to MAIL and
// RCPT, and the state of the original flow. The exchange owns its lock:
// the session reaches its fields only through these methods.

// adaptive reports whether part is adaptive in the negotiated profile.
func (x *exchange) adaptive(part ocpsmtp.Part) bool {
	a, _ := x.prof.Has(part)
	return a
}

// negotiated reports whether part is sent at all.
func (x *exchange) negotiated(part ocpsmtp.Part) bool {
	a, i := x.prof.Has(part)
	return a || i
}

// negotiatesData reports whether any data part is negotiated.
func (x *exchange) negotiatesData() bool {
	for _, p := range x.prof.Parts() {
		if p.Data() {
			return true
		}
	}
	return false
}

// adaptsData reports whether a data part is adaptive.
func (x *exchange) adaptsData() bool {
	for _, p := range x.prof.Adaptive {
		if p.Data() {
			return true
		}
	}
	return false
}

// wantsHeader reports whether the negotiated SINGLEHEADERS Header-List
// names the field name.
func (x *exchange) wantsHeader(name string) bool {
	return x.prof.WantsHeader(name)
}

// allowAdaptive lists the server parameters the processor honours on an
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

// serveChain records the services of the chain's group (OPES-Via names
// them unless the server's AMS names those that acted) and the limits on
// what the server may ask; call before the receiver starts.
func (x *exchange) serveChain(group []ocp.Service, lim AnswerLimits) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.use.lim = lim
	for _, svc := range group {
		x.group = append(x.group, svc.URI)
	}
}

// expectMailAnswer records, before MAIL is sent, whether the server is to
// answer it (MAIL is adaptive).
func (x *exchange) expectMailAnswer() {
	x.mu.Lock()
	x.pendingMail = x.adaptive(ocpsmtp.PartMAIL)
	x.mu.Unlock()
}

// mailRefusal waits for the server's answer to MAIL and returns the SMTP
// reply it refused the sender with, nil when it did not.
func (x *exchange) mailRefusal(ctx context.Context) (*Reply, *AdaptationError) {
	if f := x.wait(ctx, func() bool { return !x.pendingMail }); f != nil {
		return nil, f
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.mail.reply, nil
}

// addRcpt records a RCPT about to be sent and returns its index; when
// adaptive, it is the RCPT whose answer the exchange waits for.
func (x *exchange) addRcpt(adaptive bool) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	i := len(x.rcpts)
	x.rcpts = append(x.rcpts, partAnswer{})
	if adaptive {
		x.pendingRcpt = i
	}
	return i
}

// rcptAnswer waits for the server's answer to the adaptive RCPT i.
func (x *exchange) rcptAnswer(ctx context.Context, i int) (partAnswer, *AdaptationError) {
	if f := x.wait(ctx, func() bool { return x.pendingRcpt < 0 }); f != nil {
		return partAnswer{}, f
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.rcpts[i], nil
}

// sentEnd returns the original offset after the last octet sent (or kept
// unsent after a DWSR).
func (x *exchange) sentEnd() int64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.dataStart >= 0 {
		return x.dataStart + x.dataSize
	}
	return int64(len(x.pre))
}

// keepTheRest records that the original flow stops for the server's DWSR:
// the rest of the message is kept, not sent, and completes the answers at
// end of message.
func (x *exchange) keepTheRest() {
	x.mu.Lock()
	x.keepRest = true
	x.mu.Unlock()
}

// dataRefusal returns the SMTP-Error the server sent on a data part, nil
// when it sent none.
func (x *exchange) dataRefusal() *Reply {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.dataReply
}

// flowState is what decides the fate of the next original data chunk.
type flowState struct {
	refusal   *Reply // the server's SMTP-Error on a data part
	stopAsked bool   // the server sent Advice Accept
	stopped   bool   // the original flow ended early (our AME 206)
	keepRest  bool   // the rest is kept, not sent (DWSR)
	dwsr      int64  // the server's DWSR org-size, -1 before
}

// flow returns the state of the original flow.
func (x *exchange) flow() flowState {
	x.mu.Lock()
	defer x.mu.Unlock()
	return flowState{refusal: x.dataReply, stopAsked: x.stopAsked, stopped: x.stopped, keepRest: x.keepRest, dwsr: x.dwsr}
}

// cork holds the transaction's messages until uncork, so that they leave
// in one write.
func (x *exchange) cork() { x.tx.Cork() }

// uncork writes what cork held.
func (x *exchange) uncork() { x.tx.Uncork() }

// hold keeps the transaction's messages back from now on, until the first
// data goes out (release in flushData), the processor's AME, a wait for the
// server, or the end of the transaction, whichever comes first. An
// informative RCPT after the first needs no answer and the server needs it
// only with the message, so the recipients of a message reach the server
// in the write of its data instead of one write (and one read, one
// wake-up on each side) each. The first RCPT is not held: it goes with the
// transaction's start, which tells the server the transaction exists
// (a server shutting down gracefully waits for it). Safe from any
// goroutine; several holds need one release.
func (x *exchange) hold() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.held {
		x.held = true
		x.tx.Cork()
	}
}

// release ends hold, letting what it held go.
func (x *exchange) release() {
	x.mu.Lock()
	held := x.held
	x.held = false
	x.mu.Unlock()
	if held {
		x.tx.Uncork()
	}
}

// serverEnded reports whether the server's AME arrived; call with mu held
// (a condition for wait).
func (x *exchange) serverEnded() bool { return x.ame }

// actedServices returns the services the server's AMS named as acting,
// nil when it named none.
func (x *exchange) actedServices() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.acted
}

// wentWell reports whether the server answered and nothing failed so far
// (the circuit breaker's success).
func (x *exchange) wentWell() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.serverSpoke && x.fail == nil
}

// noReceiver records that no receiver goroutine runs for the exchange (the
// bridge was closing when the exchange started), so close does not wait
// for one.
func (x *exchange) noReceiver() { close(x.recvDone) }
