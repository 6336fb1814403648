package ocpsmtp

import "github.com/opes-milter/opes-milter/ocp"

// Feature returns p as the OCP feature carried in NO and NR: the URI and
// the members Adaptive-Parts, Informative-Parts, Header-List and
// Extensions (canonical names; empty lists omitted, as an omitted list
// means an empty one). A Header-List entry "*" goes on the wire quoted,
// "1:*", since "*" is not a safe-OCTET.
func (p Profile) Feature() ocp.Feature {
	return ocp.Feature{URI: p.URI, Params: p.members()}
}

// ParseProfile reads an OCP/SMTP profile feature. It accepts the spellings
// of the draft's examples as aliases (Adaptive-Commands,
// Informative-Commands; a Header-List "*" whether it came quoted or bare,
// the latter needing ocp.Decoder.AllowBareStar), keeps part tokens it does
// not know (a server ignores them, a processor's CheckAnswer refuses them)
// and ignores unknown members. A URI other than ReceiverURI or SenderURI,
// a member given twice (under either spelling) or a member of the wrong
// type is a *NegotiationError.
func ParseProfile(f ocp.Feature) (Profile, error) {
	return parseMembers(f.URI, f.Params)
}

// Known returns p restricted to the parts this package knows, as a callout
// server reads an offer (draft §3.1: unknown am-part atoms are ignored).
func (p Profile) Known() Profile {
	q := p
	q.Adaptive = knownParts(p.Adaptive)
	q.Informative = knownParts(p.Informative)
	return q
}

func knownParts(ps []Part) []Part {
	var out []Part
	for _, p := range ps {
		if p.Known() {
			out = append(out, p)
		}
	}
	return out
}
