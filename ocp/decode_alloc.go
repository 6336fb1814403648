package ocp

// This file holds the decoder's allocation strategy. A typical data
// message (DUM with two anonymous and one or two named parameters) costs
// two allocations: one block holding the Message and its small parameter
// slices, and the payload. Short bare atoms are carved from a shared slab
// and boxed once; atoms repeating across messages (an xid, "RAWDATA") are
// reused from a small cache. Decoded atoms may therefore be shared
// between messages of one Decoder and must be treated as read-only; their
// capacity equals their length, so appending to one copies it.

const (
	smallAtom   = 32   // longest atom carved from the slab and cached
	slabSize    = 4096 // bytes per slab
	atomCacheSz = 256  // entries of the atom cache, a power of two
	blockAnon   = 3
	blockNamed  = 3
	blockVals   = 4
)

// span is a named parameter being decoded: its name and the range of its
// values in allocator.vals.
type span struct {
	name     string
	from, to int
}

// msgBlock is one allocation holding a message and its small slices.
type msgBlock struct {
	m     Message
	anon  [blockAnon]Value
	named [blockNamed]Param
	vals  [blockVals]Value
}

// allocator is the Decoder's scratch space for the message being decoded.
type allocator struct {
	anon  []Value
	named []span
	vals  []Value
	slab  []byte
	cache [atomCacheSz]Value
}

func (a *allocator) reset() {
	clear(a.anon)
	clear(a.vals)
	a.anon, a.named, a.vals = a.anon[:0], a.named[:0], a.vals[:0]
}

// build returns a Message holding the scratch parameters.
func (a *allocator) build() *Message {
	var (
		m     *Message
		anon  []Value
		named []Param
		vals  []Value
	)
	na, nn, nv := len(a.anon), len(a.named), len(a.vals)
	if na <= blockAnon && nn <= blockNamed && nv <= blockVals {
		b := new(msgBlock)
		m, anon, named, vals = &b.m, b.anon[:na:na], b.named[:nn:nn], b.vals[:nv:nv]
	} else {
		m, anon, named, vals = new(Message), make([]Value, na), make([]Param, nn), make([]Value, nv)
	}
	copy(anon, a.anon)
	copy(vals, a.vals)
	for i, sp := range a.named {
		named[i] = Param{Name: sp.name, Values: vals[sp.from:sp.to:sp.to]}
	}
	if na > 0 {
		m.Anon = anon
	}
	if nn > 0 {
		m.Named = named
	}
	a.reset()
	return m
}

// atom returns b as an Atom value, from the cache when an equal short atom
// was decoded before.
func (a *allocator) atom(b []byte) Value {
	if len(b) > smallAtom {
		return Atom(append(make([]byte, 0, len(b)), b...))
	}
	h := uint32(2166136261)
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	slot := &a.cache[h&(atomCacheSz-1)]
	if v := *slot; v != nil && string(v.(Atom)) == string(b) {
		return v
	}
	if len(a.slab) < len(b) {
		a.slab = make([]byte, slabSize)
	}
	at := Atom(a.slab[:len(b):len(b)])
	a.slab = a.slab[len(b):]
	copy(at, b)
	var v Value = at
	*slot = v
	return v
}
