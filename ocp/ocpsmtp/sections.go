package ocpsmtp

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"strings"
)

// Limits of an entity's header section as the section cutter reads it
// (docs/profile.md 4.1): reading stops at the field or the byte beyond them
// and the entity is marked incomplete.
const (
	MaxEntityHeaderFields = 1000
	MaxEntityHeaderBytes  = 1 << 20
)

// EntityField is one header field of a MIME entity with its offsets.
type EntityField struct {
	// Name is the field name as written (trailing white space removed).
	Name string
	// Offset and End delimit the field's bytes: its first line up to and
	// including the line break of its last (continuation) line.
	Offset, End int64
	// Raw holds the field's bytes, all lines with their line breaks (a
	// line longer than 64 KiB is kept truncated).
	Raw []byte
}

// EntityHeader is the header section of a MIME entity as ReadEntityHeader
// finds it.
type EntityHeader struct {
	// Fields are the header fields in order.
	Fields []EntityField
	// BodyOffset is the first byte of the body: after the empty line, at
	// the line that is not a field, at the limit, or the entity's end.
	BodyOffset int64
	// NoEmptyLine reports a header section that runs to the entity's end.
	NoEmptyLine bool
	// NotField is the (truncated) line that ended the header section
	// because it is not a field; nil otherwise.
	NotField []byte
	// TooLarge reports that MaxEntityHeaderFields or MaxEntityHeaderBytes
	// stopped reading: the entity is incomplete.
	TooLarge bool
}

// ContentType returns the unfolded value of the first Content-Type field,
// "" when there is none.
func (h EntityHeader) ContentType() string {
	for _, f := range h.Fields {
		if strings.EqualFold(f.Name, "Content-Type") {
			_, v, _ := strings.Cut(string(f.Raw), ":")
			v = strings.ReplaceAll(v, "\r\n", "")
			return strings.TrimSpace(strings.ReplaceAll(v, "\n", ""))
		}
	}
	return ""
}

// ReadEntityHeader reads the header section of the entity [off, end) of r:
// fields up to the empty line. A line that is not a field (no colon, or a
// name with control characters or white space inside) ends the header and
// starts the body.
func ReadEntityHeader(r io.ReaderAt, off, end int64) (EntityHeader, error) {
	h := EntityHeader{BodyOffset: end}
	lr := newLineReader(r, off, end)
	var size int64
	for {
		l, err := lr.next()
		if errors.Is(err, io.EOF) {
			h.NoEmptyLine = len(h.Fields) > 0 || end > off
			return h, nil
		}
		if err != nil {
			return h, err
		}
		c := l.content()
		if len(c) == 0 && l.eol > 0 {
			h.BodyOffset = l.end()
			return h, nil
		}
		if size+l.n > MaxEntityHeaderBytes || len(h.Fields) >= MaxEntityHeaderFields {
			h.TooLarge, h.BodyOffset = true, l.start
			return h, nil
		}
		size += l.n
		if (c[0] == ' ' || c[0] == '\t') && len(h.Fields) > 0 {
			f := &h.Fields[len(h.Fields)-1]
			f.Raw = append(f.Raw, l.b...)
			f.End = l.end()
			continue
		}
		name, _, ok := bytes.Cut(c, []byte(":"))
		if !ok || !ValidFieldName(name) || int64(len(l.b)) < l.n {
			h.NotField, h.BodyOffset = append([]byte(nil), c[:min(len(c), 64)]...), l.start
			return h, nil
		}
		h.Fields = append(h.Fields, EntityField{
			Name: string(bytes.TrimRight(name, " \t")), Offset: l.start, End: l.end(),
			Raw: append([]byte(nil), l.b...),
		})
	}
}

