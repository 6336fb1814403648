package mapping

import "strconv"

// pos is a place in the file, 1-based; line 0 is "unknown".
type pos struct{ line, col int }

// positions maps key paths ("routes[0].match.daemon_name",
// "milter.listen[1]") to the place where the key, table header or array
// element first appears.
type positions map[string]pos

// find returns the place of key, or of its closest ancestor in the file.
func (p positions) find(key string) pos {
	for key != "" {
		if q, ok := p[key]; ok {
			return q
		}
		key = parentPath(key)
	}
	return pos{}
}

// joinPath appends a key to a path, quoting it unless it is a bare key.
func joinPath(parent, key string) string {
	if !isBareKey(key) {
		key = strconv.Quote(key)
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// indexPath appends an array index to a path.
func indexPath(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

// parentPath drops the last element of a key path.
func parentPath(key string) string {
	inQuote := false
	cut := 0
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c == '"':
			inQuote = !inQuote
		case c == '\\' && inQuote:
			i++
		case (c == '.' || c == '[') && !inQuote:
			cut = i
		}
	}
	return key[:cut]
}

func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isBareByte(s[i]) {
			return false
		}
	}
	return true
}

func isBareByte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}
