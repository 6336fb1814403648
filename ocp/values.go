package ocp

import (
	"strconv"
)

// Uint parses a uni, size, offset or percent atom (RFC 4037 §10): a
// dec-number in [0, 2147483647] without leading zeros or sign. The atom may
// have arrived quoted; its decoded octets are checked.
func Uint(v Value) (int64, error) {
	a, ok := v.(Atom)
	if !ok {
		return 0, badValue("expected a number, got %s", kind(v))
	}
	return parseUint(a)
}

func parseUint(a []byte) (int64, error) {
	if len(a) == 0 || len(a) > 10 {
		return 0, badValue("bad number %q", a)
	}
	if a[0] == '0' && len(a) > 1 {
		return 0, badValue("leading zero in %q", a)
	}
	var n int64
	for _, c := range a {
		if !isDigit(c) {
			return 0, badValue("bad number %q", a)
		}
		n = n*10 + int64(c-'0')
	}
	if n > MaxSize {
		return 0, badValue("number %q exceeds %d", a, MaxSize)
	}
	return n, nil
}

// AtomString returns the decoded octets of an atom as a string.
func AtomString(v Value) (string, error) {
	a, ok := v.(Atom)
	if !ok {
		return "", badValue("expected an atom, got %s", kind(v))
	}
	return string(a), nil
}

// Bool parses a boolean atom: exactly "true" or "false" (RFC 4037 §10.5).
func Bool(v Value) (bool, error) {
	a, ok := v.(Atom)
	if ok {
		switch string(a) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, badValue("expected true or false")
}

// Num returns n as a decimal atom.
func Num(n int64) Atom { return strconv.AppendInt(make(Atom, 0, 10), n, 10) }

// BoolAtom returns the boolean atom "true" or "false".
func BoolAtom(b bool) Atom {
	if b {
		return Atom("true")
	}
	return Atom("false")
}

// kind names the type of v for error messages.
func kind(v Value) string {
	switch v.(type) {
	case Atom:
		return "atom"
	case List:
		return "list"
	case Struct:
		return "structure"
	case nil:
		return "nothing"
	}
	return "unknown value"
}

// Uint returns the first value of the named parameter name of m as a number.
// ok is false when the parameter is absent; err reports a bad value.
func (m *Message) Uint(name string) (n int64, ok bool, err error) {
	p, ok := m.Param(name)
	if !ok {
		return 0, false, nil
	}
	n, err = Uint(p.Value())
	return n, true, err
}

// AnonUint returns the i-th anonymous parameter of m as a number.
func (m *Message) AnonUint(i int) (int64, error) {
	if i >= len(m.Anon) {
		return 0, badValue("%s: missing anonymous parameter %d", m.Name, i+1)
	}
	return Uint(m.Anon[i])
}

// DuplicateParam returns the name of a named parameter that occurs twice in
// m, or "" if there is none. Such a message is invalid (RFC 4037 §11).
func (m *Message) DuplicateParam() string {
	for i := 1; i < len(m.Named); i++ {
		for j := 0; j < i; j++ {
			if m.Named[i].Name == m.Named[j].Name {
				return m.Named[i].Name
			}
		}
	}
	return ""
}
