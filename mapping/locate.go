package mapping

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// BurntSushi/toml keeps the position of every key to itself: MetaData
// gives keys without places. The scanner below finds them again. It runs
// only over documents the toml parser has accepted, so it can be lenient
// about syntax; it still never loops or panics on any input.

// locate finds the place of every key of a TOML document.
func locate(src []byte) positions {
	s := &scanner{src: src, line: 1, col: 1, pos: positions{}, arrays: map[string]int{}}
	if strings.HasPrefix(string(src), "\uFEFF") {
		s.i = 3
	}
	table := ""
	for !s.eof() {
		s.skipSpace(true)
		if s.eof() {
			break
		}
		if s.peek() == '[' {
			table = s.header()
		} else {
			s.keyval(table)
		}
		s.skipLine()
	}
	return s.pos
}

type scanner struct {
	src       []byte
	i         int
	line, col int
	pos       positions
	// arrays counts the elements of each array of tables ([[name]]).
	arrays map[string]int
}

func (s *scanner) eof() bool  { return s.i >= len(s.src) }
func (s *scanner) here() pos  { return pos{s.line, s.col} }
func (s *scanner) peek() byte { return s.src[s.i] }

func (s *scanner) has(prefix string) bool {
	return strings.HasPrefix(string(s.src[s.i:]), prefix)
}

// advance moves past one byte, counting lines and (rune) columns.
func (s *scanner) advance() {
	if s.eof() {
		return
	}
	c := s.src[s.i]
	s.i++
	switch {
	case c == '\n':
		s.line++
		s.col = 1
	case c < utf8.RuneSelf || utf8.RuneStart(c):
		s.col++
	}
}

func (s *scanner) record(path string, p pos) {
	if _, ok := s.pos[path]; !ok {
		s.pos[path] = p
	}
}

// skipSpace skips blanks and comments, and newlines when asked to.
func (s *scanner) skipSpace(newlines bool) {
	for !s.eof() {
		switch s.peek() {
		case ' ', '\t':
			s.advance()
		case '\r', '\n':
			if !newlines {
				return
			}
			s.advance()
		case '#':
			for !s.eof() && s.peek() != '\n' {
				s.advance()
			}
		default:
			return
		}
	}
}

// skipLine moves past the end of the current line.
func (s *scanner) skipLine() {
	for !s.eof() {
		c := s.peek()
		s.advance()
		if c == '\n' {
			return
		}
	}
}

// header reads "[a.b]" or "[[a.b]]" and returns the path of that table.
func (s *scanner) header() string {
	at := s.here()
	s.advance()
	array := !s.eof() && s.peek() == '['
	if array {
		s.advance()
	}
	path := ""
	keys := s.key()
	for i, k := range keys {
		path = joinPath(path, k.name)
		switch n, isArray := s.arrays[path]; {
		case array && i == len(keys)-1:
			s.record(path, at)
			s.arrays[path] = n + 1
			path = indexPath(path, n)
		case isArray:
			path = indexPath(path, n-1)
		}
		s.record(path, at)
	}
	return path
}

type keyPart struct {
	name string
	at   pos
}

// key reads a dotted key.
func (s *scanner) key() []keyPart {
	var keys []keyPart
	for !s.eof() {
		s.skipSpace(false)
		if s.eof() {
			break
		}
		at := s.here()
		var name string
		switch s.peek() {
		case '"':
			name = s.basicString()
		case '\'':
			name = s.literalString()
		default:
			start := s.i
			for !s.eof() && isBareByte(s.peek()) {
				s.advance()
			}
			name = string(s.src[start:s.i])
		}
		keys = append(keys, keyPart{name, at})
		s.skipSpace(false)
		if s.eof() || s.peek() != '.' {
			break
		}
		s.advance()
	}
	return keys
}

// keyval reads "key = value" inside the table at path table.
func (s *scanner) keyval(table string) {
	path := table
	for _, k := range s.key() {
		path = joinPath(path, k.name)
		s.record(path, k.at)
	}
	s.skipSpace(false)
	if !s.eof() && s.peek() == '=' {
		s.advance()
	}
	s.skipSpace(false)
	s.value(path)
}

