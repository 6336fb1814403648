package bridge

import (
	"fmt"

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
