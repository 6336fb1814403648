package ocpsmtp

import "strings"

// MaxBypassEntries bounds the URIs one OPES-Bypass value may list.
const MaxBypassEntries = 64

// CheckAgentID checks that uri may serve as an OPES agent id in a trace
// entry or a bypass entry: an absolute URI (scheme ":" rest, RFC 3986)
// made only of URI characters other than ',' and ';', which separate list
// elements and parameters in the trace and bypass headers.
func CheckAgentID(uri string) error {
	const fn = "CheckAgentID"
	colon := strings.IndexByte(uri, ':')
	if colon < 1 || colon == len(uri)-1 {
		return syntaxErr(fn, "%q is not an absolute URI", uri)
	}
	for i := 0; i < colon; i++ {
		c := uri[i]
		if !isAlpha(c) && (i == 0 || !isDigit(c) && c != '+' && c != '-' && c != '.') {
			return syntaxErr(fn, "%q: bad scheme", uri)
		}
	}
	for i := colon + 1; i < len(uri); i++ {
		if c := uri[i]; !isURIChar(c) {
			return syntaxErr(fn, "%q: character %q not allowed", uri, c)
		}
	}
	return nil
}

// TraceEntry formats one trace entry (RFC 4236 §4: opes-agent-id *( ";"
// parameter )) for an OPES-System or OPES-Via field: the URI, then each
// parameter as "; name=value", the value quoted when it is not a token.
// The caller checks uri with CheckAgentID and parameter names as tokens
// when it loads its configuration; TraceEntry does not validate.
func TraceEntry(uri string, params ...[2]string) string {
	var b strings.Builder
	b.WriteString(uri)
	for _, p := range params {
		b.WriteString("; ")
		b.WriteString(p[0])
		b.WriteByte('=')
		if isToken(p[1]) {
			b.WriteString(p[1])
			continue
		}
		b.WriteByte('"')
		for i := 0; i < len(p[1]); i++ {
			if c := p[1][i]; c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(p[1][i])
		}
		b.WriteByte('"')
	}
	return b.String()
}

// ParseBypass parses the value of an OPES-Bypass header field (RFC 4236
// §5: "*" | 1#bypass-entry, bypass-entry = opes-agent-id) from an untrusted
// message. value is the raw field value: leading white space and folding
// (CRLF followed by SP or TAB) are allowed. It returns all = true for "*",
// otherwise the listed URIs in order (empty list elements are skipped, as
// RFC 2616's #rule allows). Which services a bypass may skip is the
// configuration's business (docs/profile.md, "Bypass").
func ParseBypass(value string) (all bool, uris []string, err error) {
	const fn = "ParseBypass"
	v := strings.NewReplacer("\r\n ", " ", "\r\n\t", " ").Replace(value)
	if i := strings.IndexFunc(v, func(c rune) bool { return c < 0x20 && c != '\t' || c == 0x7f }); i >= 0 {
		return false, nil, syntaxErr(fn, "control character %q", v[i])
	}
	v = strings.Trim(v, " \t")
	if v == "*" {
		return true, nil, nil
	}
	for _, e := range strings.Split(v, ",") {
		e = strings.Trim(e, " \t")
		if e == "" {
			continue
		}
		if err := CheckAgentID(e); err != nil {
			return false, nil, syntaxErr(fn, "entry %q is not an OPES agent URI", e)
		}
		if len(uris) == MaxBypassEntries {
			return false, nil, syntaxErr(fn, "more than %d entries", MaxBypassEntries)
		}
		uris = append(uris, e)
	}
	if len(uris) == 0 {
		return false, nil, syntaxErr(fn, "no entry")
	}
	return false, uris, nil
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isURIChar: RFC 3986 unreserved, gen-delims, sub-delims but ',' and ';',
// and '%'.
func isURIChar(c byte) bool {
	return isAlpha(c) || isDigit(c) || strings.IndexByte("-._~:/?#[]@!$&'()*+=%", c) >= 0
}

// isToken: RFC 2616 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 32 || c >= 127 || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}
