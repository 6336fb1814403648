package bridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/opes-milter/opes-milter/mapping"
)

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
