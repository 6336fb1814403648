package callout

import (
	"slices"

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

// answer narrows the offer to the needs.
func answer(offer ocpsmtp.Profile, needs Needs) ocpsmtp.Profile {
	ans := ocpsmtp.Profile{URI: offer.URI}
	wants := func(p ocpsmtp.Part) (adapt, read bool) {
		q := p
		if q == ocpsmtp.PartEHLO {
			q = ocpsmtp.PartHELO
		}
		return needs.Adapts(q), needs.Reads(q)
	}
	for _, p := range offer.Adaptive {
		switch adapt, read := wants(p); {
		case adapt:
			ans.Adaptive = append(ans.Adaptive, p)
		case read:
			ans.Informative = append(ans.Informative, p)
		}
	}
	for _, p := range offer.Informative {
		if _, read := wants(p); read && !contains(ans.Adaptive, p) && !contains(ans.Informative, p) {
			ans.Informative = append(ans.Informative, p)
		}
	}
	byRank := func(a, b ocpsmtp.Part) int { return a.Rank() - b.Rank() }
	slices.SortStableFunc(ans.Adaptive, byRank)
	slices.SortStableFunc(ans.Informative, byRank)
	return ans
}

func contains(parts []ocpsmtp.Part, p ocpsmtp.Part) bool {
	for _, q := range parts {
		if q == p {
			return true
		}
	}
	return false
}
