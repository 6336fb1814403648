package ocpsmtp

import (
	"strconv"
	"strings"
)

// MaxSectionDepth bounds the nesting of a SECTIONS index.
const MaxSectionDepth = 32

// FormatIndex returns the AM-Index value for an instance: FormatIndex(3)
// is the third header field ("3"), FormatIndex(2, 1) the first part of the
// second part of a multipart body ("2.1", IMAP-style section numbers).
func FormatIndex(path ...int) string {
	var b strings.Builder
	for i, n := range path {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// ParseIndex checks index, an AM-Index value, for part p and returns its
// numbers: one positive number for SINGLEHEADERS (the field's 1-based
// position in the original header section), a dotted path of positive
// numbers for SECTIONS (1-based at each level, at most MaxSectionDepth
// levels). Other parts have no index.
func ParseIndex(p Part, index string) ([]int, error) {
	const fn = "ParseIndex"
	if !p.Instanced() {
		return nil, syntaxErr(fn, "part %q has no instances", p)
	}
	f := strings.Split(index, ".")
	if p == PartSINGLEHEADERS && len(f) != 1 {
		return nil, syntaxErr(fn, "%q: a SINGLEHEADERS index is one number", index)
	}
	if len(f) > MaxSectionDepth {
		return nil, syntaxErr(fn, "%q: deeper than %d", index, MaxSectionDepth)
	}
	path := make([]int, len(f))
	for i, s := range f {
		if s == "" || s[0] == '0' || len(s) > 9 {
			return nil, syntaxErr(fn, "%q: not a positive number without leading zeros", index)
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, syntaxErr(fn, "%q: not a positive number", index)
		}
		path[i] = n
	}
	return path, nil
}
