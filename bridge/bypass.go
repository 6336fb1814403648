package bridge

import (
	"strings"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// bypassRequested reports whether the message's OPES-Bypass fields ask to
// bypass every service of the transaction's group, and all of them may be
// bypassed (docs/profile.md 13). A request that names only some services
// is logged and not honoured.
func (s *session) bypassRequested() bool {
	p := s.policy()
	mt := s.mt
	if p.Bypassable == nil || mt.route == nil {
		return false
	}
	var values []string
	for _, h := range mt.headers {
		if strings.EqualFold(h.name, "OPES-Bypass") {
			values = append(values, h.value)
		}
	}
	if len(values) == 0 {
		return false
	}
	all, uris, err := ocpsmtp.ParseBypass(strings.Join(values, ","))
	if err != nil {
		s.log.Info("ignoring a malformed OPES-Bypass field", "err", err)
		return false
	}
	services := mt.route.Chain.Group
	named := map[string]bool{}
	for _, u := range uris {
		known := u == p.SystemURI
		for _, svc := range services {
			if svc.URI == u {
				known = true
			}
		}
		if !known || u == p.SystemURI {
			// The system URI, or an entity we do not know (RFC 3897
			// §4.3), names every service.
			all = true
		}
		named[u] = true
	}
	for _, svc := range services {
		if !all && !named[svc.URI] {
			s.log.Info("OPES-Bypass names only some services of the chain; not honoured", "route", mt.route.Name)
			return false
		}
		if !p.Bypassable(svc.URI) {
			s.log.Info("OPES-Bypass asks for a service that may not be bypassed; not honoured", "service", svc.URI)
			return false
		}
	}
	s.log.Info("OPES-Bypass honoured", "route", mt.route.Name)
	return true
}
