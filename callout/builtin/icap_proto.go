package builtin

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/opes-milter/opes-milter/callout"
)

// Bounds on what an ICAP server can make the client hold.
const (
	icapMaxLine    = 8 << 10  // one line of a header section or a chunk size
	icapMaxHeaders = 64 << 10 // an ICAP or encapsulated HTTP header section
	icapMaxFields  = 200      // fields in one header section
)

// errICAP is an ICAP answer that breaks RFC 3507 or that this client
// cannot use: a failure of the backend, never a verdict.
var errICAP = errors.New("icap: bad response")

// icapResponse is an ICAP response's status and headers, and the
// encapsulated HTTP response's status and headers when it has them.
type icapResponse struct {
	Status int
	Header textproto.MIMEHeader
	// Encapsulated lists the entities in order ("res-hdr", "res-body",
	// "null-body", "opt-body", ...) and Offsets their offsets.
	Encapsulated []string
	Offsets      []int
	// HTTPStatus and HTTPHeader are the encapsulated response's, 0 and nil
	// without res-hdr.
	HTTPStatus int
	HTTPHeader textproto.MIMEHeader
	// HasBody reports an encapsulated body (res-body or opt-body) that
	// follows, chunked.
	HasBody bool
}

// readHeaderSection reads header lines up to the empty line, at most
// icapMaxHeaders bytes and icapMaxFields fields, folded lines joined.
func readHeaderSection(r *bufio.Reader, budget *int) (textproto.MIMEHeader, error) {
	h := textproto.MIMEHeader{}
	var last string
	n := 0
	for {
		line, err := callout.ReadLine(r, icapMaxLine)
		if err != nil {
			return nil, err
		}
		*budget -= len(line) + 2
		if *budget < 0 {
			return nil, fmt.Errorf("%w: header section over %d bytes", callout.ErrResponseTooLarge, icapMaxHeaders)
		}
		if len(line) == 0 {
			return h, nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last == "" {
				return nil, fmt.Errorf("%w: continuation line first", errICAP)
			}
			vs := h[last]
			vs[len(vs)-1] += "\n" + strings.TrimSpace(string(line))
			continue
		}
		name, value, ok := strings.Cut(string(line), ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("%w: header line %q", errICAP, clip(string(line), 80))
		}
		if n++; n > icapMaxFields {
			return nil, fmt.Errorf("%w: over %d header fields", callout.ErrResponseTooLarge, icapMaxFields)
		}
		last = textproto.CanonicalMIMEHeaderKey(name)
		h.Add(last, strings.TrimSpace(value))
	}
}

// parseStatusLine parses "ICAP/1.0 200 OK" (proto "ICAP/") or "HTTP/1.1
// 403 Forbidden" (proto "HTTP/").
func parseStatusLine(line, proto string) (int, error) {
	v, rest, ok := strings.Cut(line, " ")
	if !ok || !strings.HasPrefix(v, proto) {
		return 0, fmt.Errorf("%w: status line %q", errICAP, clip(line, 80))
	}
	code, _, _ := strings.Cut(rest, " ")
	n, err := strconv.Atoi(code)
	if err != nil || len(code) != 3 || n < 100 {
		return 0, fmt.Errorf("%w: status line %q", errICAP, clip(line, 80))
	}
	return n, nil
}

// parseEncapsulated parses "req-hdr=0, res-hdr=45, res-body=120": names
// with increasing offsets, a body entity last.
func parseEncapsulated(s string) (names []string, offs []int, err error) {
	for item := range strings.SplitSeq(s, ",") {
		name, off, ok := strings.Cut(strings.TrimSpace(item), "=")
		n, perr := strconv.Atoi(off)
		if !ok || perr != nil || n < 0 || n > icapMaxHeaders || (len(offs) > 0 && n < offs[len(offs)-1]) {
			return nil, nil, fmt.Errorf("%w: Encapsulated %q", errICAP, clip(s, 80))
		}
		switch name {
		case "req-hdr", "res-hdr", "req-body", "res-body", "null-body", "opt-body":
		default:
			return nil, nil, fmt.Errorf("%w: Encapsulated entity %q", errICAP, clip(name, 40))
		}
		names, offs = append(names, name), append(offs, n)
	}
	if len(names) == 0 || len(names) > 4 {
		return nil, nil, fmt.Errorf("%w: Encapsulated %q", errICAP, clip(s, 80))
	}
	return names, offs, nil
}

