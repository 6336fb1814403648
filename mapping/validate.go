package mapping

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
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

// parseReply parses an SMTP reply as written in the configuration: "550
// 5.1.1 text", or several lines ("550-5.7.1 a\n550 5.7.1 b", with "\n" or
// "\r\n" between them). The rules are the profile's, ocpsmtp.ParseReply:
// a 4xx or 5xx code (not 421), an enhanced status code of the same class
// (Postfix refuses "554 4.7.1"), no control characters.
func parseReply(s string) (ocpsmtp.Reply, error) {
	r, err := ocpsmtp.ParseReply(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n"))
	if err != nil {
		var se *ocpsmtp.SyntaxError
		if errors.As(err, &se) {
			return ocpsmtp.Reply{}, fmt.Errorf("reply %q: %s", s, se.Reason)
		}
		return ocpsmtp.Reply{}, fmt.Errorf("reply %q: %w", s, err)
	}
	return r, nil
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
