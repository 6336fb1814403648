package ocpsmtp

import (
	"strings"
	"unicode/utf8"
)

// MaxHeaderLine is the longest line of a header field ParseHeaderField
// accepts, without its CRLF (RFC 5322 §2.1.1).
const MaxHeaderLine = 998

// Header field names of the OPES trace and bypass headers (RFC 4236 §4-5,
// draft §4).
const (
	HeaderSystem = "OPES-System"
	HeaderVia    = "OPES-Via"
	HeaderBypass = "OPES-Bypass"
)

// IsOPESHeader reports whether name (any case) is OPES-System, OPES-Via or
// OPES-Bypass. A callout server may not add, change or delete these
// fields: the processor owns them (docs/profile.md, "Tracing").
func IsOPESHeader(name string) bool {
	return strings.EqualFold(name, HeaderSystem) || strings.EqualFold(name, HeaderVia) ||
		strings.EqualFold(name, HeaderBypass)
}

// ParseHeaderField validates s, one header field from an untrusted callout
// server (an Add-Header value, draft §3.3.5), and splits it at the first
// colon. name is one or more printable ASCII characters other than ':'
// (so no SP); value is everything after the colon, unchanged, leading
// space included. Folding is allowed only as CRLF followed by SP or TAB,
// and a folded line may not be white space only. No NUL, bare CR, bare LF
// or other control character but TAB; no final CRLF; valid UTF-8 (RFC
// 6532); each line at most MaxHeaderLine octets.
func ParseHeaderField(s string) (name, value string, err error) {
	const fn = "ParseHeaderField"
	colon := strings.IndexByte(s, ':')
	if colon < 1 {
		return "", "", syntaxErr(fn, "no field name before a colon")
	}
	name = s[:colon]
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 33 || c > 126 {
			return "", "", syntaxErr(fn, "character %q in the field name", c)
		}
	}
	if !utf8.ValidString(s) {
		return "", "", syntaxErr(fn, "not valid UTF-8")
	}
	value = s[colon+1:]
	for i, line := range strings.Split(s, "\r\n") {
		if len(line) > MaxHeaderLine {
			return "", "", syntaxErr(fn, "line %d is %d octets, more than %d", i+1, len(line), MaxHeaderLine)
		}
		if j := strings.IndexFunc(line, isReplyCtl); j >= 0 {
			return "", "", syntaxErr(fn, "line %d: control character %q", i+1, line[j])
		}
		if i == 0 {
			continue
		}
		if line == "" || (line[0] != ' ' && line[0] != '\t') {
			return "", "", syntaxErr(fn, "line %d: CRLF not followed by white space", i+1)
		}
		if strings.Trim(line, " \t") == "" {
			return "", "", syntaxErr(fn, "line %d: folded line of white space only", i+1)
		}
	}
	return name, value, nil
}
