package ocpsmtp

// Part is an application message part (am-part, draft §3.1): the token that
// names a piece of an SMTP transaction in the Adaptive-Parts and
// Informative-Parts lists and in the AM-Part parameter of a DUM. Tokens are
// case-sensitive. A Part value may hold a token this package does not know
// (a peer's extension); Known tells them apart.
type Part string

// The parts of the profiles. PartIP is an opes-milter extension (the
// draft's examples use it without defining it); the others are the
// draft's. VRFY and EXPN are defined by the draft but never offered by
// opes-milter: no milter event carries them.
const (
	PartIP            Part = "IP"
	PartEHLO          Part = "EHLO"
	PartHELO          Part = "HELO"
	PartMAIL          Part = "MAIL"
	PartRCPT          Part = "RCPT"
	PartVRFY          Part = "VRFY"
	PartEXPN          Part = "EXPN"
	PartRAWDATA       Part = "RAWDATA"
	PartALLHEADERS    Part = "ALLHEADERS"
	PartSINGLEHEADERS Part = "SINGLEHEADERS"
	PartBODY          Part = "BODY"
	PartSECTIONS      Part = "SECTIONS"
)

// rank orders the parts as their SMTP commands occur (draft §3.2.1): a
// transaction sends parts with non-decreasing ranks.
var ranks = map[Part]int{
	PartIP:            1,
	PartEHLO:          2,
	PartHELO:          2,
	PartMAIL:          3,
	PartRCPT:          4,
	PartVRFY:          0,
	PartEXPN:          0,
	PartRAWDATA:       5,
	PartALLHEADERS:    5,
	PartSINGLEHEADERS: 5,
	PartBODY:          6,
	PartSECTIONS:      6,
}

// ParsePart returns the part named by s and whether s is a part this
// package knows. Matching is exact: "rcpt" is not RCPT, and "DATA" (used
// by the draft's examples, forbidden by its §3.1) is not a part.
func ParsePart(s string) (Part, bool) {
	p := Part(s)
	_, ok := ranks[p]
	return p, ok
}

// Known reports whether p is one of the parts of this package.
func (p Part) Known() bool {
	_, ok := ranks[p]
	return ok
}

// Splittable reports whether the part may span several DUM messages
// (draft §3.3.1): RAWDATA, ALLHEADERS, BODY and SECTIONS (each section
// instance may span several). Every other part travels in exactly one DUM.
func (p Part) Splittable() bool {
	switch p {
	case PartRAWDATA, PartALLHEADERS, PartBODY, PartSECTIONS:
		return true
	}
	return false
}

// Data reports whether p is a part of the mail data (after DATA).
func (p Part) Data() bool {
	switch p {
	case PartRAWDATA, PartALLHEADERS, PartSINGLEHEADERS, PartBODY, PartSECTIONS:
		return true
	}
	return false
}

// Instanced reports whether a transaction may carry several instances of
// p, each in its own DUM sequence and identified by an AM-Index parameter:
// SINGLEHEADERS and SECTIONS. (RCPT instances are identified by their
// order; see docs/profile.md.)
func (p Part) Instanced() bool {
	return p == PartSINGLEHEADERS || p == PartSECTIONS
}

// Rank is the position of p in SMTP order: IP 1, EHLO/HELO 2, MAIL 3,
// RCPT 4, RAWDATA/ALLHEADERS/SINGLEHEADERS 5, BODY/SECTIONS 6. Parts
// outside a mail transaction (VRFY, EXPN) and unknown parts rank 0. Within
// one transaction each direction sends its parts with non-decreasing rank.
func (p Part) Rank() int { return ranks[p] }

// exclusive lists the mutually exclusive pairs of draft §3.2.1.
var exclusive = [][2]Part{
	{PartRAWDATA, PartALLHEADERS},
	{PartRAWDATA, PartSINGLEHEADERS},
	{PartRAWDATA, PartBODY},
	{PartRAWDATA, PartSECTIONS},
	{PartALLHEADERS, PartSINGLEHEADERS},
	{PartBODY, PartSECTIONS},
}

// CheckExclusive returns an *ExclusiveError naming the first mutually
// exclusive pair found in parts (draft §3.2.1: RAWDATA vs the header and
// body parts, ALLHEADERS vs SINGLEHEADERS, BODY vs SECTIONS), or nil.
func CheckExclusive(parts []Part) error {
	for _, x := range exclusive {
		if contains(parts, x[0]) && contains(parts, x[1]) {
			return &ExclusiveError{A: x[0], B: x[1]}
		}
	}
	return nil
}

// Widen resolves conflicts between the parts several services want: when
// parts holds a mutually exclusive pair, every data part is replaced by
// RAWDATA, from which the callout server derives headers, body and
// sections itself. The result keeps the order of parts, has no
// duplicates, and passes CheckExclusive.
func Widen(parts []Part) []Part {
	conflict := CheckExclusive(parts) != nil
	out := make([]Part, 0, len(parts))
	for _, p := range parts {
		if conflict && p.Data() {
			p = PartRAWDATA
		}
		if !contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

func contains(parts []Part, p Part) bool {
	for _, q := range parts {
		if q == p {
			return true
		}
	}
	return false
}
