package bridge

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"strings"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// section is one leaf MIME entity of a message body, as SECTIONS sends it
// (docs/profile.md 4.1): its bytes run from the octet after its delimiter
// line to the CRLF before the next delimiter line.
type section struct {
	path       []int
	start, end int64 // the entity's bytes in the body
	delimStart int64 // start of its delimiter line, -1 for a whole-body section
}

// index returns the section's AM-Index.
func (s section) index() string { return ocpsmtp.FormatIndex(s.path...) }

// splitSections returns the leaf sections of a body whose top-level
// Content-Type is contentType. A body that is not multipart, or cannot be
// split reliably, is the single section "1".
func splitSections(body io.ReaderAt, size int64, contentType string) []section {
	whole := []section{{path: []int{1}, start: 0, end: size, delimStart: -1}}
	boundary, ok := multipartBoundary(contentType)
	if !ok {
		return whole
	}
	var out []section
	if !splitMultipart(body, 0, size, boundary, nil, 1, &out) {
		return whole
	}
	return out
}

// multipartBoundary returns the boundary of a multipart Content-Type.
func multipartBoundary(contentType string) (string, bool) {
	mt, params, err := mime.ParseMediaType(strings.TrimSpace(contentType))
	if err != nil || !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "" {
		return "", false
	}
	return params["boundary"], true
}

// splitMultipart appends the leaves of the multipart body [start, end) to
// out; it reports false when the body has no closing delimiter or no parts.
func splitMultipart(body io.ReaderAt, start, end int64, boundary string, prefix []int, depth int, out *[]section) bool {
	if depth > ocpsmtp.MaxSectionDepth {
		return false
	}
	delim := []byte("--" + boundary)
	type part struct{ delimStart, start int64 }
	var parts []part
	var closeAt int64 = -1
	r := bufio.NewReaderSize(io.NewSectionReader(body, start, end-start), 16<<10)
	off := start
	atLineStart := true
	for closeAt < 0 {
		line, err := r.ReadSlice('\n')
		lineStart := off
		off += int64(len(line))
		isStart := atLineStart
		atLineStart = len(line) > 0 && line[len(line)-1] == '\n'
		if isStart && bytes.HasPrefix(line, delim) {
			rest := bytes.TrimRight(line[len(delim):], " \t\r\n")
			switch {
			case len(rest) == 0:
				parts = append(parts, part{delimStart: lineStart, start: off})
			case string(rest) == "--":
				closeAt = lineStart
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			break
		}
	}
	if closeAt < 0 || len(parts) == 0 {
		return false
	}
	for i, p := range parts {
		next := closeAt
		if i+1 < len(parts) {
			next = parts[i+1].delimStart
		}
		// The CRLF before the next delimiter line belongs to it.
		pend := next
		if pend-2 >= p.start && readAt(body, pend-2, 2) == "\r\n" {
			pend -= 2
		} else if pend-1 >= p.start && readAt(body, pend-1, 1) == "\n" {
			pend--
		}
		path := append(append([]int(nil), prefix...), i+1)
		if b, hdrEnd, ok := partBoundary(body, p.start, pend); ok {
			var inner []section
			if splitMultipart(body, hdrEnd, pend, b, path, depth+1, &inner) {
				*out = append(*out, inner...)
				continue
			}
		}
		*out = append(*out, section{path: path, start: p.start, end: pend, delimStart: p.delimStart})
	}
	return true
}

// partBoundary reads the header of the entity [start, end) and returns its
// multipart boundary and where its body starts.
func partBoundary(body io.ReaderAt, start, end int64) (string, int64, bool) {
	r := bufio.NewReader(io.NewSectionReader(body, start, end-start))
	off := start
	var ctype strings.Builder
	inCT := false
	for {
		line, err := r.ReadString('\n')
		off += int64(len(line))
		trimmed := strings.TrimRight(line, "\r\n")
		if trimmed == "" {
			if err != nil && line == "" {
				return "", 0, false
			}
			break
		}
		if trimmed[0] == ' ' || trimmed[0] == '\t' {
			if inCT {
				ctype.WriteString(trimmed)
			}
		} else {
			name, value, _ := strings.Cut(trimmed, ":")
			inCT = strings.EqualFold(strings.TrimSpace(name), "Content-Type")
			if inCT {
				ctype.Reset()
				ctype.WriteString(value)
			}
		}
		if err != nil {
			return "", 0, false
		}
	}
	b, ok := multipartBoundary(ctype.String())
	return b, off, ok
}

func readAt(r io.ReaderAt, off int64, n int) string {
	b := make([]byte, n)
	if _, err := r.ReadAt(b, off); err != nil {
		return ""
	}
	return string(b)
}

// sectionEdit is a change to one section: new bytes, or its deletion.
type sectionEdit struct {
	sec     section
	content io.Reader // nil = delete
}

// spliceSections returns the body with the edits applied; every byte not
// in an edited section is copied unchanged. Edits must be sorted by start
// and disjoint (leaf sections are).
func spliceSections(body io.ReaderAt, size int64, edits []sectionEdit) io.Reader {
	var parts []io.Reader
	var pos int64
	for _, e := range edits {
		from, to := e.sec.start, e.sec.end
		if e.content == nil {
			// Delete the entity with its delimiter line: from the CRLF
			// before that line, or, for a first line, through the CRLF
			// after the entity.
			switch {
			case e.sec.delimStart >= 2 && readAt(body, e.sec.delimStart-2, 2) == "\r\n":
				from = e.sec.delimStart - 2
			case e.sec.delimStart >= 0:
				from = e.sec.delimStart
				if to+2 <= size && readAt(body, to, 2) == "\r\n" {
					to += 2
				}
			}
		}
		if from < pos {
			from = pos
		}
		parts = append(parts, io.NewSectionReader(body, pos, from-pos))
		if e.content != nil {
			parts = append(parts, e.content)
		}
		pos = to
	}
	parts = append(parts, io.NewSectionReader(body, pos, size-pos))
	return io.MultiReader(parts...)
}
