package ocp

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrClosed is returned by operations on a connection, transaction or
	// server that has been closed. A *ConnError also matches it with
	// errors.Is.
	ErrClosed = errors.New("ocp: closed")
	// ErrLimit is wrapped by the *SyntaxError a Decoder returns when a
	// message exceeds its Limits.
	ErrLimit = errors.New("ocp: resource limit exceeded")
	// ErrBadValue is wrapped by the typed helpers (Uint, ParseResult,
	// ParseFeature, ...) when a value does not have the expected type.
	ErrBadValue = errors.New("ocp: bad value")
	// ErrState is returned when an operation is not allowed in the current
	// state of a transaction or dataflow (for example DUM before AMS, or a
	// DUY naming data the processor did not announce as kept).
	ErrState = errors.New("ocp: operation not allowed in this state")
)

// SyntaxError reports a message that violates the OCP grammar (RFC 4037
// §3.1) or the decoder's Limits. Its scope is the connection: the agent
// answers it with CE {400} and closes (RFC 4037 §5).
type SyntaxError struct {
	Offset int64  // stream offset of the offending octet
	Rule   string // the grammar rule being parsed, e.g. "size", "named-value"
	Msg    string // what was wrong
	Err    error  // ErrLimit for a resource limit, otherwise nil
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("ocp: syntax error at offset %d in %s: %s", e.Offset, e.Rule, e.Msg)
}

func (e *SyntaxError) Unwrap() error { return e.Err }

// ConnError reports the end of an OCP connection: a CE received from the
// peer (Remote) or sent by us, or a transport failure, which OCP treats as
// a CE with result 400 (RFC 4037 §11.2). Every transaction still open on
// the connection fails with it.
type ConnError struct {
	Result Result // the CE result; 400 for transport failures
	Remote bool   // the peer sent the CE or closed the transport
	Err    error  // underlying cause (transport or syntax error), if any
}

func (e *ConnError) Error() string {
	var b strings.Builder
	b.WriteString("ocp: connection ended")
	if e.Remote {
		b.WriteString(" by peer")
	}
	fmt.Fprintf(&b, ": %s", e.Result)
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *ConnError) Unwrap() error { return e.Err }

// Is reports whether target is ErrClosed, so that errors.Is(err, ErrClosed)
// holds for every ended connection.
func (e *ConnError) Is(target error) bool { return target == ErrClosed }

// TxError reports a transaction ended with a failure: a TE with a 400 (or
// unknown) result received from the peer (Remote) or sent by us, for
// example after the peer violated a transaction-scope rule.
type TxError struct {
	Xid    int64
	Result Result
	Remote bool
	// Params are the named parameters of the peer's TE (a profile may
	// define some, such as the OCP/SMTP profile's Service-Failure).
	Params []Param
}

// Param returns the TE's named parameter name, if present.
func (e *TxError) Param(name string) (Param, bool) {
	for _, p := range e.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

func (e *TxError) Error() string {
	who := "locally"
	if e.Remote {
		who = "by peer"
	}
	return fmt.Sprintf("ocp: transaction %d terminated %s: %s", e.Xid, who, e.Result)
}

// NegotiationError reports a failed negotiation: the peer selected no
// feature, or one that was not offered, or answered against the rules.
type NegotiationError struct {
	SG       int64     // service group of the offer, 0 for connection scope
	Offer    []Feature // what was offered
	Selected *Feature  // what the peer selected, nil if nothing
	Reason   string
}

func (e *NegotiationError) Error() string {
	scope := "connection"
	if e.SG != 0 {
		scope = fmt.Sprintf("service group %d", e.SG)
	}
	if e.Selected != nil {
		return fmt.Sprintf("ocp: negotiation for %s failed: %s (selected %q)", scope, e.Reason, e.Selected.URI)
	}
	return fmt.Sprintf("ocp: negotiation for %s failed: %s", scope, e.Reason)
}

// badValue returns an error wrapping ErrBadValue.
func badValue(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadValue, fmt.Sprintf(format, args...))
}
