package ocp

import (
	"io"
)

// The grammar rules below the message level (RFC 4037 §3.1): names,
// anonymous and named parameters, structures, lists and atoms.

// name reads name = ALPHA *safe-OCTET.
func (d *Decoder) name() (string, error) {
	c, err := d.peekByte()
	if err != nil {
		return "", err
	}
	if !isAlpha(c) {
		return "", d.syntax("name", "expected ALPHA, got %q", c)
	}
	d.scratch, err = d.safeRun(d.scratch[:0])
	if err != nil {
		return "", err
	}
	return intern(d.scratch), nil
}

// appendValues reads anonym-parameters, value *(SP value), appending the
// values to vs.
func (d *Decoder) appendValues(vs []Value) ([]Value, error) {
	for {
		v, err := d.value(false)
		if err != nil {
			return vs, err
		}
		vs = append(vs, v)
		c, err := d.peekByte()
		if err != nil {
			return vs, err
		}
		if c != ' ' {
			return vs, nil
		}
		d.discard(1)
	}
}

// namedParameters reads named-value *(CRLF named-value) CRLF, that is the
// named block including the CRLF that ends it.
func (d *Decoder) namedParameters() ([]Param, error) {
	var ps []Param
	for {
		p, err := d.namedValue()
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
		if err := d.expectCRLF("named-parameters"); err != nil {
			return nil, err
		}
		c, err := d.peekByte()
		if err != nil {
			return nil, err
		}
		if !isAlpha(c) {
			return ps, nil
		}
	}
}

// namedValue reads name ":" SP value *(SP value). The grammar allows one
// value; RFC 4037 itself declares Kept with two, so several are accepted.
func (d *Decoder) namedValue() (Param, error) {
	if err := d.count(); err != nil {
		return Param{}, err
	}
	name, err := d.namedValueName()
	if err != nil {
		return Param{}, err
	}
	vs, err := d.appendValues(nil)
	if err != nil {
		return Param{}, err
	}
	return Param{Name: name, Values: vs}, nil
}

// namedValueName reads name ":" SP.
func (d *Decoder) namedValueName() (string, error) {
	name, err := d.name()
	if err != nil {
		return "", err
	}
	if err := d.expect(':', "named-value"); err != nil {
		return "", err
	}
	return name, d.expect(' ', "named-value")
}

// value reads structure / list / atom.
func (d *Decoder) value(inList bool) (Value, error) {
	if err := d.count(); err != nil {
		return nil, err
	}
	c, err := d.peekByte()
	if err != nil {
		return nil, err
	}
	switch {
	case c == '{':
		return d.structure()
	case c == '(':
		return d.list()
	case c == '"':
		return d.quotedValue()
	case isSafe(c):
		b, err := d.safeRun(d.scratch[:0])
		if err != nil {
			return nil, err
		}
		d.scratch = b
		return d.alloc.atom(b), nil
	case c == '*' && inList && d.AllowBareStar:
		d.discard(1)
		return Atom("*"), nil
	}
	return nil, d.syntax("value", "expected value, got %q", c)
}

// structure reads "{" [anonym-parameters] [CRLF named-parameters CRLF] "}".
func (d *Decoder) structure() (Value, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer d.leave()
	d.discard(1)
	var s Struct
	c, err := d.peekByte()
	if err != nil {
		return nil, err
	}
	if c != '}' && c != '\r' {
		if s.Anon, err = d.appendValues(nil); err != nil {
			return nil, err
		}
	}
	c, err = d.readByte()
	if err != nil {
		return nil, err
	}
	if c == '\r' {
		if err := d.expect('\n', "structure"); err != nil {
			return nil, err
		}
		if c, err = d.peekByte(); err != nil {
			return nil, err
		}
		if !isAlpha(c) {
			return nil, d.syntax("structure", "expected named parameter, got %q", c)
		}
		if s.Named, err = d.namedParameters(); err != nil {
			return nil, err
		}
		if c, err = d.readByte(); err != nil {
			return nil, err
		}
	}
	if c != '}' {
		return nil, d.syntaxAt(d.off-1, "structure", "expected \"}\", got %q", c)
	}
	return s, nil
}

// list reads "(" [ value *("," value) ] ")".
func (d *Decoder) list() (Value, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer d.leave()
	d.discard(1)
	l := List{}
	c, err := d.peekByte()
	if err != nil {
		return nil, err
	}
	if c == ')' {
		d.discard(1)
		return l, nil
	}
	for {
		v, err := d.value(true)
		if err != nil {
			return nil, err
		}
		l = append(l, v)
		c, err := d.readByte()
		if err != nil {
			return nil, err
		}
		switch c {
		case ',':
			continue
		case ')':
			return l, nil
		}
		return nil, d.syntaxAt(d.off-1, "list", "expected \",\" or \")\", got %q", c)
	}
}

// quotedValue reads DQUOTE size ":" *OCTET DQUOTE.
func (d *Decoder) quotedValue() (Value, error) {
	d.discard(1)
	n, err := d.size()
	if err != nil {
		return nil, err
	}
	if n > d.lim.MaxHeaderBytes-d.hdr {
		return nil, d.limit("quoted-value", "quoted value of %d octets exceeds header limit %d", n, d.lim.MaxHeaderBytes)
	}
	if err := d.expect(':', "data"); err != nil {
		return nil, err
	}
	a := make(Atom, n)
	if _, err := io.ReadFull(d.r, a); err != nil {
		return nil, unexpected(err)
	}
	d.off += int64(n)
	d.hdr += n
	if err := d.expect('"', "quoted-value"); err != nil {
		return nil, err
	}
	return a, nil
}

// size reads dec-number: 1*DIGIT without leading zeros, at most MaxSize.
func (d *Decoder) size() (int, error) {
	start := d.off
	c, err := d.readByte()
	if err != nil {
		return 0, err
	}
	if !isDigit(c) {
		return 0, d.syntaxAt(start, "size", "expected DIGIT, got %q", c)
	}
	n := int64(c - '0')
	for {
		c, err := d.peekByte()
		if err != nil {
			return 0, err
		}
		if !isDigit(c) {
			return int(n), nil
		}
		if n == 0 {
			return 0, d.syntaxAt(start, "size", "leading zero")
		}
		n = n*10 + int64(c-'0')
		if n > MaxSize {
			return 0, d.limit("size", "size exceeds %d", MaxSize)
		}
		d.discard(1)
	}
}