// value reads any value; arrays and inline tables record their elements.
func (s *scanner) value(path string) {
	if s.eof() {
		return
	}
	switch {
	case s.has(`"""`):
		s.multiline(`"""`)
	case s.has(`'''`):
		s.multiline(`'''`)
	case s.peek() == '"':
		s.basicString()
	case s.peek() == '\'':
		s.literalString()
	case s.peek() == '[':
		s.array(path)
	case s.peek() == '{':
		s.inlineTable(path)
	default:
		s.scalar()
	}
}

func (s *scanner) array(path string) {
	s.advance()
	for n := 0; !s.eof(); {
		s.skipSpace(true)
		if s.eof() {
			return
		}
		switch s.peek() {
		case ']':
			s.advance()
			return
		case ',':
			s.advance()
			continue
		}
		elem := indexPath(path, n)
		s.record(elem, s.here())
		before := s.i
		s.value(elem)
		if s.i == before {
			s.advance()
		}
		n++
	}
}

func (s *scanner) inlineTable(path string) {
	s.advance()
	for !s.eof() {
		s.skipSpace(true)
		if s.eof() {
			return
		}
		switch s.peek() {
		case '}':
			s.advance()
			return
		case ',':
			s.advance()
			continue
		}
		before := s.i
		s.keyval(path)
		if s.i == before {
			s.advance()
		}
	}
}

// scalar reads a number, boolean or date-time.
func (s *scanner) scalar() {
	start := s.i
	for !s.eof() && !strings.ContainsRune(",]}# \t\r\n", rune(s.peek())) {
		s.advance()
	}
	// A date-time may separate date and time by a space.
	if isDate(s.src[start:s.i]) && s.has(" ") && s.i+1 < len(s.src) && isDigit(s.src[s.i+1]) {
		s.advance()
		for !s.eof() && !strings.ContainsRune(",]}# \t\r\n", rune(s.peek())) {
			s.advance()
		}
	}
}

func isDate(b []byte) bool {
	if len(b) != 10 || b[4] != '-' || b[7] != '-' {
		return false
	}
	for i, c := range b {
		if i != 4 && i != 7 && !isDigit(c) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// multiline reads a multi-line string delimited by delim, which may be
// followed by up to two more quotes that belong to the content.
func (s *scanner) multiline(delim string) {
	for range 3 {
		s.advance()
	}
	for !s.eof() {
		if delim[0] == '"' && s.peek() == '\\' {
			s.advance()
			s.advance()
			continue
		}
		if s.has(delim) {
			for n := 0; n < 5 && !s.eof() && s.peek() == delim[0]; n++ {
				s.advance()
			}
			return
		}
		s.advance()
	}
}

func (s *scanner) literalString() string {
	s.advance()
	start := s.i
	for !s.eof() && s.peek() != '\'' && s.peek() != '\n' {
		s.advance()
	}
	v := string(s.src[start:s.i])
	if !s.eof() && s.peek() == '\'' {
		s.advance()
	}
	return v
}

// basicString reads a "..." string and returns it with escapes decoded.
func (s *scanner) basicString() string {
	s.advance()
	var b strings.Builder
	for !s.eof() {
		c := s.peek()
		switch c {
		case '"':
			s.advance()
			return b.String()
		case '\n':
			return b.String()
		case '\\':
			s.advance()
			s.escape(&b)
			continue
		}
		b.WriteByte(c)
		s.advance()
	}
	return b.String()
}

// escape decodes the escape sequence after a backslash.
func (s *scanner) escape(b *strings.Builder) {
	if s.eof() {
		return
	}
	c := s.peek()
	s.advance()
	n := 0
	switch c {
	case 'b':
		b.WriteByte('\b')
	case 't':
		b.WriteByte('\t')
	case 'n':
		b.WriteByte('\n')
	case 'f':
		b.WriteByte('\f')
	case 'r':
		b.WriteByte('\r')
	case 'e':
		b.WriteByte(0x1b)
	case '"', '\\':
		b.WriteByte(c)
	case 'x':
		n = 2
	case 'u':
		n = 4
	case 'U':
		n = 8
	}
	if n == 0 || s.i+n > len(s.src) {
		return
	}
	v, err := strconv.ParseUint(string(s.src[s.i:s.i+n]), 16, 32)
	for range n {
		s.advance()
	}
	if err == nil {
		b.WriteRune(rune(v))
	}
}
