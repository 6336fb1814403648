package bridge

import (
	"errors"
	"fmt"
	"strings"
)

// Limits on what a callout server may hand the MTA through milter
// modifications. One milter packet carries at most 64 KiB; these leave
// room for the packet's other fields.
const (
	maxPathAnswer  = 1000     // an adapted MAIL or RCPT: path (256) plus ESMTP arguments
	maxHeaderValue = 60 << 10 // one added or changed header field
)

// checkPathAnswer validates an adapted MAIL or RCPT payload from the
// callout server: one address in angle brackets, optionally followed by
// SP-separated ESMTP arguments, printable US-ASCII or UTF-8 without any
// control character (docs/profile.md 4: the same form the processor sends).
func checkPathAnswer(p string) error {
	if len(p) > maxPathAnswer {
		return fmt.Errorf("%d octets, more than %d", len(p), maxPathAnswer)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("control character %q", c)
		}
	}
	addr, args, _ := strings.Cut(p, " ")
	if len(addr) < 2 || addr[0] != '<' || addr[len(addr)-1] != '>' || strings.ContainsAny(addr[1:len(addr)-1], "<> ") {
		return fmt.Errorf("%q is not an address in angle brackets", truncate(addr, 60))
	}
	for _, a := range strings.Split(args, " ") {
		if args != "" && (a == "" || !strings.Contains(a, "=") && !isKeyword(a)) {
			return fmt.Errorf("bad ESMTP argument %q", truncate(a, 60))
		}
	}
	return nil
}

func isKeyword(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return s != ""
}

// checkField validates a header field the MTA is about to receive.
func checkField(name, value string) error {
	if name == "" || len(name)+len(value) > maxHeaderValue {
		return fmt.Errorf("header field %q of %d octets", truncate(name, 40), len(name)+len(value))
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= 0x20 || c >= 0x7f || c == ':' {
			return fmt.Errorf("header field name %q", truncate(name, 40))
		}
	}
	if strings.IndexByte(value, 0) >= 0 {
		return errors.New("NUL in a header field")
	}
	return nil
}

// check validates every modification before the first is sent, so that
// nothing fails half-way for a reason the data itself carries.
func (o *outcome) check() error {
	for _, h := range append(o.topHeaders[:len(o.topHeaders):len(o.topHeaders)], o.addHeaders...) {
		if err := checkField(h.name, h.value); err != nil {
			return err
		}
	}
	for _, op := range o.headerOps {
		if err := checkField(op.name, op.value); err != nil {
			return err
		}
	}
	return nil
}
