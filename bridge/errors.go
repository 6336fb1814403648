package bridge

import (
	"context"
	"errors"
	"fmt"
)

// FailureClass sorts a failed adaptation by cause, so the configured policy
// for that class can decide the message's fate.
type FailureClass int

// The failure classes of docs/profile.md and the mapping's on_failure table.
const (
	// FailConnect: no callout server of the set could be reached or
	// negotiated with.
	FailConnect FailureClass = iota
	// FailTimeout: a stage deadline passed while waiting for the server.
	FailTimeout
	// FailProtocol: the server broke OCP or the profile (a malformed
	// message, an SMTP-Error it was not allowed to send, a 2xx reply …).
	FailProtocol
	// FailServer: the server ended the transaction or connection with a
	// failure result (TE/AME/CE 400).
	FailServer
	// FailLocal: a local resource failed (the spool, the disk).
	FailLocal
)

func (c FailureClass) String() string {
	switch c {
	case FailConnect:
		return "connect"
	case FailTimeout:
		return "timeout"
	case FailProtocol:
		return "protocol"
	case FailServer:
		return "server"
	case FailLocal:
		return "local"
	}
	return fmt.Sprintf("FailureClass(%d)", int(c))
}

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
