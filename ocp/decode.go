package ocp

import (
	"bufio"
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
