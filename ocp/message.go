package ocp

// Value is one OCP value (RFC 4037 §3.1): an Atom, a List or a Struct.
// The set is sealed: only the types of this package implement it.
type Value interface {
	isValue()
}

// Atom is a bare or quoted atom, holding its decoded octets. The encoder
// writes it bare when every octet is a safe-OCTET (ALPHA / DIGIT / "-" / "_")
// and the atom is not empty, and quoted ("size:octets") otherwise, so the
// wire form is always canonical.
type Atom []byte

// List is a parenthesised, comma-separated list of values.
type List []Value

// Struct is a structure: "{" anonymous values, then named values "}".
type Struct struct {
	Anon  []Value
	Named []Param
}

// Param is one named parameter ("Name: value"). Values normally holds exactly
// one value; RFC 4037 declares Kept with two (offset and size), which the
// grammar does not allow but the RFC's examples use, so a parameter may carry
// several space-separated values.
type Param struct {
	Name   string
	Values []Value
}

// Message is one OCP message: a name, anonymous parameters, named parameters
// and an optional payload. HasPayload distinguishes an absent payload from an
// empty one ("0:").
type Message struct {
	Name       string
	Anon       []Value
	Named      []Param
	Payload    []byte
	HasPayload bool
}

func (Atom) isValue()   {}
func (List) isValue()   {}
func (Struct) isValue() {}

// Param returns the named parameter called name and whether it is present.
func (m *Message) Param(name string) (Param, bool) {
	for _, p := range m.Named {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// Member returns the named member called name of s and whether it is present.
func (s Struct) Member(name string) (Param, bool) {
	for _, p := range s.Named {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// Value returns the first value of p, or nil when p has none.
func (p Param) Value() Value {
	if len(p.Values) == 0 {
		return nil
	}
	return p.Values[0]
}

// NewParam returns a parameter with one value.
func NewParam(name string, v Value) Param { return Param{Name: name, Values: []Value{v}} }
