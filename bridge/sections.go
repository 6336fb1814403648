package bridge

import (
	"io"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// section is one leaf MIME entity of a message body, as SECTIONS sends it
// (docs/profile.md 4.1): its bytes run from the octet after its delimiter
// line to the CRLF before the next delimiter line.
type section struct {
	path       []int
	start, end int64 // the entity's bytes in the body
	delimStart int64 // start of its delimiter line, -1 for a whole-body section
	delim      int64 // the same with the line break before it (ocpsmtp.Section.Delim)
}

// index returns the section's AM-Index.
func (s section) index() string { return ocpsmtp.FormatIndex(s.path...) }

// splitSections returns the leaf sections of a body whose top-level
// Content-Type is contentType, cut by the profile's one splitter
// (ocpsmtp.CutSections, which opes-callout's section tree agrees with). A
// body that is not multipart, or cannot be split reliably, is the single
// section "1".
func splitSections(body io.ReaderAt, size int64, contentType string) ([]section, error) {
	cut, err := ocpsmtp.CutSections(body, size, contentType)
	if err != nil {
		return nil, err
	}
	out := make([]section, len(cut))
	for i, c := range cut {
		out[i] = section{path: c.Path, start: c.Start, end: c.End, delimStart: c.Line, delim: c.Delim}
	}
	return out, nil
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
