package ocpsmtp

import (
	"github.com/opes-milter/opes-milter/ocp"
)

// Named parameters of DUM and DUY under the profiles (draft §3.3-§3.4,
// plus AM-Index, an opes-milter extension), and the Core parameter Kept
// (RFC 4037 §11.9) they travel with.
const (
	ParamAMPart    = "AM-Part"    // DUM, both directions: the part of the payload
	ParamAMIndex   = "AM-Index"   // DUM: which SINGLEHEADERS/SECTIONS instance
	ParamAllow     = "Allow"      // DUM, processor only: what answers may carry
	ParamSMTPError = "SMTP-Error" // DUM, server only: an SMTP error reply
	ParamAddHeader = "Add-Header" // DUM and DUY, server only: one header field to add
	ParamAdvice    = "Advice"     // DUM and DUY, server only: see Advice
	ParamAMOPT     = "AM-OPT"     // DUM, processor only: what the MTA knows, see Opt
	ParamKept      = "Kept"       // DUM, processor only (Core): offset and size kept
)

// ParamAddHeaderAt, with the value AddHeaderAtTop, places the Add-Header
// field of the same message at the top of the header (an opes-milter
// extension, docs/profile.md section 8).
const (
	ParamAddHeaderAt = "Add-Header-At"
	AddHeaderAtTop   = "top"
)

// Atoms of the Allow list (draft §3.3.2).
const (
	AllowSMTPError = "SMTP-Error"
	AllowAdvice    = "Advice"
	AllowAddHeader = "Add-Header"
)

// Advice is the value of the Advice parameter, left "to be done" by the
// draft (§3.3.4). docs/profile.md defines the three values below and when
// each takes effect; an unknown value is ignored.
type Advice string

// The Advice values.
const (
	// AdviceAccept: adapt no further. Parts not yet answered count as
	// unchanged; the processor keeps the answers received so far, ends
	// its original flow with AME 206 and lets the MTA go on (never a
	// milter ACCEPT before end of message).
	AdviceAccept Advice = "Accept"
	// AdviceDiscard: accept the message and drop it silently. Takes
	// effect at end of message, whatever part it came with.
	AdviceDiscard Advice = "Discard"
	// AdviceQuarantine: accept the message but hold it (Postfix hold
	// queue, Sendmail quarantine). Takes effect at end of message.
	AdviceQuarantine Advice = "Quarantine"
)

// Known reports whether a is one of the defined Advice values.
func (a Advice) Known() bool {
	return a == AdviceAccept || a == AdviceDiscard || a == AdviceQuarantine
}

// Data holds the profile parameters of one DUM or DUY. The zero value of
// each field means "parameter absent".
type Data struct {
	Part      Part     // AM-Part; required on every DUM
	Index     string   // AM-Index: "n" for SINGLEHEADERS, "n.m..." for SECTIONS
	Allow     []string // Allow atoms (AllowSMTPError, ...)
	SMTPError string   // SMTP-Error, an SMTP reply without final CRLF
	AddHeader string   // Add-Header, one header field without final CRLF
	Advice    Advice   // Advice
	Opts      []Opt    // AM-OPT

	// AddHeaderTop is Add-Header-At: top: the Add-Header field goes to
	// the top of the header instead of its end.
	AddHeaderTop bool
}

// Allows reports whether atom is in d.Allow.
func (d Data) Allows(atom string) bool {
	for _, a := range d.Allow {
		if a == atom {
			return true
		}
	}
	return false
}

// Params returns d as named parameters, in a fixed order, omitting absent
// ones, to be appended to a DUM's or DUY's Core parameters.
func (d Data) Params() []ocp.Param {
	var ps []ocp.Param
	if d.Part != "" {
		ps = append(ps, ocp.NewParam(ParamAMPart, ocp.Atom(d.Part)))
	}
	if d.Index != "" {
		ps = append(ps, ocp.NewParam(ParamAMIndex, ocp.Atom(d.Index)))
	}
	if len(d.Allow) > 0 {
		ps = append(ps, ocp.NewParam(ParamAllow, atoms(d.Allow)))
	}
	if d.SMTPError != "" {
		ps = append(ps, ocp.NewParam(ParamSMTPError, ocp.Atom(d.SMTPError)))
	}
	if d.AddHeader != "" {
		ps = append(ps, ocp.NewParam(ParamAddHeader, ocp.Atom(d.AddHeader)))
		if d.AddHeaderTop {
			ps = append(ps, ocp.NewParam(ParamAddHeaderAt, ocp.Atom(AddHeaderAtTop)))
		}
	}
	if d.Advice != "" {
		ps = append(ps, ocp.NewParam(ParamAdvice, ocp.Atom(d.Advice)))
	}
	if len(d.Opts) > 0 {
		ps = append(ps, ocp.NewParam(ParamAMOPT, optList(d.Opts)))
	}
	return ps
}

