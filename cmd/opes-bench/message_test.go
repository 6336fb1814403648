package main

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
)

func TestNewMessage(t *testing.T) {
	for _, size := range []int64{0, 100, 1000, 10 << 10, 10<<10 + 1, 10<<10 + 2, 10<<10 + 79, 1 << 20} {
		m := NewMessage(Shape{Size: size, Rcpts: 3}, 42)
		if len(m.Rcpts) != 3 || m.Rcpts[2] != "rcpt3@example.com" || m.From == "" {
			t.Fatalf("envelope %q %q", m.From, m.Rcpts)
		}
		body, err := io.ReadAll(m.Body())
		if err != nil {
			t.Fatal(err)
		}
		// The odd last byte of a size that is 1 mod 80 is dropped.
		if n := int64(len(body)); n != m.BodySize && n != m.BodySize-1 {
			t.Errorf("size %d: body has %d bytes, BodySize %d", size, n, m.BodySize)
		}
		if want := max(size, m.HeaderSize()+2+lineLen); m.Size() != want {
			t.Errorf("size %d: Size() = %d; want %d", size, m.Size(), want)
		}
		if !bytes.HasSuffix(body, []byte("\r\n")) {
			t.Errorf("size %d: body does not end in CRLF", size)
		}
		for i, line := range bytes.SplitAfter(body, []byte("\r\n")) {
			if len(line) > lineLen || (len(line) > 0 && !bytes.HasSuffix(line, []byte("\r\n"))) ||
				bytes.Count(line, []byte("\r")) > 1 || bytes.Count(line, []byte("\n")) > 1 {
				t.Fatalf("size %d: bad line %d %q", size, i, line)
			}
		}
	}
}

func TestNewMessageHeader(t *testing.T) {
	m := NewMessage(Shape{Size: 10 << 10, Rcpts: 1}, 7)
	var names []string
	for _, f := range m.Header {
		names = append(names, f.Name)
		if strings.ContainsAny(f.Value, "\r\n") || strings.HasPrefix(f.Value, " ") {
			t.Errorf("field %s value %q", f.Name, f.Value)
		}
	}
	if got := strings.Join(names, ","); !strings.Contains(got, "From,To,Subject,Date,Message-ID") ||
		!strings.Contains(got, "Content-Type") {
		t.Errorf("fields %s", got)
	}
	if m.Header[2].Value != "opes-bench message 7" {
		t.Errorf("subject %q", m.Header[2].Value)
	}
}

// TestBodyReaderSmallReads reads the body a few bytes at a time, as a
// chunking scanner might.
func TestBodyReaderSmallReads(t *testing.T) {
	const size = 3*lineLen*bodyLines + 37
	want, _ := io.ReadAll(newBodyReader(size))
	var got []byte
	r := newBodyReader(size)
	buf := make([]byte, 7)
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, want) || len(got) != size {
		t.Fatalf("small reads gave %d bytes, one read %d, want %d", len(got), len(want), size)
	}
}

func BenchmarkBodyReader(b *testing.B) {
	b.SetBytes(10 << 10)
	buf := make([]byte, 64<<10)
	for b.Loop() {
		r := newBodyReader(10 << 10)
		for {
			if _, err := r.Read(buf); err != nil {
				break
			}
		}
	}
}

func TestMultipartMessage(t *testing.T) {
	m := NewMessage(Shape{Size: 1 << 20, Rcpts: 1, Parts: 4}, 1)
	var raw bytes.Buffer
	for _, f := range m.Header {
		raw.WriteString(f.Name + ": " + f.Value + "\r\n")
	}
	raw.WriteString("\r\n")
	if _, err := io.Copy(&raw, m.Body()); err != nil {
		t.Fatal(err)
	}
	if d := int64(raw.Len()) - m.Size(); d < -int64(4*lineLen) || d > 0 {
		t.Errorf("message has %d bytes; Size() %d", raw.Len(), m.Size())
	}
	msg, err := mail.ReadMessage(&raw)
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("content type %q %v", mt, err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	parts := 0
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		if p.Header.Get("Content-Type") != "text/plain; charset=us-ascii" || len(b) < 200<<10 {
			t.Errorf("part %d: %q, %d bytes", parts, p.Header.Get("Content-Type"), len(b))
		}
		parts++
	}
	if parts != 4 {
		t.Errorf("%d parts; want 4", parts)
	}
}
