package ocpsmtp

import (
	"strings"

	"github.com/opes-milter/opes-milter/ocp"
)

// The profile URIs (draft §3.2), exactly as the draft spells them.
const (
	ReceiverURI = "http://iana.org/opes/ocp/SMTP/receiver"
	SenderURI   = "http://iana.org/opes/ocp/SMTP/sender"
)

// Members of the profile feature (draft §3.2.2-§3.2.6, §3.4.1), and the
// spellings of the draft's examples, accepted when reading only.
const (
	ParamAdaptiveParts       = "Adaptive-Parts"
	ParamInformativeParts    = "Informative-Parts"
	ParamHeaderList          = "Header-List"
	ParamExtensions          = "Extensions"
	ParamAdaptiveCommands    = "Adaptive-Commands"
	ParamInformativeCommands = "Informative-Commands"
)

// AllHeaders is the Header-List entry that asks for every header field.
const AllHeaders = "*"

// Profile is one OCP/SMTP profile feature as offered in NO or selected in
// NR: which parts the server may change (Adaptive), which it only reads
// (Informative), which header fields it wants as SINGLEHEADERS
// (HeaderList, NR only) and which SMTP extensions it knows (Extensions,
// EHLO keywords, NR only).
type Profile struct {
	URI         string
	Adaptive    []Part
	Informative []Part
	HeaderList  []string
	Extensions  []string
}

// Has reports whether part is in p's adaptive and in its informative list.
func (p Profile) Has(part Part) (adaptive, informative bool) {
	return contains(p.Adaptive, part), contains(p.Informative, part)
}

// Parts returns the adaptive parts followed by the informative ones.
func (p Profile) Parts() []Part {
	out := make([]Part, 0, len(p.Adaptive)+len(p.Informative))
	out = append(out, p.Adaptive...)
	return append(out, p.Informative...)
}

// WantsHeader reports whether the header field called name (any case) is
// to be sent as a SINGLEHEADERS instance under p.
func (p Profile) WantsHeader(name string) bool {
	for _, h := range p.HeaderList {
		if h == AllHeaders || strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// members returns the named members of the feature structure, canonical
// names, empty lists omitted.
func (p Profile) members() []ocp.Param {
	var ps []ocp.Param
	add := func(name string, ss []string) {
		if len(ss) > 0 {
			ps = append(ps, ocp.NewParam(name, atoms(ss)))
		}
	}
	add(ParamAdaptiveParts, partStrings(p.Adaptive))
	add(ParamInformativeParts, partStrings(p.Informative))
	add(ParamHeaderList, p.HeaderList)
	add(ParamExtensions, p.Extensions)
	return ps
}

// parseMembers reads the named members of a profile feature structure.
func parseMembers(uri string, named []ocp.Param) (Profile, error) {
	if uri != ReceiverURI && uri != SenderURI {
		return Profile{}, &NegotiationError{Reason: "not an OCP/SMTP profile URI: " + uri}
	}
	p := Profile{URI: uri}
	seen := map[string]bool{}
	for _, m := range named {
		canon := m.Name
		switch m.Name {
		case ParamAdaptiveCommands:
			canon = ParamAdaptiveParts
		case ParamInformativeCommands:
			canon = ParamInformativeParts
		case ParamAdaptiveParts, ParamInformativeParts, ParamHeaderList, ParamExtensions:
		default:
			continue // unknown members are ignored (RFC 4037 §11)
		}
		if seen[canon] {
			return Profile{}, &NegotiationError{Reason: "member " + canon + " given twice"}
		}
		seen[canon] = true
		v, ok := single(m)
		if !ok {
			return Profile{}, &NegotiationError{Reason: "member " + m.Name + " needs exactly one value"}
		}
		l, ok := atomList(v)
		if !ok {
			return Profile{}, &NegotiationError{Reason: "member " + m.Name + " is not a list of atoms"}
		}
		switch canon {
		case ParamAdaptiveParts, ParamInformativeParts:
			parts := make([]Part, 0, len(l))
			for _, s := range l {
				if !isName(s) {
					return Profile{}, &NegotiationError{Reason: "member " + m.Name + ": bad part token " + quote(s)}
				}
				if !contains(parts, Part(s)) {
					parts = append(parts, Part(s))
				}
			}
			if canon == ParamAdaptiveParts {
				p.Adaptive = parts
			} else {
				p.Informative = parts
			}
		case ParamHeaderList:
			for _, s := range l {
				if s != AllHeaders && !isFieldName(s) {
					return Profile{}, &NegotiationError{Reason: "Header-List: bad field name " + quote(s)}
				}
			}
			p.HeaderList = l
		case ParamExtensions:
			for _, s := range l {
				if !isEHLOKeyword(s) {
					return Profile{}, &NegotiationError{Reason: "Extensions: bad keyword " + quote(s)}
				}
			}
			p.Extensions = l
		}
	}
	return p, nil
}

// CheckAnswer checks answer, the profile a callout server selected in its
// NR, against offer, the processor's NO. Any violation is a
// *NegotiationError and closes the connection (CE 400):
//
//   - a URI other than the offer's (T9);
//   - an adaptive part not offered as adaptive, or an informative part not
//     offered at all (T44, draft §3.2.3-§3.2.4);
//   - a part in both lists (T45);
//   - mutually exclusive parts across both lists (T46, wraps *ExclusiveError);
//   - Header-List without SINGLEHEADERS, or SINGLEHEADERS without
//     Header-List (T47, draft §3.2.5).
func CheckAnswer(offer, answer Profile) error {
	if answer.URI != offer.URI {
		return &NegotiationError{Reason: "answer selects " + answer.URI + ", offer was " + offer.URI}
	}
	for _, p := range answer.Adaptive {
		if !contains(offer.Adaptive, p) {
			return &NegotiationError{Part: p, Reason: "adaptive part not offered as adaptive"}
		}
		if contains(answer.Informative, p) {
			return &NegotiationError{Part: p, Reason: "part listed as adaptive and informative"}
		}
	}
	for _, p := range answer.Informative {
		if !contains(offer.Adaptive, p) && !contains(offer.Informative, p) {
			return &NegotiationError{Part: p, Reason: "informative part not offered"}
		}
	}
	if err := CheckExclusive(answer.Parts()); err != nil {
		return &NegotiationError{Reason: "mutually exclusive parts selected", Err: err}
	}
	a, i := answer.Has(PartSINGLEHEADERS)
	switch {
	case len(answer.HeaderList) > 0 && !a && !i:
		return &NegotiationError{Reason: "Header-List without SINGLEHEADERS"}
	case (a || i) && len(answer.HeaderList) == 0:
		return &NegotiationError{Part: PartSINGLEHEADERS, Reason: "SINGLEHEADERS without Header-List"}
	}
	return nil
}

func partStrings(ps []Part) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}

// isEHLOKeyword: RFC 5321 ehlo-keyword, (ALPHA / DIGIT) *(ALPHA / DIGIT / "-").
func isEHLOKeyword(s string) bool {
	if s == "" || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlpha(c) && !isDigit(c) && c != '-' {
			return false
		}
	}
	return true
}

// isFieldName: RFC 5322 ftext, printable ASCII but ':'.
func isFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return "\"" + strings.ToValidUTF8(s, "?") + "\""
}
