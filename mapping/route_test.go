package mapping

import (
	"net/netip"
	"testing"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

func TestMatch(t *testing.T) {
	addr := netip.MustParseAddr
	tests := []struct {
		name  string
		match string // the [routes.match] body
		facts Facts
		want  bool
	}{
		{"empty matches all", "", Facts{}, true},
		{"daemon name", `daemon_name = ["smtpd", "submission"]`, Facts{DaemonName: "submission"}, true},
		{"daemon name differs", `daemon_name = ["smtpd"]`, Facts{DaemonName: "Smtpd"}, false},
		{"network v4", `client_network = ["192.0.2.0/24"]`, Facts{ClientAddr: addr("192.0.2.77")}, true},
		{"network v4 outside", `client_network = ["192.0.2.0/24"]`, Facts{ClientAddr: addr("192.0.3.1")}, false},
		{"network v4-mapped client", `client_network = ["192.0.2.0/24"]`, Facts{ClientAddr: addr("::ffff:192.0.2.1")}, true},
		{"network v6 with zone", `client_network = ["fe80::/10"]`, Facts{ClientAddr: addr("fe80::1%eth0")}, true},
		{"network single address", `client_network = ["::1"]`, Facts{ClientAddr: addr("::1")}, true},
		{"network unknown client", `client_network = ["0.0.0.0/0", "::/0"]`, Facts{}, false},
		{"authenticated", `authenticated = true`, Facts{Authenticated: true}, true},
		{"not authenticated", `authenticated = false`, Facts{Authenticated: true}, false},
		{"sender domain any case", `sender_domain = ["example.com"]`, Facts{SenderDomain: "EXAMPLE.com."}, true},
		{"sender domain is not a subdomain", `sender_domain = ["example.com"]`, Facts{SenderDomain: "mx.example.com"}, false},
		{"sender subdomains", `sender_domain = [".example.com"]`, Facts{SenderDomain: "a.b.example.com"}, true},
		{"subdomains exclude the domain", `sender_domain = [".example.com"]`, Facts{SenderDomain: "example.com"}, false},
		{"subdomains need a dot", `sender_domain = [".example.com"]`, Facts{SenderDomain: "badexample.com"}, false},
		{"null sender", `sender_domain = ["example.com"]`, Facts{}, false},
		{"rcpt domain", `rcpt_domain = ["example.net"]`, Facts{RcptDomain: "example.net"}, true},
		{"non-SMTP", `non_smtp = true`, Facts{NonSMTP: true}, true},
		{"SMTP only", `non_smtp = false`, Facts{NonSMTP: true}, false},
		{"all conditions hold", "daemon_name = [\"smtpd\"]\nauthenticated = false\nrcpt_domain = [\"example.net\"]",
			Facts{DaemonName: "smtpd", RcptDomain: "example.net"}, true},
		{"one condition fails", "daemon_name = [\"smtpd\"]\nauthenticated = false\nrcpt_domain = [\"example.net\"]",
			Facts{DaemonName: "smtpd", RcptDomain: "example.org"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, fill(route+"adaptive = [\"RCPT\"]\n[routes.match]\n"+tc.match))
			if got := c.Routes[0].Match.Matches(tc.facts); got != tc.want {
				t.Errorf("Matches(%+v) = %v, want %v (match: %s)", tc.facts, got, tc.want, c.Routes[0].Match)
			}
			if _, got := c.Route(tc.facts); got != tc.want {
				t.Errorf("Route(%+v) found = %v, want %v", tc.facts, got, tc.want)
			}
		})
	}
}

func TestRouteOrderAndSkip(t *testing.T) {
	c := mustLoad(t, fill(`[[routes]]
name = "submission"
profile = "sender"
chain = "c"
adaptive = ["MAIL"]
match = { daemon_name = ["submission"], authenticated = true }

[[routes]]
name = "local"
chain = "c"
informative = ["IP"]
match.client_network = ["127.0.0.0/8"]

[[routes]]
name = "inbound"
chain = "c"
adaptive = ["RCPT", "RAWDATA"]

[[skip]]
name = "internal"
client_network = ["10.0.0.0/8"]

[[skip]]
name = "local mail"
non_smtp = true`))
	tests := []struct {
		facts      Facts
		route      string
		skip       string
		skipReason bool
	}{
		{Facts{DaemonName: "submission", Authenticated: true, ClientAddr: netip.MustParseAddr("127.0.0.1")}, "submission", "", false},
		{Facts{DaemonName: "submission", ClientAddr: netip.MustParseAddr("127.0.0.1")}, "local", "", false},
		{Facts{DaemonName: "smtpd", ClientAddr: netip.MustParseAddr("10.1.2.3")}, "inbound", "internal", true},
		{Facts{NonSMTP: true}, "inbound", "local mail", true},
	}
	for _, tc := range tests {
		r, ok := c.Route(tc.facts)
		if !ok || r.Name != tc.route {
			t.Errorf("Route(%+v) = %v, want %s", tc.facts, r, tc.route)
		}
		s, ok := c.Skip(tc.facts)
		if ok != tc.skipReason || ok && s.Name != tc.skip {
			t.Errorf("Skip(%+v) = %v, %v; want %q", tc.facts, s, ok, tc.skip)
		}
	}
	if r := c.Routes[2]; !r.IsAdaptive(ocpsmtp.PartRAWDATA) || r.IsAdaptive(ocpsmtp.PartIP) || !r.Has(ocpsmtp.PartRCPT) || r.Has(ocpsmtp.PartMAIL) {
		t.Errorf("part queries wrong for %+v", r)
	}
	if got := c.Routes[0].Profile.URI(); got != "http://iana.org/opes/ocp/SMTP/sender" {
		t.Errorf("sender profile URI = %s", got)
	}
	if got := c.Routes[1].Profile.URI(); got != "http://iana.org/opes/ocp/SMTP/receiver" {
		t.Errorf("receiver profile URI = %s", got)
	}
}

func TestNoRouteMatches(t *testing.T) {
	c := mustLoad(t, fill(route+"adaptive = [\"RCPT\"]\nmatch.authenticated = true"))
	if r, ok := c.Route(Facts{}); ok {
		t.Errorf("Route matched %v", r)
	}
	if s, ok := c.Skip(Facts{}); ok {
		t.Errorf("Skip matched %v", s)
	}
}

func TestBypassAllows(t *testing.T) {
	for _, tc := range []struct {
		b    Bypass
		uri  string
		want bool
	}{
		{Bypass{Allowed: []string{"urn:a"}}, "urn:a", false},
		{Bypass{Header: true, Allowed: []string{"urn:a"}}, "urn:a", true},
		{Bypass{Header: true, Allowed: []string{"urn:a"}}, "urn:b", false},
		{Bypass{Header: true, Any: true}, "urn:b", true},
	} {
		if got := tc.b.Allows(tc.uri); got != tc.want {
			t.Errorf("%+v.Allows(%s) = %v", tc.b, tc.uri, got)
		}
	}
}

func TestFailurePolicyFor(t *testing.T) {
	p := FailurePolicy{Connect: Accept, Timeout: Reject, Protocol: Quarantine, Server: TempFail}
	for c, want := range map[FailureClass]Action{FailConnect: Accept, FailTimeout: Reject, FailProtocol: Quarantine, FailServer: TempFail, 99: TempFail} {
		if got := p.For(c); got != want {
			t.Errorf("For(%v) = %v, want %v", c, got, want)
		}
	}
	if FailTimeout.String() != "timeout" || Quarantine.String() != "quarantine" || SkipAdaptation.String() != "skip" {
		t.Error("String names changed")
	}
}
