package ocpsmtp

import "fmt"

// NegotiationError reports a profile negotiation that violates the
// draft's rules (T44-T47 of the conformance list). Its scope is the OCP
// connection: the processor closes it with CE 400.
type NegotiationError struct {
	Part   Part   // the offending part, if one is to blame
	Reason string // what is wrong, for logs and the CE reason
	Err    error  // an underlying error such as *ExclusiveError, or nil
}

func (e *NegotiationError) Error() string {
	s := "ocpsmtp: negotiation: " + e.Reason
	if e.Part != "" {
		s += " (" + string(e.Part) + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *NegotiationError) Unwrap() error { return e.Err }

// ExclusiveError reports two mutually exclusive parts (draft §3.2.1) in
// one part set.
type ExclusiveError struct {
	A, B Part
}

func (e *ExclusiveError) Error() string {
	return fmt.Sprintf("ocpsmtp: parts %s and %s are mutually exclusive", e.A, e.B)
}

// ParamError reports a missing or malformed profile parameter of a DUM or
// DUY. Its scope is the transaction: the receiver ends it with TE 400.
type ParamError struct {
	Name   string // the parameter name, e.g. "SMTP-Error"
	Reason string
	Err    error // the underlying *SyntaxError, or nil
}

func (e *ParamError) Error() string {
	s := "ocpsmtp: parameter " + e.Name + ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *ParamError) Unwrap() error { return e.Err }

// SyntaxError reports text that does not follow the grammar a parser of
// this package enforces. Func names the parser ("ParseReply",
// "ParseHeaderField", "ParseBypass", ...).
type SyntaxError struct {
	Func   string
	Reason string
}

func (e *SyntaxError) Error() string {
	return "ocpsmtp: " + e.Func + ": " + e.Reason
}

func syntaxErr(fn, format string, args ...any) error {
	return &SyntaxError{Func: fn, Reason: fmt.Sprintf(format, args...)}
}
