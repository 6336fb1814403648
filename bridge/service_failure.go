package bridge

import (
	"fmt"
	"strings"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// serviceFailure returns a FailService failure when err is the server's TE
// 400 naming a failed service (docs/profile.md, section 10.1), nil
// otherwise.
func serviceFailure(err error) *AdaptationError {
	uri, ok := ocpsmtp.ServiceFailure(err)
	if !ok {
		return nil
	}
	return &AdaptationError{Class: FailService, Err: fmt.Errorf("service %s failed: %w", uri, err)}
}

// ServerFault reports whether the failure counts against the callout
// server (its circuit breaker): every class but FailService (a service's
// backend failed while the server worked) and FailLocal (ours).
func (e *AdaptationError) ServerFault() bool {
	return e.Class != FailService && e.Class != FailLocal
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
