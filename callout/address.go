package callout

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadAddress reports a MAIL or RCPT payload that is not a path in angle
// brackets followed by optional ESMTP parameters.
var ErrBadAddress = errors.New("callout: malformed address")

// Address is the argument of MAIL or RCPT as the SMTP profile carries it:
// a path in angle brackets, then optional ESMTP parameters separated by
// spaces ("<paul@example.com> NOTIFY=NEVER").
type Address struct {
	// Addr is the mailbox without angle brackets; it is empty for the null
	// sender "<>".
	Addr string
	// Args are the ESMTP parameters, as sent ("SIZE=1234", "BODY=8BITMIME").
	Args []string
}

// ParseAddress parses a MAIL or RCPT payload. A bare address without angle
// brackets is accepted as well, since some MTAs strip them.
func ParseAddress(payload []byte) (Address, error) {
	s := strings.TrimSpace(string(payload))
	if strings.HasPrefix(s, "<") {
		end := strings.IndexByte(s, '>')
		if end < 0 {
			return Address{}, fmt.Errorf("%w: %q", ErrBadAddress, s)
		}
		a := Address{Addr: s[1:end]}
		a.Args = strings.Fields(s[end+1:])
		return a, nil
	}
	f := strings.Fields(s)
	if len(f) == 0 {
		return Address{}, fmt.Errorf("%w: empty", ErrBadAddress)
	}
	return Address{Addr: f[0], Args: f[1:]}, nil
}

// String formats a as the profile payload: "<addr>" followed by its
// parameters.
func (a Address) String() string {
	var b strings.Builder
	b.WriteByte('<')
	b.WriteString(a.Addr)
	b.WriteByte('>')
	for _, arg := range a.Args {
		b.WriteByte(' ')
		b.WriteString(arg)
	}
	return b.String()
}

// Local returns the part before the last "@" (the whole address if there is
// none).
func (a Address) Local() string {
	if i := strings.LastIndexByte(a.Addr, '@'); i >= 0 {
		return a.Addr[:i]
	}
	return a.Addr
}

// Domain returns the lower-cased part after the last "@", or "" if there is
// none.
func (a Address) Domain() string {
	if i := strings.LastIndexByte(a.Addr, '@'); i >= 0 {
		return strings.ToLower(a.Addr[i+1:])
	}
	return ""
}

// Arg returns the value of the ESMTP parameter called key (compared without
// regard to case) and whether it is present. A parameter without "=" has an
// empty value.
func (a Address) Arg(key string) (string, bool) {
	for _, arg := range a.Args {
		k, v, _ := strings.Cut(arg, "=")
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

// WithAddr returns a copy of a with the mailbox replaced and the parameters
// kept.
func (a Address) WithAddr(addr string) Address {
	a.Addr = addr
	a.Args = append([]string(nil), a.Args...)
	return a
}
