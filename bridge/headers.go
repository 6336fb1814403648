package bridge

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// headerOp is one header modification: change (or, with an empty value,
// delete) the index-th field called name, or insert a new field.
type headerOp struct {
	insert bool
	index  int // per-name, 1-based (change/delete)
	name   string
	value  string // raw, with leading space
}

// maxHeaderLine bounds one line of an adapted header.
const maxHeaderLine = 64 << 10

// splitMessage reads the header of an adapted RAWDATA stream (at most
// maxHeader bytes) and returns its fields and a reader of the body that
// follows the empty line.
func splitMessage(r io.Reader, maxHeader int) ([]headerField, io.Reader, error) {
	if maxHeader <= 0 {
		maxHeader = 1 << 20
	}
	// A small buffer serves the usual short lines without copying; a
	// longer line is collected in long, up to maxHeaderLine.
	br := bufio.NewReaderSize(r, 4<<10)
	var fields []headerField
	var long []byte
	total := 0
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long[:0], line...)
			for err == bufio.ErrBufferFull && len(long) <= maxHeaderLine {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			if len(long) > maxHeaderLine {
				return nil, nil, errors.New("header line too long")
			}
			line = long
		}
		total += len(line)
		if total > maxHeader {
			return nil, nil, fmt.Errorf("header larger than %d bytes", maxHeader)
		}
		if err != nil && len(line) == 0 {
			if err == io.EOF {
				// A message that is only a header (no empty line).
				return fields, bytes.NewReader(nil), nil
			}
			return nil, nil, err
		}
		if !bytes.HasSuffix(line, []byte("\r\n")) {
			if err == io.EOF {
				return nil, nil, errors.New("header line without CRLF at end of data")
			}
			return nil, nil, errors.New("header line ends without CR")
		}
		content := line[:len(line)-2]
		if bytes.IndexByte(content, 0) >= 0 || bytes.IndexByte(content, '\r') >= 0 {
			return nil, nil, errors.New("NUL or bare CR in the header")
		}
		if len(content) == 0 {
			return fields, br, nil
		}
		if content[0] == ' ' || content[0] == '\t' {
			if len(fields) == 0 {
				return nil, nil, errors.New("continuation line before the first field")
			}
			fields[len(fields)-1].value += "\r\n" + string(content)
			continue
		}
		name, value, ok := strings.Cut(string(content), ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, nil, fmt.Errorf("malformed header line %q", truncate(string(content), 60))
		}
		fields = append(fields, headerField{name: name, value: value})
	}
}

// diffHeaders returns the operations that turn the original fields into the
// adapted ones: same-name fields are paired in order; a changed value is a
// change, a missing one a deletion, an extra one an insertion. OPES trace
// lines of the original may not be changed, removed or added (RFC 4236 §4,
// draft §4.1): an adapted header that does is an error.
func diffHeaders(orig, adapted []headerField) ([]headerOp, error) {
	if !sameTrace(orig, adapted) {
		return nil, errors.New("the adapted header changes OPES trace or bypass lines")
	}
	byName := map[string][]headerField{}
	var order []string
	for _, f := range adapted {
		k := strings.ToLower(f.name)
		if _, ok := byName[k]; !ok {
			order = append(order, k)
		}
		byName[k] = append(byName[k], f)
	}
	var ops []headerOp
	seen := map[string]int{}
	for _, f := range orig {
		k := strings.ToLower(f.name)
		seen[k]++
		n := seen[k]
		if isTraceHeader(f.name) {
			continue
		}
		list := byName[k]
		if n > len(list) {
			ops = append(ops, headerOp{index: n, name: f.name, value: ""})
			continue
		}
		if list[n-1].value != f.value {
			ops = append(ops, headerOp{index: n, name: f.name, value: list[n-1].value})
		}
	}
	for _, k := range order {
		list := byName[k]
		if isTraceHeader(list[0].name) {
			continue
		}
		for i := seen[k]; i < len(list); i++ {
			ops = append(ops, headerOp{insert: true, name: list[i].name, value: list[i].value})
		}
	}
	return ops, nil
}

// sameTrace reports whether both headers hold the same OPES-* fields.
func sameTrace(a, b []headerField) bool {
	var ta, tb []headerField
	for _, f := range a {
		if ocpsmtp.IsOPESHeader(f.name) {
			ta = append(ta, f)
		}
	}
	for _, f := range b {
		if ocpsmtp.IsOPESHeader(f.name) {
			tb = append(tb, f)
		}
	}
	if len(ta) != len(tb) {
		return false
	}
	for i := range ta {
		if !strings.EqualFold(ta[i].name, tb[i].name) || ta[i].value != tb[i].value {
			return false
		}
	}
	return true
}
