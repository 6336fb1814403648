package ocp

import (
	"fmt"
	"strconv"
)

// Result codes defined by OCP Core (RFC 4037 §10.10).
const (
	CodeOK      = 200 // overall success
	CodePartial = 206 // AME only: the dataflow ended prematurely
	CodeFailure = 400 // failure: the recipient destroys the state and data
)

// Result is an OCP result (RFC 4037 §10.10): a status code and an optional
// reason for humans. The zero Result stands for an absent result parameter,
// which OCP reads as 200; messages built by this package omit it.
type Result struct {
	Code   int
	Reason string
}

// ParseResult parses a result structure {code [reason]}. The code is kept
// as sent; callers treat codes they do not know as 400 (see Failed).
func ParseResult(v Value) (Result, error) {
	s, ok := v.(Struct)
	if !ok || len(s.Anon) == 0 {
		return Result{}, badValue("expected a result structure, got %s", kind(v))
	}
	a, ok := s.Anon[0].(Atom)
	if !ok || len(a) != 3 {
		return Result{}, badValue("bad result code")
	}
	code, err := parseUint(a)
	if err != nil {
		return Result{}, badValue("bad result code %q", a)
	}
	r := Result{Code: int(code)}
	if len(s.Anon) > 1 {
		if r.Reason, err = AtomString(s.Anon[1]); err != nil {
			return Result{}, err
		}
	}
	return r, nil
}

// OK reports whether r means success: code 200, or an absent result.
func (r Result) OK() bool { return r.Code == CodeOK || r.Code == 0 }

// Partial reports whether r is 206, a premature end of a dataflow.
func (r Result) Partial() bool { return r.Code == CodePartial }

// Failed reports whether r must be treated as a failure: 400 or any code
// OCP Core does not define (RFC 4037 §10.10). 206 counts as a failure too
// outside AME; callers handling AME check Partial first.
func (r Result) Failed() bool { return !r.OK() && !r.Partial() }

// Value returns r as an OCP value: {code} or {code reason}.
func (r Result) Value() Value {
	code := r.Code
	if code == 0 {
		code = CodeOK
	}
	s := Struct{Anon: []Value{Num(int64(code))}}
	if r.Reason != "" {
		s.Anon = append(s.Anon, Atom(r.Reason))
	}
	return s
}

func (r Result) String() string {
	code := r.Code
	if code == 0 {
		code = CodeOK
	}
	if r.Reason == "" {
		return strconv.Itoa(code)
	}
	return fmt.Sprintf("%d %s", code, r.Reason)
}

// resultOf returns the optional result of m at anonymous position i, or the
// zero Result (meaning 200) when absent.
func resultOf(m *Message, i int) (Result, error) {
	if len(m.Anon) <= i {
		return Result{}, nil
	}
	return ParseResult(m.Anon[i])
}

// Failure returns a 400 result with the given reason.
func Failure(reason string) Result { return Result{Code: CodeFailure, Reason: reason} }
