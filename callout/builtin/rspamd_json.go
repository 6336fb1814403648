package builtin

import "bytes"

// rspamdDecoded are the names of the members of /checkv2's answer that
// rspamdResult decodes (its json tags).
var rspamdDecoded = [...]string{"action", "score", "required_score", "subject", "messages", "milter", "is_skipped"}

// maxRspamdNesting bounds the nesting of a skipped value, as
// encoding/json bounds it.
const maxRspamdNesting = 10000

// rspamdMembers returns the JSON object b with only the members that
// encoding/json would decode into rspamdResult: a name equal to one of
// rspamdDecoded but for case (encoding/json matches names so), or with
// an escape, is kept. The rest (the symbols with their descriptions, the
// URLs: most of the answer) is stepped over by following strings and
// nesting only, not decoded. ok is false when b is not an object split
// so; the caller then decodes b whole and encoding/json judges it. A
// skipped member is not validated beyond its strings and brackets.
func rspamdMembers(b []byte) (out []byte, ok bool) {
	i := skipJSONSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return nil, false
	}
	i = skipJSONSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return b, true
	}
	out = append(make([]byte, 0, 512), '{')
	for {
		if i == len(b) || b[i] != '"' {
			return nil, false
		}
		end, ok := skipJSONString(b, i)
		if !ok {
			return nil, false
		}
		name := b[i+1 : end-1]
		j := skipJSONSpace(b, end)
		if j == len(b) || b[j] != ':' {
			return nil, false
		}
		vend, ok := skipJSONValue(b, skipJSONSpace(b, j+1))
		if !ok {
			return nil, false
		}
		if rspamdDecodes(name) {
			if len(out) > 1 {
				out = append(out, ',')
			}
			out = append(out, b[i:vend]...)
		}
		i = skipJSONSpace(b, vend)
		if i == len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = skipJSONSpace(b, i+1)
		case '}':
			if skipJSONSpace(b, i+1) != len(b) {
				return nil, false
			}
			return append(out, '}'), true
		default:
			return nil, false
		}
	}
}

// rspamdDecodes reports whether encoding/json could decode the member
// name (as it is between the quotes) into a field of rspamdResult.
func rspamdDecodes(name []byte) bool {
	if bytes.IndexByte(name, '\\') >= 0 {
		return true
	}
	for _, d := range rspamdDecoded {
		if bytes.EqualFold(name, []byte(d)) {
			return true
		}
	}
	return false
}

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// skipJSONString returns the index after the string that starts at
// b[i] ('"').
func skipJSONString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\\':
			i++
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return 0, false
		}
	}
	return 0, false
}

// skipJSONValue returns the index after the value that starts at b[i]:
// a string, an object or array (its strings and brackets followed), or
// a number or literal (up to the next delimiter).
func skipJSONValue(b []byte, i int) (int, bool) {
	if i == len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return skipJSONString(b, i)
	case '{', '[':
		var closers []byte
		for i < len(b) {
			switch c := b[i]; c {
			case '"':
				end, ok := skipJSONString(b, i)
				if !ok {
					return 0, false
				}
				i = end
				continue
			case '{', '[':
				if len(closers) == maxRspamdNesting {
					return 0, false
				}
				closers = append(closers, c+2) // '}' is '{'+2, ']' is '['+2
			case '}', ']':
				if len(closers) == 0 || closers[len(closers)-1] != c {
					return 0, false
				}
				closers = closers[:len(closers)-1]
				if len(closers) == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return 0, false
	}
	start := i
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i, i > start
		case '"', '{', '[', ':':
			return 0, false
		}
		i++
	}
	return i, i > start
}
