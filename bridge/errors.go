package bridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// This file sorts failures: the AdaptationError with its FailureClass, and
// the server's TE 400 naming a failed service. What a failure does to the
// message is decided in failure.go.

// FailureClass sorts a failed adaptation by cause, so the configured policy
// for that class can decide the message's fate. It is mapping's type (the
// configuration compiles on_failure into mapping.FailurePolicy); the names
// below are there so that the bridge's code reads as before.
type FailureClass = mapping.FailureClass

// The failure classes, mapping's.
const (
	FailConnect  = mapping.FailConnect
	FailTimeout  = mapping.FailTimeout
	FailProtocol = mapping.FailProtocol
	FailServer   = mapping.FailServer
	FailLocal    = mapping.FailLocal
	FailService  = mapping.FailService
)

// AdaptationError is a failed adaptation: its class and cause.
type AdaptationError struct {
	Class FailureClass
	Err   error
}

func (e *AdaptationError) Error() string {
	return fmt.Sprintf("adaptation failed (%s): %v", e.Class, e.Err)
}

func (e *AdaptationError) Unwrap() error { return e.Err }

// ErrOverloaded is returned by NewSession when the session limit is reached.
var ErrOverloaded = errors.New("bridge: too many concurrent sessions")

// failure wraps err in an *AdaptationError of class c, unless it already is
// one; a context deadline always counts as a timeout.
func failure(c FailureClass, err error) *AdaptationError {
	var ae *AdaptationError
	if errors.As(err, &ae) {
		return ae
	}
	if errors.Is(err, context.DeadlineExceeded) {
		c = FailTimeout
	}
	return &AdaptationError{Class: c, Err: err}
}

// protocolError is a profile violation by the callout server.
func protocolError(format string, args ...any) *AdaptationError {
	return &AdaptationError{Class: FailProtocol, Err: fmt.Errorf(format, args...)}
}

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
