package bridge

import (
	"strings"

	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// This file is the one failure cascade of the bridge: decideFailure maps a
// failed adaptation (its class) met at a stage of the mail transaction to
// what the route chain's on_failure policy makes of it; the session
// (onFailure, failedReply), the outcome at end of message (finish, apply)
// and the quarantine header all read that decision.

// failureStage is where in the mail transaction a failure is met.
type failureStage int

const (
	// stagePreData: MAIL or RCPT; a refusal concerns one recipient, and
	// the non-SMTP path (sendmail -bm, Postfix pickup) refuses nothing
	// there, or the MTA would keep the message queued.
	stagePreData failureStage = iota
	// stageMessage: the message data and end of message; a refusal
	// concerns the whole message.
	stageMessage
)

func (st failureStage) String() string {
	if st == stagePreData {
		return "pre-data"
	}
	return "message"
}

// failureDecision is what the chain's failure policy makes of one failure.
type failureDecision struct {
	action mapping.Action // the chain's action for the failure's class
	// deliver: the message goes on unadapted (accept, quarantine); the
	// reply is then Continue for the current event.
	deliver    bool
	reply      Reply  // the answer to the current event
	quarantine string // the MTA's quarantine reason, "" for none
}

// The replies of a failed adaptation.
var (
	failedTempFail = Reply{Kind: TempFail, SMTP: ocpsmtp.Reply{Code: 451, Text: "4.3.0 Content adaptation unavailable, try again later"}}
	failedReject   = Reply{Kind: Reject, SMTP: ocpsmtp.Reply{Code: 554, Text: "5.7.0 Content adaptation failed"}}
)

// decideFailure maps a failure f met at stage to the action of route's
// chain (tempfail without a route or a failure) and to the reply for the
// current event. nonSMTP is the MTA's non-SMTP submission path, where
// nothing is refused before the data. An action that on_failure cannot
// name (skip) fails closed, as tempfail.
func decideFailure(route *mapping.Route, f *AdaptationError, stage failureStage, nonSMTP bool) failureDecision {
	d := failureDecision{action: mapping.TempFail}
	if route != nil && f != nil {
		d.action = route.Chain.OnFailure.For(f.Class)
	}
	switch d.action {
	case mapping.Accept:
		d.deliver = true
	case mapping.Quarantine:
		d.deliver = true
		d.quarantine = "content adaptation failed (" + f.Class.String() + ")"
	case mapping.Reject:
		d.reply = failedReject
	default:
		d.reply = failedTempFail
	}
	if d.deliver || (nonSMTP && stage == stagePreData) {
		d.reply = Reply{Kind: Continue}
	}
	return d
}

// failureDecision returns the decision for the current failure at stage.
func (s *session) failureDecision(stage failureStage) failureDecision {
	return decideFailure(s.mt.route, s.mt.fail, stage, s.nonSMTP)
}

// stageOf returns the stage of an event that precedes the message data or
// not.
func stageOf(preData bool) failureStage {
	if preData {
		return stagePreData
	}
	return stageMessage
}

// onFailure records a failed adaptation (the first one counts), applies
// the chain's failure policy to it and returns the reply for the current
// event. preData tells whether the event precedes the message data (a
// refusal then concerns one recipient).
func (s *session) onFailure(f *AdaptationError, preData bool) Reply {
	mt := s.mt
	if mt.fail == nil {
		mt.fail = f
		d := s.failureDecision(stageOf(preData))
		s.report(f)
		if !(mt.mayRetry && s.retryableFailure(f)) {
			// A failure that will be retried is neither logged as one
			// nor counted.
			s.log.Warn("adaptation failed", "route", routeName(mt.route), "class", f.Class.String(), "err", f.Err)
			s.b.metrics.failure(routeName(mt.route), f.Class, d.action)
		}
		if mt.x != nil {
			mt.x.abort(f.Error())
		}
		if d.deliver {
			mt.status = traceUnadapted
		}
		if d.quarantine != "" {
			mt.quarantine = d.quarantine
		}
	}
	return s.failedReply(preData)
}

// failedReply answers an event after a failure.
func (s *session) failedReply(preData bool) Reply {
	return s.failureDecision(stageOf(preData)).reply
}

// quarantineHeader adds the header field naming why the failure policy
// quarantined the message, when the policy names one.
func quarantineHeader(out *outcome, name string, f *AdaptationError) {
	if name == "" || out.quarantine == "" || f == nil {
		return
	}
	reason := out.quarantine + ": " + f.Err.Error()
	reason = strings.Map(func(r rune) rune {
		if r < ' ' || r >= 0x7f {
			return ' '
		}
		return r
	}, reason)
	if len(reason) > 400 {
		reason = reason[:400]
	}
	out.addHeaders = append(out.addHeaders, headerField{name: name, value: reason})
}