// readICAPResponse reads an ICAP response up to its encapsulated body: the
// status line, the ICAP headers and the encapsulated HTTP headers. A 100
// Continue has no Encapsulated header.
func readICAPResponse(r *bufio.Reader) (*icapResponse, error) {
	line, err := callout.ReadLine(r, icapMaxLine)
	if err != nil {
		return nil, err
	}
	status, err := parseStatusLine(string(line), "ICAP/1.")
	if err != nil {
		return nil, err
	}
	budget := icapMaxHeaders
	h, err := readHeaderSection(r, &budget)
	if err != nil {
		return nil, err
	}
	resp := &icapResponse{Status: status, Header: h}
	enc := h.Get("Encapsulated")
	if enc == "" {
		if status == 200 {
			return nil, fmt.Errorf("%w: 200 without Encapsulated", errICAP)
		}
		return resp, nil
	}
	if resp.Encapsulated, resp.Offsets, err = parseEncapsulated(enc); err != nil {
		return nil, err
	}
	pos := 0
	for i, name := range resp.Encapsulated {
		if resp.Offsets[i] != pos {
			return nil, fmt.Errorf("%w: Encapsulated offset %d of %s, at %d", errICAP, resp.Offsets[i], name, pos)
		}
		switch name {
		case "req-hdr", "res-hdr":
			hb := 0
			budget := icapMaxHeaders
			line, err := readCountedLine(r, &hb)
			if err != nil {
				return nil, err
			}
			st, err := parseStatusOrRequest(line, name)
			if err != nil {
				return nil, err
			}
			fields, err := readCountedHeader(r, &hb, &budget)
			if err != nil {
				return nil, err
			}
			if name == "res-hdr" {
				resp.HTTPStatus, resp.HTTPHeader = st, fields
			}
			pos += hb
		case "res-body", "req-body", "opt-body":
			if i != len(resp.Encapsulated)-1 {
				return nil, fmt.Errorf("%w: body entity %s not last", errICAP, name)
			}
			resp.HasBody = true
		case "null-body":
			if i != len(resp.Encapsulated)-1 {
				return nil, fmt.Errorf("%w: null-body not last", errICAP)
			}
		}
	}
	if last := resp.Encapsulated[len(resp.Encapsulated)-1]; last == "req-hdr" || last == "res-hdr" {
		return nil, fmt.Errorf("%w: Encapsulated without a body entity", errICAP)
	}
	return resp, nil
}

