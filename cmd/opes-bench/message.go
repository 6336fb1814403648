package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Message is one generated test message: envelope, header fields and a
// plain-text body produced on the fly, so that a 100 MiB message costs the
// generator no memory.
type Message struct {
	From     string
	Rcpts    []string
	Header   []Field
	BodySize int64 // bytes of the body, CRLF line ends
	Parts    int   // text/plain parts; more than 1 makes a multipart body
}

// Field is one header field; Value has no leading space.
type Field struct{ Name, Value string }

// benchDate is the fixed Date of every generated message, so that runs
// send identical bytes.
const benchDate = "Mon, 02 Jan 2006 15:04:05 +0000"

// NewMessage returns message number seq of the given shape. Its size on
// the wire (header fields, empty line, body) is shape.Size, give or take a
// byte, and at least the header plus one body line.
func NewMessage(shape Shape, seq uint64) Message {
	m := Message{From: "sender@example.org"}
	for i := range max(shape.Rcpts, 1) {
		m.Rcpts = append(m.Rcpts, "rcpt"+strconv.Itoa(i+1)+"@example.com")
	}
	id := strconv.FormatUint(seq, 10)
	ctype := "text/plain; charset=us-ascii"
	if shape.Parts > 1 {
		m.Parts = shape.Parts
		ctype = `multipart/mixed; boundary="` + boundary + `"`
	}
	m.Header = []Field{
		{"From", "Bench Sender <" + m.From + ">"},
		{"To", "<" + m.Rcpts[0] + ">"},
		{"Subject", "opes-bench message " + id},
		{"Date", benchDate},
		{"Message-ID", "<" + id + ".opes-bench@example.org>"},
		{"MIME-Version", "1.0"},
		{"Content-Type", ctype},
		{"Content-Transfer-Encoding", "7bit"},
	}
	m.BodySize = max(shape.Size-m.HeaderSize()-2, lineLen)
	return m
}

// HeaderSize is the wire size of the header fields ("Name: value\r\n").
func (m Message) HeaderSize() int64 {
	var n int64
	for _, f := range m.Header {
		n += int64(len(f.Name) + len(f.Value) + 4)
	}
	return n
}

// Size is the wire size of the whole message.
func (m Message) Size() int64 { return m.HeaderSize() + 2 + m.BodySize }

// Body returns a reader of the body: 78-character text lines ending in
// CRLF, the last one shorter when BodySize is not a multiple of 80. A
// multipart body has Parts such texts, each with its MIME header, between
// boundary lines; it is as long as BodySize give or take a line per part.
func (m Message) Body() io.Reader {
	if m.Parts <= 1 {
		return newBodyReader(m.BodySize)
	}
	const partHeader = "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
	open := "--" + boundary + "\r\n"
	overhead := int64(m.Parts*(len(open)+len(partHeader)) + len(boundary) + 6)
	per := max((m.BodySize-overhead)/int64(m.Parts), lineLen)
	var rs []io.Reader
	for range m.Parts {
		rs = append(rs, strings.NewReader(open+partHeader), newBodyReader(per))
	}
	rs = append(rs, strings.NewReader("--"+boundary+"--\r\n"))
	return io.MultiReader(rs...)
}

// boundary separates the parts of a multipart body.
const boundary = "opes-bench-boundary-7Hq2"

// lineLen is the length of a body line with its CRLF.
const lineLen = 80

// bodyBlock holds bodyLines lines that the body repeats.
var bodyBlock = func() []byte {
	var b []byte
	for i := range bodyLines {
		line := fmt.Sprintf("%04d The quick brown fox jumps over the lazy dog; opes-bench body text 0123", i)
		for len(line) < lineLen-2 {
			line += "."
		}
		b = append(b, line[:lineLen-2]...)
		b = append(b, '\r', '\n')
	}
	return b
}()

const bodyLines = 64

// bodyReader streams a body of a given size from bodyBlock.
type bodyReader struct {
	full int64 // bytes of whole lines
	tail int64 // length of the short last line with its CRLF (0, or 2..79)
	pos  int64
}

func newBodyReader(size int64) *bodyReader {
	r := &bodyReader{full: size - size%lineLen, tail: size % lineLen}
	if r.tail == 1 { // a line needs its CRLF: drop the odd byte
		r.tail = 0
	}
	return r
}

func (r *bodyReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && r.pos < r.full {
		off := r.pos % int64(len(bodyBlock))
		c := copy(p[n:], bodyBlock[off:min(int64(len(bodyBlock)), off+r.full-r.pos)])
		n += c
		r.pos += int64(c)
	}
	for n < len(p) && r.pos < r.full+r.tail {
		i := r.pos - r.full
		switch {
		case i < r.tail-2:
			p[n] = 'x'
		case i == r.tail-2:
			p[n] = '\r'
		default:
			p[n] = '\n'
		}
		n++
		r.pos++
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}
