package callout

import (
	"slices"
	"strings"

	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// Negotiate answers a processor's offer (the ocp.Server Negotiate hook).
// For a service group it selects the first OCP/SMTP profile offered and
// narrows it to what the group's chain needs: a part the chain adapts is
// adaptive when offered so (informative when only offered so), a part it
// reads is informative, other parts are dropped so the processor does not
// send or wait for them. Data parts are asked for as RAWDATA, from which
// headers, body and MIME sections are derived here. HELO stands for EHLO
// too, and the lists follow SMTP order. Server.Extensions is announced
// as the profile's Extensions. A group naming a service this server does not have is refused (NR
// without a feature). An offer for the whole connection (sg nil) is
// answered for all configured services.
func (s *Server) Negotiate(sg *ocp.Group, offer []ocp.Feature) (ocp.Feature, bool) {
	log := s.logger()
	chain := s.allServices()
	if sg != nil {
		c, err := s.chain(sg.Services)
		if err != nil {
			log.Warn("refusing service group", "sg", sg.ID, "err", err)
			return ocp.Feature{}, false
		}
		chain = c
	}
	needs := chain.Needs()
	for _, f := range offer {
		if f.URI != ocpsmtp.ReceiverURI && f.URI != ocpsmtp.SenderURI {
			continue
		}
		prof, err := ocpsmtp.ParseProfile(f)
		if err != nil {
			log.Warn("unusable profile offer", "err", err)
			continue
		}
		ans := answer(prof.Known(), needs)
		ans.Extensions = s.Extensions
		if err := ocpsmtp.CheckAnswer(prof, ans); err != nil {
			log.Error("negotiation answer fails the profile rules", "err", err)
			continue
		}
		for _, p := range needs.Adapt {
			if a, _ := ans.Has(p); !a && !(p == ocpsmtp.PartHELO && contains(ans.Adaptive, ocpsmtp.PartEHLO)) {
				log.Warn("processor does not offer a part the services adapt; they cannot act on it", "part", string(p))
			}
		}
		return ans.Feature(), true
	}
	return ocp.Feature{}, false
}

// answer narrows the offer to the needs. A needed data part the offer
// lacks is taken from the narrowest offered part that carries it (RAWDATA
// carries all; ALLHEADERS the fields of SINGLEHEADERS; BODY the
// SECTIONS); when the data parts so chosen exclude each other, RAWDATA is
// taken alone. SINGLEHEADERS comes with the Header-List of the needs,
// narrowed to the offer's.
func answer(offer ocpsmtp.Profile, needs Needs) ocpsmtp.Profile {
	ans := ocpsmtp.Profile{URI: offer.URI}
	offered := func(p ocpsmtp.Part) bool { a, i := offer.Has(p); return a || i }
	wants := func(p ocpsmtp.Part) (adapt, read bool) {
		q := p
		if q == ocpsmtp.PartEHLO {
			q = ocpsmtp.PartHELO
		}
		return needs.Adapts(q), needs.Reads(q)
	}
	add := func(p ocpsmtp.Part, adapt bool) {
		a, _ := offer.Has(p)
		switch {
		case contains(ans.Adaptive, p):
		case adapt && a:
			ans.Adaptive = append(ans.Adaptive, p)
			ans.Informative = slices.DeleteFunc(ans.Informative, func(q ocpsmtp.Part) bool { return q == p })
		case !contains(ans.Informative, p):
			ans.Informative = append(ans.Informative, p)
		}
	}
	for _, p := range offer.Parts() {
		if p.Data() {
			continue
		}
		if adapt, read := wants(p); read {
			add(p, adapt)
		}
	}
	adaptData := false
	for _, n := range append(append([]ocpsmtp.Part(nil), needs.Adapt...), needs.Read...) {
		if !n.Data() {
			continue
		}
		src, ok := carrier(n, offered)
		if !ok {
			continue
		}
		adaptData = adaptData || needs.Adapts(n)
		add(src, needs.Adapts(n))
	}
	if ocpsmtp.CheckExclusive(ans.Parts()) != nil && offered(ocpsmtp.PartRAWDATA) {
		drop := func(q ocpsmtp.Part) bool { return q.Data() }
		ans.Adaptive = slices.DeleteFunc(ans.Adaptive, drop)
		ans.Informative = slices.DeleteFunc(ans.Informative, drop)
		add(ocpsmtp.PartRAWDATA, adaptData)
	}
	if a, i := ans.Has(ocpsmtp.PartSINGLEHEADERS); a || i {
		ans.HeaderList = headerList(needs.HeaderList, offer.HeaderList)
		if len(ans.HeaderList) == 0 {
			// None of the fields needed is offered: nothing to send.
			drop := func(q ocpsmtp.Part) bool { return q == ocpsmtp.PartSINGLEHEADERS }
			ans.Adaptive = slices.DeleteFunc(ans.Adaptive, drop)
			ans.Informative = slices.DeleteFunc(ans.Informative, drop)
		}
	}
	byRank := func(a, b ocpsmtp.Part) int { return a.Rank() - b.Rank() }
	slices.SortStableFunc(ans.Adaptive, byRank)
	slices.SortStableFunc(ans.Informative, byRank)
	return ans
}

// carrier returns the offered part that carries the data of part n: n
// itself, or the narrowest wider part.
func carrier(n ocpsmtp.Part, offered func(ocpsmtp.Part) bool) (ocpsmtp.Part, bool) {
	var chain []ocpsmtp.Part
	switch n {
	case ocpsmtp.PartSINGLEHEADERS:
		chain = []ocpsmtp.Part{ocpsmtp.PartSINGLEHEADERS, ocpsmtp.PartALLHEADERS, ocpsmtp.PartRAWDATA}
	case ocpsmtp.PartSECTIONS:
		chain = []ocpsmtp.Part{ocpsmtp.PartSECTIONS, ocpsmtp.PartBODY, ocpsmtp.PartRAWDATA}
	default:
		chain = []ocpsmtp.Part{n, ocpsmtp.PartRAWDATA}
	}
	for _, p := range chain {
		if offered(p) {
			return p, true
		}
	}
	return "", false
}

// headerList returns the fields needed as SINGLEHEADERS that the offer
// has ("*" on either side stands for the other side's list).
func headerList(need, offer []string) []string {
	all := func(l []string) bool { return len(l) == 0 || slices.Contains(l, ocpsmtp.AllHeaders) }
	switch {
	case all(need) && all(offer):
		return []string{ocpsmtp.AllHeaders}
	case all(need):
		return offer
	case all(offer):
		return need
	}
	var out []string
	for _, h := range need {
		for _, o := range offer {
			if strings.EqualFold(h, o) {
				out = append(out, h)
				break
			}
		}
	}
	return out
}

func contains(parts []ocpsmtp.Part, p ocpsmtp.Part) bool {
	for _, q := range parts {
		if q == p {
			return true
		}
	}
	return false
}
