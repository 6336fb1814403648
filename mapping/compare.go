package mapping

import (
	"fmt"
	"slices"
	"strings"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// Needs is what a callout service works on, in the parts of the SMTP
// profile: the parts it adapts and those it only reads. HELO stands for
// EHLO too.
type Needs struct {
	Adapt, Read []ocpsmtp.Part
}

// CompareCallout compares the two sides of a file that configures both
// opes-milter and opes-callout: every service a chain names must be
// offered by a [callout.services] table with the same URI, and every route
// must offer the parts its chain's services need (adaptive for what they
// adapt). needs tells what a callout service works on (package callout
// knows; mapping does not). The error lists every mismatch, each an
// *Error naming file:line:key; nil without a [callout] table or without
// routes.
func (c *Config) CompareCallout(needs func(*CalloutService) Needs) error {
	if c.Callout == nil || !c.HasMilter() {
		return nil
	}
	errs := &errList{file: c.File, pos: c.pos}
	var uris []string
	for _, s := range c.Callout.Services {
		uris = append(uris, fmt.Sprintf("%q", s.URI))
	}
	have := strings.Join(uris, ", ")
	if have == "" {
		have = "none"
	}
	for _, s := range c.Services {
		if !c.used(s) {
			continue
		}
		if _, ok := c.Callout.Service(s.URI); !ok {
			errs.add(ErrReference, joinPath(joinPath("services", s.Name), "uri"),
				"%q is offered by no [callout.services] table of this file (they offer %s); the callout server will refuse the service group", s.URI, have)
		}
	}
	for _, r := range c.Routes {
		key := indexPath("routes", r.Index)
		for _, s := range r.Chain.Services {
			cs, ok := c.Callout.Service(s.URI)
			if !ok {
				continue
			}
			n := needs(cs)
			for _, p := range n.Adapt {
				if !r.offers(p, true) {
					errs.add(ErrConflict, joinPath(key, "adaptive"),
						"route %q does not offer %s as adaptive, which service %q (callout.services.%s, %s) adapts", r.Name, p, s.Name, cs.Name, cs.Kind)
				}
			}
			for _, p := range n.Read {
				if !slices.Contains(n.Adapt, p) && !r.offers(p, false) {
					errs.add(ErrConflict, joinPath(key, "informative"),
						"route %q does not offer %s, which service %q (callout.services.%s, %s) reads", r.Name, p, s.Name, cs.Name, cs.Kind)
				}
			}
		}
	}
	return errs.err()
}

// used reports whether a route's chain names s.
func (c *Config) used(s *Service) bool {
	for _, r := range c.Routes {
		if slices.Contains(r.Chain.Services, s) {
			return true
		}
	}
	return false
}

// offers reports whether the route offers p (adaptive if asked), HELO and
// EHLO standing for each other, a data part carried by a wider one as the
// callout server takes it (SINGLEHEADERS by ALLHEADERS, SECTIONS by BODY,
// every data part by RAWDATA).
func (r *Route) offers(p ocpsmtp.Part, adaptive bool) bool {
	has := r.Has
	if adaptive {
		has = r.IsAdaptive
	}
	carriers := map[ocpsmtp.Part][]ocpsmtp.Part{
		ocpsmtp.PartHELO:          {ocpsmtp.PartHELO, ocpsmtp.PartEHLO},
		ocpsmtp.PartEHLO:          {ocpsmtp.PartEHLO, ocpsmtp.PartHELO},
		ocpsmtp.PartSINGLEHEADERS: {ocpsmtp.PartSINGLEHEADERS, ocpsmtp.PartALLHEADERS, ocpsmtp.PartRAWDATA},
		ocpsmtp.PartALLHEADERS:    {ocpsmtp.PartALLHEADERS, ocpsmtp.PartRAWDATA},
		ocpsmtp.PartSECTIONS:      {ocpsmtp.PartSECTIONS, ocpsmtp.PartBODY, ocpsmtp.PartRAWDATA},
		ocpsmtp.PartBODY:          {ocpsmtp.PartBODY, ocpsmtp.PartRAWDATA},
	}[p]
	if carriers == nil {
		carriers = []ocpsmtp.Part{p}
	}
	for _, q := range carriers {
		if has(q) {
			return true
		}
	}
	return false
}