// readCountedLine reads a line, adding its length with the line ending to
// *n.
func readCountedLine(r *bufio.Reader, n *int) (string, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(line)+len(frag) > icapMaxLine {
			return "", fmt.Errorf("%w: line over %d bytes", callout.ErrResponseTooLarge, icapMaxLine)
		}
		line = append(line, frag...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	*n += len(line)
	return strings.TrimRight(string(line), "\r\n"), nil
}

// readCountedHeader reads an encapsulated HTTP header section after its
// first line, counting its bytes into *n.
func readCountedHeader(r *bufio.Reader, n, budget *int) (textproto.MIMEHeader, error) {
	h := textproto.MIMEHeader{}
	fields := 0
	for {
		line, err := readCountedLine(r, n)
		if err != nil {
			return nil, err
		}
		if *budget -= len(line) + 2; *budget < 0 {
			return nil, fmt.Errorf("%w: encapsulated header over %d bytes", callout.ErrResponseTooLarge, icapMaxHeaders)
		}
		if line == "" {
			return h, nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // folded HTTP header lines carry nothing this client reads
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("%w: encapsulated header line %q", errICAP, clip(line, 80))
		}
		if fields++; fields > icapMaxFields {
			return nil, fmt.Errorf("%w: over %d encapsulated header fields", callout.ErrResponseTooLarge, icapMaxFields)
		}
		h.Add(textproto.CanonicalMIMEHeaderKey(name), strings.TrimSpace(value))
	}
}

// parseStatusOrRequest parses the first line of an encapsulated header:
// an HTTP status line for res-hdr (its code), a request line for req-hdr
// (0).
func parseStatusOrRequest(line, entity string) (int, error) {
	if entity == "res-hdr" {
		return parseStatusLine(line, "HTTP/")
	}
	if f := strings.Fields(line); len(f) != 3 || !strings.HasPrefix(f[2], "HTTP/") {
		return 0, fmt.Errorf("%w: encapsulated request line %q", errICAP, clip(line, 80))
	}
	return 0, nil
}

// readChunked reads a chunked body with net/http's chunked reader (chunk
// lines bounded by r's buffer, the chunk overhead bounded), then its
// trailer section, handing each piece to fn; at most max bytes of data,
// checked as they arrive. ICAP's "ieof" extension is the client's and
// means nothing in a response.
func readChunked(r *bufio.Reader, max int64, fn func([]byte) error) error {
	cr := httputil.NewChunkedReader(r)
	buf := make([]byte, 32<<10)
	var total int64
	for {
		n, err := cr.Read(buf)
		if total += int64(n); total > max {
			return fmt.Errorf("%w: body over %d bytes", callout.ErrResponseTooLarge, max)
		}
		if n > 0 && fn != nil {
			if ferr := fn(buf[:n]); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: chunked body: %w", errICAP, err)
		}
	}
	budget := icapMaxHeaders
	_, err := readHeaderSection(r, &budget) // the trailer section
	return err
}

// writeChunk writes p as one chunk (nothing for an empty p).
func writeChunk(w *bufio.Writer, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if _, err := fmt.Fprintf(w, "%x\r\n", len(p)); err != nil {
		return err
	}
	if _, err := w.Write(p); err != nil {
		return err
	}
	_, err := w.WriteString("\r\n")
	return err
}

// icapOptions is what an OPTIONS response says about a service.
type icapOptions struct {
	Methods        []string
	Preview        int // -1: no preview
	Allow204       bool
	MaxConnections int // 0: not said
	TTL            int // seconds, 0: not said
	ISTag          string
	Service        string // the server's description of the service
}

// parseOptions reads the fields of an OPTIONS response.
func parseOptions(h textproto.MIMEHeader) (icapOptions, error) {
	o := icapOptions{Preview: -1, ISTag: h.Get("Istag"), Service: sanitizeText(h.Get("Service"))}
	for _, m := range h.Values("Methods") {
		for f := range strings.SplitSeq(m, ",") {
			if f = strings.TrimSpace(f); f != "" {
				o.Methods = append(o.Methods, f)
			}
		}
	}
	num := func(name string) (int, bool, error) {
		v := h.Get(name)
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return 0, false, fmt.Errorf("%w: %s %q", errICAP, name, clip(v, 40))
		}
		return n, true, nil
	}
	var err error
	var ok bool
	var n int
	if n, ok, err = num("Preview"); err != nil {
		return o, err
	} else if ok {
		o.Preview = n
	}
	if o.MaxConnections, _, err = num("Max-Connections"); err != nil {
		return o, err
	}
	if o.TTL, _, err = num("Options-Ttl"); err != nil {
		return o, err
	}
	for _, a := range h.Values("Allow") {
		for f := range strings.SplitSeq(a, ",") {
			if strings.TrimSpace(f) == "204" {
				o.Allow204 = true
			}
		}
	}
	return o, nil
}

// threat returns the name of what an ICAP response reports found: the
// Threat of X-Infection-Found, the threat line of X-Violations-Found, or
// "" when neither is there.
func threat(h textproto.MIMEHeader) string {
	if v := h.Get("X-Infection-Found"); v != "" {
		for f := range strings.SplitSeq(v, ";") {
			if name, ok := strings.CutPrefix(strings.TrimSpace(f), "Threat="); ok {
				if name = sanitizeSignature(name); name != "" {
					return name
				}
			}
		}
		return "ICAP.Infection"
	}
	if v := h.Get("X-Violations-Found"); v != "" {
		// "N" then, per violation, folded lines: filename, threat, id,
		// disposition.
		lines := strings.Split(v, "\n")
		if len(lines) >= 3 {
			if name := sanitizeSignature(lines[2]); name != "" {
				return name
			}
		}
		if n, err := strconv.Atoi(strings.TrimSpace(lines[0])); err == nil && n == 0 {
			return ""
		}
		return "ICAP.Violation"
	}
	return ""
}

// sanitizeSignature makes a name fit for a reply and a header: printable
// ASCII, spaces turned into dots, at most 100 characters.
func sanitizeSignature(s string) string {
	s = strings.TrimSpace(s)
	b := make([]byte, 0, min(len(s), 100))
	for _, c := range []byte(s) {
		if len(b) == 100 {
			break
		}
		switch {
		case c == ' ' || c == '\t':
			b = append(b, '.')
		case c > ' ' && c < 0x7f:
			b = append(b, c)
		}
	}
	return string(b)
}

// sanitizeText keeps the printable ASCII of s, at most 100 bytes.
func sanitizeText(s string) string {
	b := make([]byte, 0, min(len(s), 100))
	for _, c := range []byte(strings.TrimSpace(s)) {
		if len(b) == 100 {
			break
		}
		if c >= ' ' && c < 0x7f {
			b = append(b, c)
		}
	}
	return string(b)
}