// ParseData reads and checks the profile parameters of m, a DUM or DUY.
// It returns a *ParamError (transaction scope) when a parameter is
// duplicated, has the wrong type, or breaks a rule of docs/profile.md:
// a DUM without AM-Part; AM-Index on a part that has no instances or in
// the wrong form; SMTP-Error that ParseReply refuses, on a DUY, or with a
// non-empty payload; Add-Header that ParseHeaderField refuses or that
// names an OPES header. Other parameters are left to the caller.
func ParseData(m *ocp.Message) (Data, error) {
	var d Data
	seen := map[string]bool{}
	for _, p := range m.Named {
		if !isDataParam(p.Name) {
			continue
		}
		if seen[p.Name] {
			return Data{}, &ParamError{Name: p.Name, Reason: "duplicated"}
		}
		seen[p.Name] = true
		v, ok := single(p)
		if !ok {
			return Data{}, &ParamError{Name: p.Name, Reason: "needs exactly one value"}
		}
		if err := d.set(p.Name, v); err != nil {
			return Data{}, err
		}
	}
	if m.Name == "DUM" && d.Part == "" {
		return Data{}, &ParamError{Name: ParamAMPart, Reason: "missing on a DUM"}
	}
	if d.Index != "" {
		if _, err := ParseIndex(d.Part, d.Index); err != nil {
			return Data{}, &ParamError{Name: ParamAMIndex, Reason: "bad index", Err: err}
		}
	}
	if d.AddHeaderTop && d.AddHeader == "" {
		return Data{}, &ParamError{Name: ParamAddHeaderAt, Reason: "without Add-Header"}
	}
	if d.SMTPError != "" {
		switch {
		case m.Name == "DUY":
			return Data{}, &ParamError{Name: ParamSMTPError, Reason: "not allowed on a DUY"}
		case len(m.Payload) > 0:
			return Data{}, &ParamError{Name: ParamSMTPError, Reason: "the DUM payload must be empty"}
		}
	}
	return d, nil
}

func isDataParam(name string) bool {
	switch name {
	case ParamAMPart, ParamAMIndex, ParamAllow, ParamSMTPError, ParamAddHeader, ParamAddHeaderAt, ParamAdvice, ParamAMOPT:
		return true
	}
	return false
}

func (d *Data) set(name string, v ocp.Value) error {
	if name == ParamAllow {
		l, ok := atomList(v)
		if !ok {
			return &ParamError{Name: name, Reason: "not a list of atoms"}
		}
		if len(l) > 0 { // an empty Allow list is an absent one
			d.Allow = l
		}
		return nil
	}
	if name == ParamAMOPT {
		opts, err := parseOpts(v)
		if err != nil {
			return err
		}
		if len(opts) > 0 {
			d.Opts = opts
		}
		return nil
	}
	s, ok := atomOf(v)
	if !ok {
		return &ParamError{Name: name, Reason: "not an atom"}
	}
	switch name {
	case ParamAMPart:
		if !isName(s) {
			return &ParamError{Name: name, Reason: "not a part token"}
		}
		d.Part = Part(s)
	case ParamAMIndex:
		if s == "" {
			return &ParamError{Name: name, Reason: "empty"}
		}
		d.Index = s
	case ParamSMTPError:
		if _, err := ParseReply(s); err != nil {
			return &ParamError{Name: name, Reason: "unusable SMTP reply", Err: err}
		}
		d.SMTPError = s
	case ParamAddHeader:
		n, _, err := ParseHeaderField(s)
		if err != nil {
			return &ParamError{Name: name, Reason: "unusable header field", Err: err}
		}
		if IsOPESHeader(n) {
			return &ParamError{Name: name, Reason: "OPES trace and bypass fields belong to the processor"}
		}
		d.AddHeader = s
	case ParamAddHeaderAt:
		if s != AddHeaderAtTop {
			return &ParamError{Name: name, Reason: "the only position is " + AddHeaderAtTop}
		}
		d.AddHeaderTop = true
	case ParamAdvice:
		if !isName(s) {
			return &ParamError{Name: name, Reason: "not an advice token"}
		}
		d.Advice = Advice(s)
	}
	return nil
}
