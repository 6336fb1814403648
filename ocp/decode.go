package ocp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Decoder reads OCP messages (RFC 4037 §3.1) from a byte stream. The
// methods parsing the grammar are named after its ABNF rules. A Decoder is
// not safe for concurrent use.
//
// Every allocation is bounded by the Decoder's Limits and checked before it
// happens: a peer announcing a 2 GB payload or nesting lists 100,000 deep
// gets a *SyntaxError wrapping ErrLimit, not an out-of-memory crash.
type Decoder struct {
	// AllowBareStar makes the decoder accept an unquoted "*" as a list
	// item, as the OCP/SMTP draft's Header-List does although "*" is not a
	// safe-OCTET. It decodes as the atom "*".
	AllowBareStar bool

	r       *bufio.Reader
	lim     Limits
	off     int64 // stream offset of the next octet
	hdr     int   // header octets read for the current message
	vals    int   // values and named parameters in the current message
	depth   int   // current nesting of lists and structures
	scratch []byte
	partial bool // Decode failed after consuming part of a message
	alloc   allocator
}

// NewDecoder returns a Decoder reading from r with the given limits. The
// Decoder buffers its input; it reads ahead of the message it returns.
func NewDecoder(r io.Reader, lim Limits) *Decoder {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < 4096 {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &Decoder{r: br, lim: lim.withDefaults()}
}

// Buffered returns the number of octets read from the underlying reader
// but not yet decoded.
func (d *Decoder) Buffered() int { return d.r.Buffered() }

// Decode reads exactly one message. At a clean end of stream between
// messages it returns io.EOF; a stream ending inside a message gives
// io.ErrUnexpectedEOF. Invalid input gives a *SyntaxError; after one the
// stream position is undefined and the connection must be ended.
func (d *Decoder) Decode() (*Message, error) {
	if _, err := d.r.Peek(1); err != nil {
		return nil, err
	}
	d.hdr, d.vals, d.depth = 0, 0, 0
	d.partial = true
	m, err := d.message()
	if err == nil {
		d.partial = false
	}
	return m, err
}

// message reads name [SP anonym-parameters] [CRLF named-parameters CRLF]
// [CRLF payload CRLF] ";" CRLF.
func (d *Decoder) message() (*Message, error) {
	a := &d.alloc
	a.reset()
	name, err := d.name()
	if err != nil {
		return nil, err
	}
	c, err := d.readByte()
	if err != nil {
		return nil, err
	}
	if c == ' ' {
		if a.anon, err = d.appendValues(a.anon); err != nil {
			return nil, err
		}
		if c, err = d.readByte(); err != nil {
			return nil, err
		}
	}
	var payload []byte
	hasPayload := false
	if c == '\r' {
		if err := d.expect('\n', "message"); err != nil {
			return nil, err
		}
		p, err := d.peekByte()
		if err != nil {
			return nil, err
		}
		switch {
		case isAlpha(p):
			if err = d.topNamedParameters(); err != nil {
				return nil, err
			}
			if c, err = d.readByte(); err != nil {
				return nil, err
			}
			if c == '\r' {
				if err := d.expect('\n', "message"); err != nil {
					return nil, err
				}
				if p, err = d.peekByte(); err != nil {
					return nil, err
				}
				if !isDigit(p) {
					return nil, d.syntax("payload", "expected payload size, got %q", p)
				}
				if payload, c, err = d.payload(); err != nil {
					return nil, err
				}
				hasPayload = true
			}
		case isDigit(p):
			if payload, c, err = d.payload(); err != nil {
				return nil, err
			}
			hasPayload = true
		default:
			return nil, d.syntax("message", "expected named parameter or payload, got %q", p)
		}
	}
	if c != ';' {
		return nil, d.syntaxAt(d.off-1, "message", "expected \";\", got %q", c)
	}
	if err := d.expectCRLF("message"); err != nil {
		return nil, err
	}
	m := a.build()
	m.Name = name
	m.Payload, m.HasPayload = payload, hasPayload
	return m, nil
}

// topNamedParameters reads the message's named-parameters block (see
// namedParameters) into the allocator's scratch space.
func (d *Decoder) topNamedParameters() error {
	a := &d.alloc
	for {
		if err := d.count(); err != nil {
			return err
		}
		name, err := d.namedValueName()
		if err != nil {
			return err
		}
		from := len(a.vals)
		if a.vals, err = d.appendValues(a.vals); err != nil {
			return err
		}
		a.named = append(a.named, span{name: name, from: from, to: len(a.vals)})
		if err := d.expectCRLF("named-parameters"); err != nil {
			return err
		}
		c, err := d.peekByte()
		if err != nil {
			return err
		}
		if !isAlpha(c) {
			return nil
		}
	}
}

// payload reads "payload CRLF" and returns the data and the octet after
// it. The data is read straight into its final buffer.
func (d *Decoder) payload() ([]byte, byte, error) {
	n, err := d.size()
	if err != nil {
		return nil, 0, err
	}
	if n > d.lim.MaxPayload {
		return nil, 0, d.limit("payload", "payload of %d octets exceeds limit %d", n, d.lim.MaxPayload)
	}
	if err := d.expect(':', "data"); err != nil {
		return nil, 0, err
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(d.r, p); err != nil {
		return nil, 0, unexpected(err)
	}
	d.off += int64(n)
	if err := d.expectCRLF("message"); err != nil {
		return nil, 0, err
	}
	c, err := d.readByte()
	return p, c, err
}

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

// safeRun appends the run of safe-OCTETs at the read position to dst.
func (d *Decoder) safeRun(dst []byte) ([]byte, error) {
	for {
		if _, err := d.r.Peek(1); err != nil {
			return dst, unexpected(err)
		}
		buf, _ := d.r.Peek(d.r.Buffered())
		i := 0
		for i < len(buf) && isSafe(buf[i]) {
			i++
		}
		if d.hdr+i > d.lim.MaxHeaderBytes {
			return dst, d.limit("atom", "message header exceeds %d octets", d.lim.MaxHeaderBytes)
		}
		dst = append(dst, buf[:i]...)
		d.r.Discard(i)
		d.off += int64(i)
		d.hdr += i
		if i < len(buf) {
			return dst, nil
		}
	}
}

func (d *Decoder) readByte() (byte, error) {
	c, err := d.r.ReadByte()
	if err != nil {
		return 0, unexpected(err)
	}
	d.off++
	d.hdr++
	if d.hdr > d.lim.MaxHeaderBytes {
		return 0, d.limit("message", "message header exceeds %d octets", d.lim.MaxHeaderBytes)
	}
	return c, nil
}

func (d *Decoder) peekByte() (byte, error) {
	b, err := d.r.Peek(1)
	if err != nil {
		return 0, unexpected(err)
	}
	return b[0], nil
}

// discard skips n octets already seen with peekByte.
func (d *Decoder) discard(n int) {
	d.r.Discard(n)
	d.off += int64(n)
	d.hdr += n
}

func (d *Decoder) expect(want byte, rule string) error {
	c, err := d.readByte()
	if err != nil {
		return err
	}
	if c != want {
		return d.syntaxAt(d.off-1, rule, "expected %q, got %q", want, c)
	}
	return nil
}

func (d *Decoder) expectCRLF(rule string) error {
	if err := d.expect('\r', rule); err != nil {
		return err
	}
	return d.expect('\n', rule)
}

// count accounts for one more value or named parameter.
func (d *Decoder) count() error {
	d.vals++
	if d.vals > d.lim.MaxParams {
		return d.limit("value", "more than %d values in one message", d.lim.MaxParams)
	}
	return nil
}

func (d *Decoder) enter() error {
	d.depth++
	if d.depth > d.lim.MaxDepth {
		return d.limit("value", "nesting deeper than %d", d.lim.MaxDepth)
	}
	return nil
}

func (d *Decoder) leave() { d.depth-- }

func (d *Decoder) syntax(rule, format string, args ...any) error {
	return d.syntaxAt(d.off, rule, format, args...)
}

func (d *Decoder) syntaxAt(off int64, rule, format string, args ...any) error {
	return &SyntaxError{Offset: off, Rule: rule, Msg: fmt.Sprintf(format, args...)}
}

func (d *Decoder) limit(rule, format string, args ...any) error {
	return &SyntaxError{Offset: d.off, Rule: rule, Msg: fmt.Sprintf(format, args...), Err: ErrLimit}
}

// unexpected turns io.EOF inside a message into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isSafe(c byte) bool  { return isAlpha(c) || isDigit(c) || c == '-' || c == '_' }
