package mapping

import (
	"fmt"
	"slices"
	"strings"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

func (b *builder) routes(raw []rawRoute) {
	if len(raw) == 0 {
		b.errorf(ErrMissing, "routes", "opes-milter needs at least one [[routes]] table")
		return
	}
	chains := make(map[string]*Chain)
	for _, c := range b.cfg.Chains {
		chains[c.Name] = c
	}
	names := make(map[string]int)
	catchAll := -1
	for i, r := range raw {
		key := indexPath("routes", i)
		rt := &Route{Name: r.Name, Index: i, Profile: r.Profile}
		if rt.Name == "" {
			rt.Name = fmt.Sprintf("route-%d", i+1)
		}
		if j, dup := names[rt.Name]; dup {
			b.errorf(ErrConflict, joinPath(key, "name"), "%q is also the name of routes[%d]", rt.Name, j)
		}
		names[rt.Name] = i
		switch c, ok := chains[r.Chain]; {
		case r.Chain == "":
			b.errorf(ErrMissing, joinPath(key, "chain"), "required: the chain of services to apply (%s)", defined("chain", chains))
		case !ok:
			b.errorf(ErrReference, joinPath(key, "chain"), "no chain %q (%s)", r.Chain, defined("chain", chains))
		default:
			rt.Chain = c
		}
		b.parts(key, &r, rt)
		rt.Match = b.match(joinPath(key, "match"), &r.Match)
		if catchAll >= 0 {
			b.errorf(ErrConflict, key, "never used: routes[%d] before it matches everything", catchAll)
		} else if r.Match.isEmpty() {
			catchAll = i
		}
		b.cfg.Routes = append(b.cfg.Routes, rt)
	}
}

// parts checks the parts of a route against the draft and against what a
// milter can see and change.
func (b *builder) parts(key string, r *rawRoute, rt *Route) {
	akey, ikey := joinPath(key, "adaptive"), joinPath(key, "informative")
	where := make(map[ocpsmtp.Part]string) // part → key of its entry
	for i, rp := range r.Adaptive {
		p, pkey := ocpsmtp.Part(rp), indexPath(akey, i)
		switch {
		case p == "": // not decoded
		case where[p] != "":
			b.errorf(ErrConflict, pkey, "%s is listed twice", p)
		case p == ocpsmtp.PartIP || p == ocpsmtp.PartHELO || p == ocpsmtp.PartEHLO:
			b.errorf(ErrValue, pkey, "%s cannot be adaptive: a milter cannot change it; make it informative", p)
		default:
			where[p] = pkey
			rt.Adaptive = append(rt.Adaptive, p)
		}
	}
	for i, rp := range r.Informative {
		p, pkey := ocpsmtp.Part(rp), indexPath(ikey, i)
		switch {
		case p == "":
		case strings.HasPrefix(where[p], akey+"["):
			b.errorf(ErrConflict, pkey, "%s is also adaptive (%s); list each part once", p, where[p])
		case where[p] != "":
			b.errorf(ErrConflict, pkey, "%s is listed twice", p)
		default:
			where[p] = pkey
			rt.Informative = append(rt.Informative, p)
		}
	}
	// The draft's mutually exclusive pairs (ocpsmtp.CheckExclusive), each
	// reported at its later entry.
	for i, p := range routeParts {
		for _, q := range routeParts[i+1:] {
			k0, k1 := where[p], where[q]
			if k0 != "" && k1 != "" && ocpsmtp.CheckExclusive([]ocpsmtp.Part{p, q}) != nil {
				b.errorf(ErrConflict, later(b.errs.pos, k0, k1), "%s and %s are mutually exclusive in one transaction (draft-ietf-opes-smtp-00 §3.1)", p, q)
			}
		}
	}
	if len(rt.Adaptive)+len(rt.Informative) == 0 && len(r.Adaptive)+len(r.Informative) == 0 {
		b.errorf(ErrMissing, key, "offers no part: list parts in adaptive and/or informative")
	}
	sortParts(rt.Adaptive)
	sortParts(rt.Informative)

	hkey := joinPath(key, "header_list")
	if len(r.HeaderList) > 0 && where[ocpsmtp.PartSINGLEHEADERS] == "" {
		b.errorf(ErrConflict, hkey, "needs the SINGLEHEADERS part")
	}
	for i, h := range r.HeaderList {
		if h == "*" {
			continue
		}
		if err := checkHeaderName(h); err != nil {
			b.errorf(ErrValue, indexPath(hkey, i), `%v (or "*" for all headers)`, err)
		}
	}
	if where[ocpsmtp.PartSINGLEHEADERS] != "" {
		rt.HeaderList = r.HeaderList
		if len(rt.HeaderList) == 0 {
			rt.HeaderList = []string{"*"}
		}
	}
}

// later returns the key that appears later in the file.
func later(p positions, k0, k1 string) string {
	a, b := p.find(k0), p.find(k1)
	if a.line > b.line || a.line == b.line && a.col > b.col {
		return k0
	}
	return k1
}

func sortParts(list []ocpsmtp.Part) {
	slices.SortFunc(list, func(a, b ocpsmtp.Part) int {
		return slices.Index(routeParts[:], a) - slices.Index(routeParts[:], b)
	})
}

func (b *builder) match(key string, r *rawMatch) Match {
	m := Match{Authenticated: r.Authenticated, NonSMTP: r.NonSMTP}
	for i, d := range r.DaemonName {
		if d == "" {
			b.errorf(ErrValue, indexPath(joinPath(key, "daemon_name"), i), "empty daemon name")
			continue
		}
		m.DaemonNames = append(m.DaemonNames, d)
	}
	for i, n := range r.ClientNetwork {
		p, err := parseNetwork(n)
		if err != nil {
			b.errorf(ErrValue, indexPath(joinPath(key, "client_network"), i), "%v", err)
			continue
		}
		m.ClientNetworks = append(m.ClientNetworks, p)
	}
	m.SenderDomains = b.domains(joinPath(key, "sender_domain"), r.SenderDomain)
	m.RcptDomains = b.domains(joinPath(key, "rcpt_domain"), r.RcptDomain)
	return m
}

func (b *builder) domains(key string, list []string) []string {
	var out []string
	for i, d := range list {
		v, err := checkDomain(d)
		if err != nil {
			b.errorf(ErrValue, indexPath(key, i), `%v (write "example.com", or ".example.com" for its subdomains)`, err)
			continue
		}
		out = append(out, v)
	}
	return out
}

func (b *builder) skips(raw []rawSkip) {
	for i, r := range raw {
		key := indexPath("skip", i)
		s := &SkipRule{Name: r.Name, Index: i, Match: b.match(key, &r.rawMatch)}
		if s.Name == "" {
			s.Name = fmt.Sprintf("skip-%d", i+1)
		}
		if s.Match.IsEmpty() && r.rawMatch.isEmpty() {
			b.errorf(ErrMissing, key, "a skip rule needs at least one condition (daemon_name, client_network, authenticated, sender_domain, rcpt_domain or non_smtp)")
		}
		b.cfg.Skips = append(b.cfg.Skips, s)
	}
}

func (m *rawMatch) isEmpty() bool {
	return len(m.DaemonName)+len(m.ClientNetwork)+len(m.SenderDomain)+len(m.RcptDomain) == 0 &&
		m.Authenticated == nil && m.NonSMTP == nil
}
