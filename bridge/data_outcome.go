package bridge

import (
	"bufio"
	"errors"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// This file is the outcome's reading of the answers to the data parts:
// header operations, the replacement body, spliced SECTIONS.

// collectData turns the answers to the data parts into header operations
// and a replacement body (docs/profile.md 6 and 11).
func (s *session) collectData(out *outcome, ans answers) *AdaptationError {
	var edits []sectionEdit
	if ans.dataFail != nil {
		return ans.dataFail
	}
	for _, d := range ans.data {
		r, size := d.r, d.size
		switch d.part {
		case ocpsmtp.PartRAWDATA, ocpsmtp.PartALLHEADERS:
			// A whole message, or a header section that ends at
			// its empty line.
			if size == 0 {
				return protocolError("empty adapted %s", d.part)
			}
			fields, body, err := splitMessage(r, s.policy().MaxHeaderBytes)
			if err != nil {
				return protocolError("adapted %s: %v", d.part, err)
			}
			if d.part == ocpsmtp.PartALLHEADERS {
				if n, _ := io.Copy(io.Discard, body); n > 0 {
					return protocolError("adapted ALLHEADERS goes on after the empty line")
				}
			}
			if err := s.headerChanges(out, fields); err != nil {
				return err
			}
			if d.part == ocpsmtp.PartRAWDATA {
				out.body = body
			}
		case ocpsmtp.PartBODY:
			out.body = r
		case ocpsmtp.PartSINGLEHEADERS:
			op, err := s.singleHeader(d.index, r, size)
			if err != nil {
				return err
			}
			out.headerOps = append(out.headerOps, op)
		case ocpsmtp.PartSECTIONS:
			sec, ok := s.sectionByIndex(d.index)
			if !ok {
				return protocolError("answer for unknown section %q", d.index)
			}
			e := sectionEdit{sec: sec}
			if size > 0 {
				e.content = r
			}
			edits = append(edits, e)
		}
	}
	if len(edits) > 0 {
		sort.Slice(edits, func(i, j int) bool { return edits[i].sec.start < edits[j].sec.start })
		out.body = spliceSections(s.mt.body.ReaderAt(), s.mt.body.Size(), edits)
	}
	return nil
}

// headerChanges adds the operations that turn the original header into
// fields.
func (s *session) headerChanges(out *outcome, fields []headerField) *AdaptationError {
	ops, err := diffHeaders(s.mt.headers, fields)
	if err != nil {
		return protocolError("adapted header: %v", err)
	}
	out.headerOps = append(out.headerOps, ops...)
	return nil
}

// singleHeader turns the answer to one SINGLEHEADERS instance into a change
// or deletion of that field by its per-name index.
func (s *session) singleHeader(index string, r io.Reader, size int64) (headerOp, *AdaptationError) {
	n, err := strconv.Atoi(index)
	hs := s.mt.headers
	if err != nil || n < 1 || n > len(hs) {
		return headerOp{}, protocolError("SINGLEHEADERS index %q out of range", index)
	}
	orig := hs[n-1]
	if ocpsmtp.IsOPESHeader(orig.name) {
		return headerOp{}, protocolError("answer changes the trace field %s", orig.name)
	}
	perName := 0
	for _, h := range hs[:n] {
		if strings.EqualFold(h.name, orig.name) {
			perName++
		}
	}
	if size == 0 {
		return headerOp{index: perName, name: orig.name, value: ""}, nil
	}
	field, err := readField(r)
	if err != nil {
		return headerOp{}, protocolError("SINGLEHEADERS %s: %v", index, err)
	}
	name, value, err := ocpsmtp.ParseHeaderField(field)
	if err != nil {
		return headerOp{}, protocolError("SINGLEHEADERS %s: %v", index, err)
	}
	if !strings.EqualFold(name, orig.name) {
		return headerOp{}, protocolError("SINGLEHEADERS %s renames %s to %s", index, orig.name, name)
	}
	return headerOp{index: perName, name: orig.name, value: " " + strings.TrimLeft(value, " \t")}, nil
}

// readField reads one header field with its final CRLF (at most one
// header line limit's worth of folded lines).
func readField(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(bufio.NewReader(r), 1<<20))
	if err != nil {
		return "", err
	}
	f := string(b)
	if !strings.HasSuffix(f, "\r\n") {
		return "", errors.New("field does not end with CRLF")
	}
	return strings.TrimSuffix(f, "\r\n"), nil
}

// sectionByIndex finds a section sent under an AM-Index.
func (s *session) sectionByIndex(index string) (section, bool) {
	for _, sec := range s.mt.sections {
		if sec.index() == index {
			return sec, true
		}
	}
	return section{}, false
}
