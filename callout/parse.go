package callout

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"mime"

	"github.com/emersion/go-message/textproto"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// maxMIMEDepth is the MIME parser's nesting limit: deeper nesting is
// treated as a leaf and recorded as a problem. It is the profile's
// SECTIONS depth, so that the tree and the AM-Index numbering agree. The
// header limits are ocpsmtp.MaxEntityHeaderFields and
// ocpsmtp.MaxEntityHeaderBytes.
const maxMIMEDepth = ocpsmtp.MaxSectionDepth

func parseMessage(m *Message) (*Section, error) {
	s, err := parseSection(m, 0, m.size, nil, nil, 0)
	if err != nil {
		return nil, fmt.Errorf("callout: parse message: %w", err)
	}
	return s, nil
}

func parseSection(m *Message, off, end int64, path []int, parent *Section, depth int) (*Section, error) {
	s := &Section{Path: path, Offset: off, DelimOffset: off, End: end, Parent: parent, msg: m}
	ct, err := s.readHeader()
	if err != nil {
		return nil, err
	}
	s.MediaType, s.Params = "text/plain", map[string]string{}
	if parent != nil && parent.MediaType == "multipart/digest" {
		s.MediaType = "message/rfc822"
	}
	if ct != "" {
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

// readHeader reads the header fields up to the empty line with the
// profile's entity header reader and sets Fields, Header and BodyOffset.
// It returns the Content-Type as the section cutter reads it (the first
// field, unfolded), so that the tree and the SECTIONS numbering agree.
func (s *Section) readHeader() (string, error) {
	eh, err := ocpsmtp.ReadEntityHeader(s.msg.ra, s.Offset, s.End)
	if err != nil {
		return "", err
	}
	s.BodyOffset = eh.BodyOffset
	switch {
	case eh.NoEmptyLine:
		s.problem("header section without an empty line")
	case eh.TooLarge:
		s.problem("header section too large")
		s.Incomplete = true
	case eh.NotField != nil:
		// Not a header field: the header ends here and the body
		// starts with this line.
		s.problem("header line %q is not a field", truncate(eh.NotField, 40))
	}
	var raw bytes.Buffer
	for _, f := range eh.Fields {
		s.Fields = append(s.Fields, HeaderField{Name: f.Name, Offset: f.Offset, End: f.End, Raw: f.Raw})
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
	return eh.ContentType(), nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// readParts finds the body parts of a multipart section between its
// delimiter lines with the profile's splitter and parses each.
func (s *Section) readParts(depth int) error {
	boundary := s.Params["boundary"]
	if boundary == "" {
		s.problem("multipart without boundary")
		return nil
	}
	spans, closed, err := ocpsmtp.SplitMultipart(s.msg.ra, s.BodyOffset, s.End, boundary)
	if err != nil {
		return err
	}
	if len(spans) == 0 {
		s.problem("multipart without any delimiter line")
		return nil
	}
	if !closed {
		s.problem("multipart without close delimiter")
		s.unclosed = true
	}
	for i, sp := range spans {
		c, err := parseSection(s.msg, sp.Start, sp.End, childPath(s.Path, i), s, depth+1)
		if err != nil {
			return err
		}
		c.DelimOffset = sp.Delim
		s.Parts = append(s.Parts, c)
	}
	return nil
}
