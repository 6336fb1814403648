package ocp

import (
	"errors"
	"fmt"
	"io"
)

// Octet-level input of the Decoder: buffered reads with offset and limit
// accounting, and the errors it reports.

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
