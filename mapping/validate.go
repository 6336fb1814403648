package mapping

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Value checks shared by the compile steps. Each returns an error whose
// text completes "KEY: ".

// checkURI accepts an absolute URI such as an OPES service ID.
func checkURI(s string) error {
	if s == "" {
		return errors.New("empty URI")
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c == 0x7f {
			return fmt.Errorf("URI %q contains a space or control character", s)
		}
	}
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() {
		return fmt.Errorf("%q is not an absolute URI (like \"http://example.net/service\" or \"urn:example:service\")", s)
	}
	return nil
}

// checkDomain lower-cases a domain; a leading "." stands for its
// subdomains.
func checkDomain(s string) (string, error) {
	d := strings.ToLower(strings.TrimSuffix(s, "."))
	host := strings.TrimPrefix(d, ".")
	if strings.ContainsRune(host, '@') {
		return "", fmt.Errorf("%q is an address, not a domain", s)
	}
	if err := checkHost(host); err != nil || host == "" {
		return "", fmt.Errorf("bad domain %q", s)
	}
	return d, nil
}

// checkAddress lower-cases an email address: local@domain, without angle
// brackets.
func checkAddress(s string) (string, error) {
	a := strings.ToLower(s)
	local, domain, ok := strings.Cut(a, "@")
	if !ok || local == "" || strings.ContainsAny(a, "<> \t\r\n\"") || strings.Contains(domain, "@") {
		return "", fmt.Errorf("bad address %q (want local@domain, without angle brackets)", s)
	}
	if _, err := checkDomain(domain); err != nil || strings.HasPrefix(domain, ".") {
		return "", fmt.Errorf("bad domain in address %q", s)
	}
	return a, nil
}

// parseNetwork accepts a CIDR prefix or a single address.
func parseNetwork(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("bad network %q (want 192.0.2.0/24, 2001:db8::/32 or one address)", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad network %q (want 192.0.2.0/24, 2001:db8::/32 or one address)", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %q?", s, m.String())
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q is an IPv4-mapped prefix; write the IPv4 prefix", s)
	}
	return p, nil
}

// checkHeaderName accepts a header field name (RFC 5322 ftext).
func checkHeaderName(s string) error {
	if s == "" {
		return errors.New("empty header name")
	}
	for _, c := range []byte(s) {
		if c < 33 || c > 126 || c == ':' {
			return fmt.Errorf("bad header name %q", s)
		}
	}
	return nil
}

// checkHeaderValue refuses what would break a header field.
func checkHeaderValue(s string) error {
	if strings.ContainsAny(s, "\r\n\x00") {
		return errors.New("header value contains CR, LF or NUL")
	}
	return nil
}

// parseReply parses an SMTP reply "550 5.1.1 text". The code must be
// 4xx or 5xx, and an enhanced status code must start with the same digit
// (Postfix refuses "554 4.7.1").
func parseReply(s string) (Reply, error) {
	if strings.ContainsAny(s, "\r\n\x00") {
		return Reply{}, errors.New("reply contains CR, LF or NUL; write one line")
	}
	code, text, _ := strings.Cut(s, " ")
	n, err := strconv.Atoi(code)
	if err != nil || len(code) != 3 || n < 400 || n > 599 {
		return Reply{}, fmt.Errorf("reply %q does not start with a 4xx or 5xx code", s)
	}
	if enh, _, _ := strings.Cut(text, " "); isEnhancedCode(enh) && enh[0] != code[0] {
		return Reply{}, fmt.Errorf("reply %q: the enhanced code %s does not match the class of %s", s, enh, code)
	}
	return Reply{Code: n, Text: text}, nil
}

// isEnhancedCode matches class.subject.detail (RFC 3463).
func isEnhancedCode(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

// checkOwner accepts "user" or "user:group".
func checkOwner(s string) error {
	user, group, hasGroup := strings.Cut(s, ":")
	if !isName(user) || hasGroup && !isName(group) {
		return fmt.Errorf("bad owner %q (want user or user:group)", s)
	}
	return nil
}

func isName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range []byte(s) {
		if !(isBareByte(c) || c == '.') {
			return false
		}
	}
	return true
}
