package ocpsmtp

import (
	"fmt"

	"github.com/opes-milter/opes-milter/ocp"
)

// Typed views of the Core messages both roles read under the profile, so
// that no code outside ocp and ocpsmtp reads parameters by position.

// AMS is an application message start (RFC 4037 §11.5) as the profile
// reads it.
type AMS struct {
	Xid int64
	// Services lists the services the sender applies, when the message
	// carries the Services parameter (HasServices). A callout server
	// names exactly the services that act on the transaction's content
	// (docs/profile.md 12); the processor's OPES-Via then names those.
	Services    []ocp.Service
	HasServices bool
}

// ParseAMS reads an AMS.
func ParseAMS(m *ocp.Message) (AMS, error) {
	xid, err := m.AnonUint(0)
	if err != nil {
		return AMS{}, err
	}
	a := AMS{Xid: xid}
	if p, ok := m.Param(ocp.ParamServices); ok {
		a.Services, err = ocp.ParseServices(p.Value())
		if err != nil {
			return AMS{}, fmt.Errorf("AMS Services: %w", err)
		}
		a.HasServices = true
	}
	return a, nil
}

// Message returns the AMS for transaction xid, with the Services parameter
// when HasServices is set.
func (a AMS) Message() *ocp.Message {
	m := &ocp.Message{Name: ocp.MsgAMS, Anon: []ocp.Value{ocp.Num(a.Xid)}}
	if a.HasServices {
		m.Named = []ocp.Param{ServicesParam(a.Services)}
	}
	return m
}

// ServicesParam returns the Services parameter naming ss.
func ServicesParam(ss []ocp.Service) ocp.Param {
	return ocp.NewParam(ocp.ParamServices, ocp.ServicesValue(ss))
}

// AME is an application message end (RFC 4037 §11.6): its result, 200 when
// the message carries none.
type AME struct {
	Xid    int64
	Result ocp.Result
}

// ParseAME reads an AME.
func ParseAME(m *ocp.Message) (AME, error) {
	xid, err := m.AnonUint(0)
	if err != nil {
		return AME{}, err
	}
	a := AME{Xid: xid, Result: ocp.Result{Code: ocp.CodeOK}}
	if len(m.Anon) > 1 {
		if a.Result, err = ocp.ParseResult(m.Anon[1]); err != nil {
			return AME{}, fmt.Errorf("AME: %w", err)
		}
	}
	return a, nil
}

// DUY is a server's use of kept original data (RFC 4037 §11.11) with the
// profile's annotations (Add-Header and Advice, draft §3.3.4-§3.3.5).
type DUY struct {
	Xid          int64
	Offset, Size int64
	AddHeader    string
	Advice       Advice

	// AddHeaderTop is Add-Header-At: top (docs/profile.md 8).
	AddHeaderTop bool
}

// ParseDUY reads a DUY.
func ParseDUY(m *ocp.Message) (DUY, error) {
	xid, err := m.AnonUint(0)
	if err != nil {
		return DUY{}, err
	}
	off, err1 := m.AnonUint(1)
	size, err2 := m.AnonUint(2)
	if err1 != nil || err2 != nil {
		return DUY{}, fmt.Errorf("DUY: bad offset or size")
	}
	d := DUY{Xid: xid, Offset: off, Size: size}
	if p, ok := m.Param(ParamAddHeader); ok {
		v, ok := p.Value().(ocp.Atom)
		if !ok {
			return DUY{}, fmt.Errorf("DUY: Add-Header is not an atom")
		}
		d.AddHeader = string(v)
	}
	if p, ok := m.Param(ParamAddHeaderAt); ok {
		if v, ok := p.Value().(ocp.Atom); !ok || string(v) != AddHeaderAtTop || d.AddHeader == "" {
			return DUY{}, fmt.Errorf("DUY: Add-Header-At must be %q, with Add-Header", AddHeaderAtTop)
		}
		d.AddHeaderTop = true
	}
	if p, ok := m.Param(ParamAdvice); ok {
		v, ok := p.Value().(ocp.Atom)
		if !ok {
			return DUY{}, fmt.Errorf("DUY: Advice is not an atom")
		}
		d.Advice = Advice(v)
		if !d.Advice.Valid() {
			return DUY{}, fmt.Errorf("DUY: Advice is not an advice token")
		}
	}
	return d, nil
}

// DWSR is a server's want-stop-receiving-data (RFC 4037 §11.12): it needs
// no original data beyond OrgSize octets.
type DWSR struct {
	Xid     int64
	OrgSize int64
}

// ParseDWSR reads a DWSR.
func ParseDWSR(m *ocp.Message) (DWSR, error) {
	xid, err := m.AnonUint(0)
	if err != nil {
		return DWSR{}, err
	}
	n, err := m.AnonUint(1)
	if err != nil {
		return DWSR{}, fmt.Errorf("DWSR: %w", err)
	}
	return DWSR{Xid: xid, OrgSize: n}, nil
}

// TE is a transaction end (RFC 4037 §11.4): its result, 200 when the
// message carries none.
type TE struct {
	Xid    int64
	Result ocp.Result
}

// ParseTE reads a TE.
func ParseTE(m *ocp.Message) (TE, error) {
	a, err := ParseAME(m) // same shape: xid [result]
	if err != nil {
		return TE{}, fmt.Errorf("TE: %w", err)
	}
	return TE(a), nil
}

// Valid reports whether a can travel as an Advice value: a token (what
// ParseData accepts), known or not.
func (a Advice) Valid() bool { return isName(string(a)) }
