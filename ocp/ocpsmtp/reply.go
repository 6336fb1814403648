package ocpsmtp

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on an SMTP reply from a callout server: libmilter's
// smfi_setmlreply bounds (32 lines of at most 980 octets).
const (
	MaxReplyLines    = 32
	MaxReplyLineSize = 980
)

// Reply is an SMTP error reply: the one reply type of the project. A
// callout service refuses with it, the configuration's replies compile to it,
// the SMTP-Error parameter (draft §3.3.3) carries it and the processor hands
// it to the MTA. Validate (or ParseReply, for the wire form) is its one
// validator.
type Reply struct {
	// Code is the three-digit reply code: 400-459 or 500-559, never 421.
	Code int
	// Text follows the code: the enhanced status code, if any, and the
	// human-readable text ("5.1.1 no such user"). The lines of a multi-line
	// reply are separated by "\r\n", each without its code.
	Text string
}

// ParseReply validates s, an SMTP reply in SMTP form (from an untrusted
// callout server, or as written in the configuration), and returns it
// split up. The rules (docs/profile.md, "SMTP-Error"):
//
//   - one line "ddd text", or several lines separated by CRLF, each starting
//     with the same code, "ddd-" on all lines but the last and "ddd " (or
//     just "ddd") on the last; no CRLF after the last line;
//   - the code is 4xx or 5xx with a second digit 0-5; 421 is refused, as it
//     would end the whole SMTP session rather than one command;
//   - an enhanced status code, when the first line's text starts with a
//     digit, is class.subject.detail with the class equal to the code's
//     first digit; later lines that start with one must repeat it;
//   - no NUL, bare CR or bare LF, no other control character but TAB, valid
//     UTF-8; at most MaxReplyLines lines of MaxReplyLineSize octets.
func ParseReply(s string) (Reply, error) {
	const fn = "ParseReply"
	if s == "" {
		return Reply{}, syntaxErr(fn, "empty reply")
	}
	if !utf8.ValidString(s) {
		return Reply{}, syntaxErr(fn, "not valid UTF-8")
	}
	raw := strings.Split(s, "\r\n")
	if len(raw) > MaxReplyLines {
		return Reply{}, syntaxErr(fn, "%d lines, more than %d", len(raw), MaxReplyLines)
	}
	// at names the line in an error, when there are several.
	at := func(i int) string {
		if len(raw) == 1 {
			return ""
		}
		return "line " + strconv.Itoa(i+1) + ": "
	}
	var r Reply
	first := ""
	for i, line := range raw {
		last := i == len(raw)-1
		if len(line) > MaxReplyLineSize {
			return Reply{}, syntaxErr(fn, "%s%d octets, more than %d", at(i), len(line), MaxReplyLineSize)
		}
		if j := strings.IndexFunc(line, isReplyCtl); j >= 0 {
			return Reply{}, syntaxErr(fn, "%scontrol character %q", at(i), line[j])
		}
		if len(line) < 3 || !isCode(line[:3]) {
			return Reply{}, syntaxErr(fn, "%sdoes not start with a 4xx or 5xx code", at(i))
		}
		code := int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
		if i == 0 {
			if code == 421 {
				return Reply{}, syntaxErr(fn, "code 421 would close the SMTP session")
			}
			r.Code = code
		} else if code != r.Code {
			return Reply{}, syntaxErr(fn, "%scode %d differs from %d", at(i), code, r.Code)
		}
		text := ""
		switch {
		case len(line) == 3:
			if !last {
				return Reply{}, syntaxErr(fn, "%scontinuation line needs \"%d-\"", at(i), code)
			}
		case line[3] == '-' && !last, line[3] == ' ' && last:
			text = line[4:]
		default:
			return Reply{}, syntaxErr(fn, "%sbad separator after the code", at(i))
		}
		enh, ok := enhancedPrefix(text)
		switch {
		case !ok:
			return Reply{}, syntaxErr(fn, "%smalformed enhanced status code", at(i))
		case i == 0 && enh != "":
			if enh[0] != line[0] {
				return Reply{}, syntaxErr(fn, "enhanced code %s does not match reply code %d", enh, code)
			}
			first = enh
		case i > 0 && enh != "" && enh != first:
			return Reply{}, syntaxErr(fn, "%senhanced code %s differs from the first line", at(i), enh)
		}
		if i > 0 {
			r.Text += "\r\n"
		}
		r.Text += text
	}
	return r, nil
}

// Validate reports whether r is a reply the profile allows (the rules of
// ParseReply), as a *SyntaxError.
func (r Reply) Validate() error {
	if r.Code < 100 || r.Code > 999 {
		return syntaxErr("Reply.Validate", "code %d is not three digits", r.Code)
	}
	if _, err := ParseReply(r.String()); err != nil {
		return err
	}
	return nil
}

// Lines returns the text of each line, after its code.
func (r Reply) Lines() []string { return strings.Split(r.Text, "\r\n") }

// Enhanced returns the enhanced status code (RFC 3463) the first line
// starts with ("5.1.1"), or "".
func (r Reply) Enhanced() string {
	first, _, _ := strings.Cut(r.Text, "\r\n")
	enh, _ := enhancedPrefix(first)
	return enh
}

// IsZero reports whether r is the zero Reply (no reply set).
func (r Reply) IsZero() bool { return r.Code == 0 && r.Text == "" }

// String returns the reply in SMTP form, without a final CRLF: the value
// of the SMTP-Error parameter. The zero Reply is "".
func (r Reply) String() string {
	if r.IsZero() {
		return ""
	}
	var b strings.Builder
	code := itoa(r.Code)
	lines := r.Lines()
	for i, l := range lines {
		if i > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString(code)
		if i < len(lines)-1 {
			b.WriteByte('-')
		} else if l != "" {
			b.WriteByte(' ')
		}
		b.WriteString(l)
	}
	return b.String()
}

// Temporary reports whether the reply is a 4xx (transient) one.
func (r Reply) Temporary() bool { return r.Code/100 == 4 }

func isReplyCtl(c rune) bool { return c < 0x20 && c != '\t' || c == 0x7f }

func isCode(s string) bool {
	return (s[0] == '4' || s[0] == '5') && s[1] >= '0' && s[1] <= '5' && s[2] >= '0' && s[2] <= '9'
}

// enhancedPrefix returns the enhanced status code (RFC 3463) text starts
// with: "" and true when text does not start with a digit, false when it
// starts with a digit but is not class.subject.detail followed by SP or end.
func enhancedPrefix(text string) (string, bool) {
	if text == "" || text[0] < '0' || text[0] > '9' {
		return "", true
	}
	end := strings.IndexByte(text, ' ')
	if end < 0 {
		end = len(text)
	}
	enh := text[:end]
	f := strings.Split(enh, ".")
	if len(f) != 3 || len(f[0]) != 1 || (f[0] != "2" && f[0] != "4" && f[0] != "5") {
		return "", false
	}
	for _, n := range f[1:] {
		if len(n) < 1 || len(n) > 3 || (len(n) > 1 && n[0] == '0') {
			return "", false
		}
		for i := 0; i < len(n); i++ {
			if n[i] < '0' || n[i] > '9' {
				return "", false
			}
		}
	}
	return enh, true
}

func itoa(n int) string {
	if n < 0 || n > 999 {
		n = 0
	}
	return string([]byte{byte('0' + n/100), byte('0' + n/10%10), byte('0' + n%10)})
}
