package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"testing"
)

// The messages the scenarios send, and what they take apart on arrival.

// attachment is one attachment of a scenario message.
type attachment struct {
	name, contentType string
	data              []byte
}

// scenarioMessage builds a message with CRLF line ends: a text/plain part,
// then each attachment base64-encoded in lines of 76, in a multipart/mixed
// with a fixed boundary; just the text when there are no attachments.
func scenarioMessage(from, to, subject, text string, atts ...attachment) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@client.scenario.test>\r\n",
		from, to, subject, strings.ReplaceAll(strings.ToLower(subject), " ", "-"))
	body := strings.ReplaceAll(strings.TrimSuffix(text, "\n"), "\n", "\r\n") + "\r\n"
	if len(atts) == 0 {
		b.WriteString("Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body)
		return b.Bytes()
	}
	const boundary = "scenario-boundary-1"
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=%q\r\n\r\n", boundary)
	b.WriteString("This is a multi-part message in MIME format.\r\n")
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n%s", boundary, body)
	for _, a := range atts {
		fmt.Fprintf(&b, "--%s\r\nContent-Type: %s; name=%q\r\nContent-Disposition: attachment; filename=%q\r\n"+
			"Content-Transfer-Encoding: base64\r\n\r\n", boundary, a.contentType, a.name, a.name)
		enc := base64.StdEncoding.EncodeToString(a.data)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return b.Bytes()
}

// leaf is one non-multipart part of a delivered message, decoded.
type leaf struct {
	contentType string // media type, lower case
	filename    string
	data        []byte // after Content-Transfer-Encoding
}

// mimeLeaves parses raw (the whole message) and returns its leaf parts in
// order. It fails on any MIME error: a missing closing delimiter, a bad
// Content-Type, broken base64.
func mimeLeaves(raw []byte) ([]leaf, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	return walkPart(textproto.MIMEHeader(msg.Header), msg.Body, 0)
}

func walkPart(h textproto.MIMEHeader, body io.Reader, depth int) ([]leaf, error) {
	if depth > 10 {
		return nil, errors.New("mime: nested too deep")
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mediaType, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, fmt.Errorf("mime: Content-Type %q: %w", ct, err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		var leaves []leaf
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return leaves, nil
			}
			if err != nil {
				return nil, fmt.Errorf("mime: %s: %w", mediaType, err)
			}
			sub, err := walkPart(p.Header, p, depth+1)
			if err != nil {
				return nil, err
			}
			leaves = append(leaves, sub...)
		}
	}
	var r io.Reader = body
	switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, &newlineStripper{r: bufio.NewReader(body)})
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("mime: %s: %w", mediaType, err)
	}
	l := leaf{contentType: mediaType, data: data}
	if _, dp, err := mime.ParseMediaType(h.Get("Content-Disposition")); err == nil {
		l.filename = dp["filename"]
	}
	if l.filename == "" {
		l.filename = params["name"]
	}
	return []leaf{l}, nil
}

// newlineStripper drops CR and LF, which base64.NewDecoder tolerates only
// partly.
type newlineStripper struct{ r *bufio.Reader }

func (n *newlineStripper) Read(p []byte) (int, error) {
	i := 0
	for i < len(p) {
		c, err := n.r.ReadByte()
		if err != nil {
			return i, err
		}
		if c != '\r' && c != '\n' {
			p[i] = c
			i++
		}
	}
	return i, nil
}

// sha256Hex is the hex SHA-256 of b.
func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// headerNames returns the field names of raw's header in order.
func headerNames(raw []byte) []string {
	var names []string
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if name, _, ok := strings.Cut(line, ":"); ok {
			names = append(names, name)
		}
	}
	return names
}

// checkTracePosition checks where docs/profile.md §12 puts the trace lines
// of a message without earlier ones: OPES-System and then OPES-Via right
// below the leading block of Return-Path and Received fields.
func checkTracePosition(t *testing.T, raw []byte) {
	t.Helper()
	names := headerNames(raw)
	i := 0
	for i < len(names) && (strings.EqualFold(names[i], "Received") || strings.EqualFold(names[i], "Return-Path")) {
		i++
	}
	if i == 0 || i+1 >= len(names) || names[i] != "OPES-System" || names[i+1] != "OPES-Via" {
		t.Errorf("trace lines not right below the Received block: header fields %v", names)
	}
}

func TestMIMELeaves(t *testing.T) {
	exe := attachment{"tool.exe", "application/octet-stream", []byte("MZ\x90\x00 binary")}
	pdf := attachment{"report.pdf", "application/pdf", bytes.Repeat([]byte("%PDF-1.4 "), 100)}
	raw := scenarioMessage("a@example.org", "b@example.com", "Mime test", "Hello.\n", exe, pdf)
	leaves, err := mimeLeaves(raw)
	if err != nil {
		t.Fatal(err)
	}
	// The line break before a delimiter belongs to the delimiter.
	if len(leaves) != 3 || leaves[0].contentType != "text/plain" || string(leaves[0].data) != "Hello." ||
		leaves[1].filename != "tool.exe" || !bytes.Equal(leaves[1].data, exe.data) ||
		leaves[2].filename != "report.pdf" || !bytes.Equal(leaves[2].data, pdf.data) {
		for _, l := range leaves {
			t.Errorf("leaf %s %q: %d bytes %q", l.contentType, l.filename, len(l.data), l.data[:min(len(l.data), 20)])
		}
	}
	// A message that lost its closing delimiter does not parse.
	cut := bytes.Replace(raw, []byte("--scenario-boundary-1--"), nil, 1)
	if _, err := mimeLeaves(cut); err == nil {
		t.Error("a multipart without its closing delimiter parsed")
	}
	if got := headerNames([]byte("Received: a\n\tb\nOPES-System: x\nSubject: y\n\nbody: z\n")); strings.Join(got, ",") != "Received,OPES-System,Subject" {
		t.Errorf("headerNames = %v", got)
	}
}
