package mapping

// pos is a place in the file, 1-based; line 0 is "unknown".
type pos struct{ line, col int }

// positions maps key paths ("routes[0].match.daemon_name") to the place
// where the key first appears.
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
