package ocp

import (
	"bufio"
	"io"
	"strconv"
)

// AppendMessage appends the canonical wire form of m to dst and returns the
// extended buffer. Atoms are written bare when they are non-empty and made
// of safe-OCTETs only, and quoted ("size:octets") otherwise; the layout of
// structures, lists, named parameters and the payload follows RFC 4037
// §3.1 exactly, including the empty line between the last named parameter
// and the payload. The payload is written when HasPayload is set or
// Payload is not empty. A Param without values is written with the empty
// list "()", which OCP reads as an absent parameter.
// This function doesn't perform I/O and doesn't validate names.
func AppendMessage(dst []byte, m *Message) []byte {
	dst = append(dst, m.Name...)
	for _, v := range m.Anon {
		dst = append(dst, ' ')
		dst = AppendValue(dst, v)
	}
	dst = appendNamed(dst, m.Named)
	if m.HasPayload || len(m.Payload) > 0 {
		dst = append(dst, '\r', '\n')
		dst = strconv.AppendInt(dst, int64(len(m.Payload)), 10)
		dst = append(dst, ':')
		dst = append(dst, m.Payload...)
		dst = append(dst, '\r', '\n')
	}
	return append(dst, ';', '\r', '\n')
}

// AppendValue appends the canonical wire form of v to dst. A nil Value is
// written as the empty atom "0:".
func AppendValue(dst []byte, v Value) []byte {
	switch v := v.(type) {
	case Atom:
		return appendAtom(dst, v)
	case List:
		dst = append(dst, '(')
		for i, item := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendValue(dst, item)
		}
		return append(dst, ')')
	case Struct:
		dst = append(dst, '{')
		for i, a := range v.Anon {
			if i > 0 {
				dst = append(dst, ' ')
			}
			dst = AppendValue(dst, a)
		}
		dst = appendNamed(dst, v.Named)
		return append(dst, '}')
	}
	return append(dst, `"0:"`...)
}

// appendNamed appends the named parameters of a message or a structure,
// each on a line of its own between CRLFs; nothing when there are none.
func appendNamed(dst []byte, ps []Param) []byte {
	if len(ps) == 0 {
		return dst
	}
	for _, p := range ps {
		dst = append(dst, '\r', '\n')
		dst = append(dst, p.Name...)
		dst = append(dst, ':', ' ')
		if len(p.Values) == 0 {
			dst = append(dst, '(', ')')
		}
		for j, v := range p.Values {
			if j > 0 {
				dst = append(dst, ' ')
			}
			dst = AppendValue(dst, v)
		}
	}
	return append(dst, '\r', '\n')
}

func appendAtom(dst []byte, a Atom) []byte {
	if isBare(a) {
		return append(dst, a...)
	}
	dst = append(dst, '"')
	dst = strconv.AppendInt(dst, int64(len(a)), 10)
	dst = append(dst, ':')
	dst = append(dst, a...)
	return append(dst, '"')
}

// isBare reports whether a can be written as a bare-value.
func isBare(a []byte) bool {
	if len(a) == 0 {
		return false
	}
	for _, c := range a {
		if !isSafe(c) {
			return false
		}
	}
	return true
}

// Encoder writes OCP messages to a stream. It buffers: call Flush to push
// the buffered messages to the underlying writer. An Encoder is not safe
// for concurrent use.
type Encoder struct {
	w   *bufio.Writer
	buf []byte
}

// NewEncoder returns an Encoder writing to w.
func NewEncoder(w io.Writer) *Encoder {
	return &Encoder{w: bufio.NewWriterSize(w, 32<<10)}
}

// Encode writes m in canonical form (see AppendMessage). Large payloads are
// written straight to the underlying writer without an extra copy.
func (e *Encoder) Encode(m *Message) error {
	if len(m.Payload) < 4096 {
		e.buf = AppendMessage(e.buf[:0], m)
		_, err := e.w.Write(e.buf)
		return err
	}
	head := *m
	head.Payload, head.HasPayload = nil, false
	b := AppendMessage(e.buf[:0], &head)
	b = b[:len(b)-3] // drop ";\r\n", re-added after the payload
	b = append(b, '\r', '\n')
	b = strconv.AppendInt(b, int64(len(m.Payload)), 10)
	b = append(b, ':')
	e.buf = b
	if _, err := e.w.Write(b); err != nil {
		return err
	}
	if _, err := e.w.Write(m.Payload); err != nil {
		return err
	}
	_, err := e.w.WriteString("\r\n;\r\n")
	return err
}

// Flush writes any buffered data to the underlying writer.
func (e *Encoder) Flush() error { return e.w.Flush() }