// ValidFieldName reports whether b (trailing white space removed) is a
// header field name as the entity header reader accepts it: printable
// US-ASCII without white space.
func ValidFieldName(b []byte) bool {
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

// PartSpan is one body part of a multipart body as SplitMultipart finds it.
type PartSpan struct {
	// Delim is where the part's delimiter line begins, including the line
	// break before it when there is one (RFC 2046 §5.1.1: that line break
	// belongs to the delimiter); removing [Delim, End) removes the part
	// cleanly.
	Delim int64
	// Line is the first byte of the delimiter line itself.
	Line int64
	// Start is the octet after the delimiter line's line break, End the
	// octet where the next delimiter (with its preceding line break)
	// begins: [Start, End) is the part's header, empty line and body.
	Start, End int64
}

// SplitMultipart finds the body parts of the multipart body [off, end) of
// r whose boundary is boundary. Preamble and epilogue belong to no part.
// closed reports whether the close delimiter was seen; without it the last
// part runs to end.
func SplitMultipart(r io.ReaderAt, off, end int64, boundary string) (parts []PartSpan, closed bool, err error) {
	delim := []byte("--" + boundary)
	lr := newLineReader(r, off, end)
	var prevEOL int64
	partEnd := end
	for {
		l, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, false, err
		}
		kind := delimiterKind(l.content(), delim)
		if kind == notDelimiter {
			prevEOL = l.eol
			continue
		}
		start := l.start
		if start > off && (len(parts) == 0 || start-prevEOL >= parts[len(parts)-1].Start) {
			start -= prevEOL
		}
		if kind == closeDelimiter {
			partEnd, closed = start, true
			break
		}
		if n := len(parts); n > 0 {
			parts[n-1].End = start
		}
		parts = append(parts, PartSpan{Delim: start, Line: l.start, Start: l.end()})
		prevEOL = l.eol
	}
	if n := len(parts); n > 0 {
		parts[n-1].End = partEnd
	}
	for i := range parts {
		parts[i].End = max(parts[i].End, parts[i].Start)
	}
	return parts, closed, nil
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
	if len(bytes.TrimRight(rest, " \t")) != 0 {
		return notDelimiter
	}
	return kind
}

// MultipartBoundary returns the boundary of a multipart Content-Type value
// and whether it has one.
func MultipartBoundary(contentType string) (string, bool) {
	mt, params, err := mime.ParseMediaType(strings.TrimSpace(contentType))
	if err != nil || !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "" {
		return "", false
	}
	return params["boundary"], true
}

// Section is one SECTIONS instance: a leaf MIME entity of a message body
// (docs/profile.md 4.1).
type Section struct {
	// Path holds the 1-based positions from the body down; Index formats
	// it as the AM-Index.
	Path []int
	// Start and End delimit the entity's bytes in the body: its header,
	// empty line and body, without the line break before the next
	// delimiter line.
	Start, End int64
	// Delim is where the delimiter line introducing the entity begins,
	// including the line break before it; Line is the delimiter line's
	// first byte. Both are -1 for the whole-body section.
	Delim, Line int64
}

// Index returns the section's AM-Index.
func (s Section) Index() string { return FormatIndex(s.Path...) }

// CutSections returns the SECTIONS instances of a body of size octets
// whose top-level Content-Type is contentType: the leaf entities in order,
// numbered as in IMAP. A multipart entity is descended into when its
// header is complete, it has a boundary, at least one part and its close
// delimiter, and its parts lie at most MaxSectionDepth levels down;
// otherwise it is a leaf. A message/rfc822 entity is a leaf. When the body
// itself cannot be split so, it is the single section "1" with all its
// bytes. The callout server's section tree agrees with it
// (callout.Message.Sections).
func CutSections(body io.ReaderAt, size int64, contentType string) ([]Section, error) {
	whole := []Section{{Path: []int{1}, Start: 0, End: size, Delim: -1, Line: -1}}
	boundary, ok := MultipartBoundary(contentType)
	if !ok {
		return whole, nil
	}
	var out []Section
	ok, err := cutMultipart(body, 0, size, boundary, nil, &out)
	if err != nil {
		return nil, err
	}
	if !ok {
		return whole, nil
	}
	return out, nil
}

// cutMultipart appends the leaves of the multipart body [start, end) to
// out; it reports false when the body is not to be descended into.
func cutMultipart(body io.ReaderAt, start, end int64, boundary string, prefix []int, out *[]Section) (bool, error) {
	if len(prefix) >= MaxSectionDepth {
		return false, nil
	}
	parts, closed, err := SplitMultipart(body, start, end, boundary)
	if err != nil || !closed || len(parts) == 0 {
		return false, err
	}
	for i, p := range parts {
		path := append(append(make([]int, 0, len(prefix)+1), prefix...), i+1)
		h, err := ReadEntityHeader(body, p.Start, p.End)
		if err != nil {
			return false, err
		}
		if b, ok := MultipartBoundary(h.ContentType()); ok && !h.TooLarge {
			var inner []Section
			ok, err := cutMultipart(body, h.BodyOffset, p.End, b, path, &inner)
			if err != nil {
				return false, err
			}
			if ok {
				*out = append(*out, inner...)
				continue
			}
		}
		*out = append(*out, Section{Path: path, Start: p.Start, End: p.End, Delim: p.Delim, Line: p.Line})
	}
	return true, nil
}
