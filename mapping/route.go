package mapping

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// Profile is the OCP/SMTP profile a route negotiates.
type Profile int

// The two profiles of draft-ietf-opes-smtp-00.
const (
	// Receiver: opes-milter is receiving a message from an SMTP peer.
	Receiver Profile = iota
	// Sender: opes-milter is about to send a message to an SMTP peer
	// (submission, outbound relaying).
	Sender
)

func (p Profile) String() string {
	if p == Sender {
		return "sender"
	}
	return "receiver"
}

// URI returns the profile's feature ID as sent in NO.
func (p Profile) URI() string {
	if p == Sender {
		return "http://iana.org/opes/ocp/SMTP/sender"
	}
	return "http://iana.org/opes/ocp/SMTP/receiver"
}

// routeParts are the parts a route may offer, in the order of the SMTP
// transaction: the parts of draft-ietf-opes-smtp-00 §3.1 that a milter can
// see (not VRFY or EXPN), plus IP. The Part type is ocpsmtp's.
var routeParts = [...]ocpsmtp.Part{ocpsmtp.PartIP, ocpsmtp.PartEHLO, ocpsmtp.PartHELO, ocpsmtp.PartMAIL,
	ocpsmtp.PartRCPT, ocpsmtp.PartRAWDATA, ocpsmtp.PartALLHEADERS, ocpsmtp.PartSINGLEHEADERS,
	ocpsmtp.PartBODY, ocpsmtp.PartSECTIONS}

// Route chooses the profile, the chain and the parts for the connections
// and messages it matches ([[routes]]).
type Route struct {
	Name string
	// Index is the route's position among the routes, from 0.
	Index   int
	Profile Profile
	Chain   *Chain
	// Adaptive and Informative are the parts offered in NO, in the order
	// of the SMTP transaction. They are disjoint and free of the draft's
	// mutually exclusive pairs.
	Adaptive, Informative []ocpsmtp.Part
	// HeaderList are the header names offered when SINGLEHEADERS is a
	// part ("*" means all); nil otherwise.
	HeaderList []string
	Match      Match
}

// Offer returns the profile the route offers in NO: its profile's URI, its
// parts and header list.
func (r *Route) Offer() ocpsmtp.Profile {
	return ocpsmtp.Profile{URI: r.Profile.URI(), Adaptive: r.Adaptive, Informative: r.Informative, HeaderList: r.HeaderList}
}

// Has reports whether the route offers part p, adaptive or informative.
func (r *Route) Has(p ocpsmtp.Part) bool { return r.IsAdaptive(p) || slices.Contains(r.Informative, p) }

// IsAdaptive reports whether the route offers part p as adaptive.
func (r *Route) IsAdaptive(p ocpsmtp.Part) bool { return slices.Contains(r.Adaptive, p) }

// SkipRule names messages that bypass adaptation entirely; they are traced
// as skipped ([[skip]]).
type SkipRule struct {
	Name  string
	Index int
	Match Match
}

// Facts are what a route or skip rule is chosen by. Not all are known
// from the start of a connection: SenderDomain from MAIL on, RcptDomain
// (the first recipient's domain) from the first RCPT on.
type Facts struct {
	// DaemonName is the MTA's {daemon_name} macro.
	DaemonName string
	// ClientAddr is the SMTP client's address; the zero Addr when
	// unknown (it then matches no client_network).
	ClientAddr    netip.Addr
	Authenticated bool
	// SenderDomain and RcptDomain are domains, any case; "" for the null
	// sender or an address without domain.
	SenderDomain, RcptDomain string
	// NonSMTP is set for mail submitted without SMTP (Postfix
	// non_smtpd_milters: sendmail(1), qmqpd, postsuper -r).
	NonSMTP bool
}

// Match is a condition on Facts. All given conditions must hold; within
// one list, one entry is enough. An empty Match holds for everything.
type Match struct {
	DaemonNames    []string
	ClientNetworks []netip.Prefix
	// Authenticated and NonSMTP are nil when not part of the condition.
	Authenticated *bool
	// SenderDomains and RcptDomains are lower case; an entry starting
	// with "." matches the subdomains of the rest ("." + "example.com"
	// matches "mx.example.com" but not "example.com").
	SenderDomains, RcptDomains []string
	NonSMTP                    *bool
}

// IsEmpty reports whether m holds for everything.
func (m *Match) IsEmpty() bool {
	return len(m.DaemonNames) == 0 && len(m.ClientNetworks) == 0 && m.Authenticated == nil &&
		len(m.SenderDomains) == 0 && len(m.RcptDomains) == 0 && m.NonSMTP == nil
}

// Matches reports whether f satisfies m.
func (m *Match) Matches(f Facts) bool {
	if len(m.DaemonNames) > 0 && !slices.Contains(m.DaemonNames, f.DaemonName) {
		return false
	}
	if len(m.ClientNetworks) > 0 && !inNetworks(m.ClientNetworks, f.ClientAddr) {
		return false
	}
	if m.Authenticated != nil && *m.Authenticated != f.Authenticated {
		return false
	}
	if m.NonSMTP != nil && *m.NonSMTP != f.NonSMTP {
		return false
	}
	if len(m.SenderDomains) > 0 && !domainIn(m.SenderDomains, f.SenderDomain) {
		return false
	}
	if len(m.RcptDomains) > 0 && !domainIn(m.RcptDomains, f.RcptDomain) {
		return false
	}
	return true
}

// Route returns the first route whose match holds for f.
func (c *Config) Route(f Facts) (*Route, bool) {
	for _, r := range c.Routes {
		if r.Match.Matches(f) {
			return r, true
		}
	}
	return nil, false
}

// Skip returns the first skip rule whose match holds for f.
func (c *Config) Skip(f Facts) (*SkipRule, bool) {
	for _, s := range c.Skips {
		if s.Match.Matches(f) {
			return s, true
		}
	}
	return nil, false
}

func inNetworks(nets []netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

func domainIn(list []string, d string) bool {
	if d == "" {
		return false
	}
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	for _, p := range list {
		if p == d || p[0] == '.' && strings.HasSuffix(d, p) {
			return true
		}
	}
	return false
}
