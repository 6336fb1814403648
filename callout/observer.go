package callout

import (
	"time"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// Observer is told what the server and its chains do, for metrics: one
// report per service call and one per transaction. Package
// callout/promobserver implements it with Prometheus collectors; a service
// author who wants none sets no Observer (callout itself does not depend
// on a metrics library). Implementations must be safe for concurrent use.
type Observer interface {
	// ObserveCall reports one service call: the service URI, the part,
	// the decision or error, and how long it took.
	ObserveCall(service string, part ocpsmtp.Part, d Decision, err error, elapsed time.Duration)
	// ObserveTransaction reports one transaction that ended with result
	// ("ok", "refused", "failed", "aborted") after elapsed.
	ObserveTransaction(result string, elapsed time.Duration)
}

// Verdict names a decision for metrics: keep, replace, tempfail, reject,
// quarantine or discard (a kept message with that Advice), or error when
// err is not nil.
func Verdict(d Decision, err error) string {
	switch {
	case err != nil:
		return "error"
	case d.Action == ActionRefuse && d.Reply.Temporary():
		return "tempfail"
	case d.Action == ActionRefuse:
		return "reject"
	case d.Advice == ocpsmtp.AdviceQuarantine:
		return "quarantine"
	case d.Advice == ocpsmtp.AdviceDiscard:
		return "discard"
	}
	return d.Action.String()
}
