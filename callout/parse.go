package callout

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// Limits of the MIME parser: deeper nesting is treated as a leaf, a larger
// header section ends the header early. Both are recorded as problems.
const (
	maxMIMEDepth    = 32
	maxHeaderBytes  = 1 << 20
	maxHeaderFields = 1000
)

func parseMessage(m *Message) (*Section, error) {
	s, err := parseSection(m, 0, m.size, nil, nil, 0)
	if err != nil {
		return nil, fmt.Errorf("callout: parse message: %w", err)
	}
	return s, nil
}

func parseSection(m *Message, off, end int64, path []int, parent *Section, depth int) (*Section, error) {
	s := &Section{Path: path, Offset: off, DelimOffset: off, End: end, Parent: parent, msg: m}
	if err := s.readHeader(); err != nil {
		return nil, err
	}
	s.MediaType, s.Params = "text/plain", map[string]string{}
	if parent != nil && parent.MediaType == "multipart/digest" {
		s.MediaType = "message/rfc822"
	}
	if ct := s.Header.Get("Content-Type"); ct != "" {
		t, params, err := mime.ParseMediaType(ct)
		switch {
		case err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter):
			s.problem("bad Content-Type %q: %v", ct, err)
		default:
			if err != nil {
				s.problem("bad Content-Type parameter in %q", ct)
			}
			s.MediaType, s.Params = t, params
		}
	}
	if depth >= maxMIMEDepth {
		if s.IsMultipart() || s.MediaType == "message/rfc822" {
			s.problem("nested deeper than %d levels", maxMIMEDepth)
			s.Incomplete = true
		}
		return s, nil
	}
	switch {
	case s.IsMultipart():
		return s, s.readParts(depth)
	case s.MediaType == "message/rfc822":
		switch s.TransferEncoding() {
		case "7bit", "8bit", "binary":
			c, err := parseSection(m, s.BodyOffset, s.End, childPath(path, 0), s, depth+1)
			if err != nil {
				return nil, err
			}
			s.Parts = []*Section{c}
		}
	}
	return s, nil
}

func (s *Section) problem(format string, args ...any) {
	s.Problems = append(s.Problems, fmt.Sprintf(format, args...))
}

func childPath(path []int, i int) []int {
	return append(append(make([]int, 0, len(path)+1), path...), i)
}

// readHeader reads the header fields up to the empty line and sets
// Fields, Header and BodyOffset.
func (s *Section) readHeader() error {
	lr := newLineReader(s.msg.ra, s.Offset, s.End)
	var raw bytes.Buffer
	s.BodyOffset = s.End
	for {
		l, err := lr.next()
		if errors.Is(err, io.EOF) {
			if len(s.Fields) > 0 || s.End > s.Offset {
				s.problem("header section without an empty line")
			}
			break
		}
		if err != nil {
			return err
		}
		c := l.content()
		if len(c) == 0 && l.eol > 0 {
			s.BodyOffset = l.end()
			break
		}
		if raw.Len()+int(l.n) > maxHeaderBytes || len(s.Fields) >= maxHeaderFields {
			s.problem("header section too large")
			s.Incomplete = true
			s.BodyOffset = l.start
			break
		}
		if (c[0] == ' ' || c[0] == '\t') && len(s.Fields) > 0 {
			f := &s.Fields[len(s.Fields)-1]
			f.Raw = append(f.Raw, l.b...)
			f.End = l.end()
			continue
		}
		name, _, ok := bytes.Cut(c, []byte(":"))
		if !ok || !validFieldName(name) || int64(len(l.b)) < l.n {
			// Not a header field: the header ends here and the body
			// starts with this line.
			s.problem("header line %q is not a field", truncate(c, 40))
			s.BodyOffset = l.start
			break
		}
		s.Fields = append(s.Fields, HeaderField{
			Name: string(bytes.TrimRight(name, " \t")), Offset: l.start, End: l.end(),
			Raw: append([]byte(nil), l.b...),
		})
	}
	for _, f := range s.Fields {
		raw.Write(f.Raw)
		if !bytes.HasSuffix(f.Raw, []byte("\n")) {
			raw.WriteString("\r\n")
		}
	}
	raw.WriteString("\r\n")
	h, err := textproto.ReadHeader(bufio.NewReader(&raw))
	if err != nil {
		s.problem("header: %v", err)
	}
	s.Header = h
	return nil
}

func validFieldName(b []byte) bool {
	b = bytes.TrimRight(b, " \t")
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// readParts finds the body parts of a multipart section between its
// delimiter lines and parses each.
func (s *Section) readParts(depth int) error {
	boundary := s.Params["boundary"]
	if boundary == "" {
		s.problem("multipart without boundary")
		return nil
	}
	delim := []byte("--" + boundary)
	lr := newLineReader(s.msg.ra, s.BodyOffset, s.End)
	type span struct{ delim, start int64 }
	var spans []span
	closed := false
	var prevEOL int64
	partEnd := s.End
	for {
		l, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		kind := delimiterKind(l.content(), delim)
		if kind == notDelimiter {
			prevEOL = l.eol
			continue
		}
		// The line break before a delimiter belongs to the delimiter.
		start := l.start
		if start > s.BodyOffset && (len(spans) == 0 || start-prevEOL >= spans[len(spans)-1].start) {
			start -= prevEOL
		}
		if kind == closeDelimiter {
			partEnd = start
			closed = true
			break
		}
		spans = append(spans, span{delim: start, start: l.end()})
		prevEOL = l.eol
	}
	if len(spans) == 0 {
		s.problem("multipart without any delimiter line")
		return nil
	}
	if !closed {
		s.problem("multipart without close delimiter")
	}
	for i, sp := range spans {
		end := partEnd
		if i+1 < len(spans) {
			end = spans[i+1].delim
		}
		end = max(end, sp.start)
		c, err := parseSection(s.msg, sp.start, end, childPath(s.Path, i), s, depth+1)
		if err != nil {
			return err
		}
		c.DelimOffset = sp.delim
		s.Parts = append(s.Parts, c)
	}
	return nil
}

type delimKind int

const (
	notDelimiter delimKind = iota
	partDelimiter
	closeDelimiter
)

// delimiterKind classifies a line (without its line break) against the
// delimiter "--boundary": transport padding (white space) may follow.
func delimiterKind(line, delim []byte) delimKind {
	if !bytes.HasPrefix(line, delim) {
		return notDelimiter
	}
	rest := line[len(delim):]
	kind := partDelimiter
	if bytes.HasPrefix(rest, []byte("--")) {
		kind, rest = closeDelimiter, rest[2:]
	}
	if len(strings.TrimRight(string(rest), " \t")) != 0 {
		return notDelimiter
	}
	return kind
}
