package callout

import (
	"io"
	"mime"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	"github.com/opes-milter/opes-milter/callout/mimetext"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// HeaderField is one header field of a section with its position in the
// message, so that a service can replace or remove exactly that field.
type HeaderField struct {
	// Name is the field name as written.
	Name string
	// Offset and End delimit the field's bytes: its first line up to and
	// including the line break of its last (continuation) line.
	Offset, End int64
	// Raw holds the field's bytes (all lines, with line breaks).
	Raw []byte
}

// Value returns the field body unfolded, with surrounding white space
// removed. Encoded words (RFC 2047) are left as they are.
func (f HeaderField) Value() string {
	_, v, _ := strings.Cut(string(f.Raw), ":")
	v = strings.ReplaceAll(v, "\r\n", "")
	v = strings.ReplaceAll(v, "\n", "")
	return strings.TrimSpace(v)
}

// Section is one MIME entity of a message with the byte offsets of its
// pieces: the whole message (the root), a body part of a multipart, or the
// message inside a message/rfc822 part.
type Section struct {
	// Path is the position from the root: nil for the root, [0] for its
	// first part, [1 0] for the first part of its second part, and so on.
	Path []int
	// Header is the section's header, as go-message parses it.
	Header textproto.Header
	// Fields are the header fields in order, with offsets.
	Fields []HeaderField
	// Offset is the first byte of the header, BodyOffset the first byte of
	// the body (after the empty line), End the byte after the body. For a
	// body part, the line break before the next delimiter is not part of
	// the body (RFC 2046 §5.1.1).
	Offset, BodyOffset, End int64
	// DelimOffset is where the delimiter line introducing this body part
	// begins, including the line break before it when there is one;
	// removing [DelimOffset, End) removes the part cleanly. For the root it
	// equals Offset.
	DelimOffset int64
	// MediaType is the lower-cased media type ("text/plain" by default) and
	// Params its parameters.
	MediaType string
	Params    map[string]string
	// Parts are the body parts of a multipart, or the one encapsulated
	// message of a message/rfc822 section.
	Parts []*Section
	// Parent is the enclosing section, nil for the root.
	Parent *Section
	// Problems lists what was malformed (missing close delimiter, bad
	// Content-Type, header without an empty line, ...).
	Problems []string
	// Incomplete reports that a parser limit stopped reading the
	// section's structure (more than 1000 header fields or 1 MiB of
	// header, nesting deeper than 32 levels): a header field or a part
	// beyond the limit is not seen as such. A content filter treats it as
	// a message it could not parse.
	Incomplete bool

	msg      *Message
	unclosed bool // a multipart whose close delimiter is missing
}

// IsMultipart reports whether the section is a multipart with parsed parts.
func (s *Section) IsMultipart() bool { return strings.HasPrefix(s.MediaType, "multipart/") }

// Body returns a reader of the raw (still transfer-encoded) body.
func (s *Section) Body() io.Reader { return s.msg.Range(s.BodyOffset, s.End) }

// Entity returns the section as a go-message entity, whose Body decodes the
// transfer encoding and, for text, the charset when message.CharsetReader
// is set. An unknown charset or encoding is reported as go-message does
// (message.IsUnknownCharset, message.IsUnknownEncoding) with a usable
// entity.
func (s *Section) Entity() (*message.Entity, error) {
	return message.New(message.Header{Header: s.Header}, s.Body())
}

// TransferEncoding returns the lower-cased Content-Transfer-Encoding, "7bit"
// when absent.
func (s *Section) TransferEncoding() string {
	cte := strings.ToLower(strings.TrimSpace(s.Header.Get("Content-Transfer-Encoding")))
	if cte == "" {
		return "7bit"
	}
	return cte
}

// Charset returns the lower-cased charset parameter, "us-ascii" for text
// without one, "" for other media types without one.
func (s *Section) Charset() string {
	if cs := strings.ToLower(s.Params["charset"]); cs != "" {
		return cs
	}
	if strings.HasPrefix(s.MediaType, "text/") {
		return "us-ascii"
	}
	return ""
}

// Disposition returns the lower-cased disposition type ("inline",
// "attachment") or "" when the header has none, and its parameters.
func (s *Section) Disposition() (string, map[string]string) {
	v := s.Header.Get("Content-Disposition")
	if v == "" {
		return "", nil
	}
	d, params, err := mime.ParseMediaType(v)
	if err != nil {
		d, _, _ = strings.Cut(v, ";")
		return strings.ToLower(strings.TrimSpace(d)), nil
	}
	return d, params
}

// Filename returns the file name from Content-Disposition or, failing that,
// the Content-Type name parameter, with RFC 2231 and RFC 2047 encodings
// decoded. It returns "" when there is none.
func (s *Section) Filename() string {
	_, params := s.Disposition()
	name := params["filename"]
	if name == "" {
		name = s.Params["name"]
	}
	if strings.Contains(name, "=?") {
		if dec, err := mimetext.DecodeHeader(name); err == nil {
			name = dec
		}
	}
	return name
}

// IsAttachment reports whether the section is a leaf meant as an
// attachment rather than as message text: an attachment disposition, a
// file name, or a media type other than text/*.
func (s *Section) IsAttachment() bool {
	if len(s.Parts) > 0 {
		return false
	}
	if d, _ := s.Disposition(); d == "attachment" {
		return true
	}
	return s.Filename() != "" || !strings.HasPrefix(s.MediaType, "text/")
}

// Protected reports whether the section is, or lies inside, a signed or
// encrypted entity (multipart/signed, multipart/encrypted,
// application/pkcs7-mime and the like), which must not be changed.
func (s *Section) Protected() bool {
	for p := s; p != nil; p = p.Parent {
		if IsProtectedType(p.MediaType) {
			return true
		}
	}
	return false
}

// ContainsProtected reports whether the section or any section below it is
// signed or encrypted.
func (s *Section) ContainsProtected() bool {
	found := false
	_ = s.Walk(func(c *Section) error {
		if IsProtectedType(c.MediaType) {
			found = true
		}
		return nil
	})
	return found
}

func IsProtectedType(t string) bool {
	switch t {
	case "multipart/signed", "multipart/encrypted", "application/pkcs7-mime",
		"application/x-pkcs7-mime", "application/pgp-encrypted":
		return true
	}
	return false
}

// Field returns the first header field called name (without regard to
// case) and whether there is one.
func (s *Section) Field(name string) (HeaderField, bool) {
	for _, f := range s.Fields {
		if strings.EqualFold(f.Name, name) {
			return f, true
		}
	}
	return HeaderField{}, false
}

func (s *Section) Walk(fn func(*Section) error) error {
	if err := fn(s); err != nil {
		return err
	}
	for _, p := range s.Parts {
		if err := p.Walk(fn); err != nil {
			return err
		}
	}
	return nil
}

// Sections returns the message's SECTIONS instances as the processor cuts
// them (docs/profile.md 4.1, ocpsmtp.CutSections): the leaf entities of the
// body in order, numbered by Index. A message/rfc822 entity is a leaf, and
// so is a multipart without parts, without its close delimiter, or with an
// incomplete header. When the body cannot be split so, the root alone is
// returned: section "1", the whole body.
func (m *Message) Sections() ([]*Section, error) {
	root, err := m.Root()
	if err != nil {
		return nil, err
	}
	if !root.splitsIntoSections() {
		return []*Section{root}, nil
	}
	var out []*Section
	var walk func(s *Section)
	walk = func(s *Section) {
		for _, p := range s.Parts {
			if p.splitsIntoSections() {
				walk(p)
			} else {
				out = append(out, p)
			}
		}
	}
	walk(root)
	return out, nil
}

// splitsIntoSections reports whether SECTIONS descends into the section.
func (s *Section) splitsIntoSections() bool {
	return s.IsMultipart() && len(s.Parts) > 0 && !s.unclosed && !s.Incomplete
}

// Index returns the section's AM-Index as a SECTIONS instance (1-based
// dotted path, "1" for the root, which stands for the whole body) and its
// bytes in the message: from Offset for a body part, from BodyOffset for
// the root, to End.
func (s *Section) Index() string {
	if s.Parent == nil {
		return "1"
	}
	path := make([]int, len(s.Path))
	for i, n := range s.Path {
		path[i] = n + 1
	}
	return ocpsmtp.FormatIndex(path...)
}
