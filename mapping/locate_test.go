package mapping

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestLocate(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want map[string]pos // a subset of what locate must find
	}{
		{"top-level keys and tables", "a = 1\n\n[b]\nc = 2\n  [b.d]\n  e = 3\n",
			map[string]pos{"a": {1, 1}, "b": {3, 1}, "b.c": {4, 1}, "b.d": {5, 3}, "b.d.e": {6, 3}}},
		{"dotted keys", "a.b.c = 1\n[x]\ny . z = 2\n",
			map[string]pos{"a": {1, 1}, "a.b": {1, 3}, "a.b.c": {1, 5}, "x.y": {3, 1}, "x.y.z": {3, 5}}},
		{"quoted keys", "\"a b\" = 1\n'c.d' = 2\n[\"e\\u0066\".g]\nh = 3\n",
			map[string]pos{`"a b"`: {1, 1}, `"c.d"`: {2, 1}, "ef.g": {3, 1}, "ef.g.h": {4, 1}}},
		{"arrays of tables", "[[r]]\nn = 1\n[r.m]\nk = 1\n[[r]]\nn = 2\n[[r.s]]\nx = 1\n[[r.s]]\nx = 2\n",
			map[string]pos{"r": {1, 1}, "r[0]": {1, 1}, "r[0].n": {2, 1}, "r[0].m.k": {4, 1}, "r[1]": {5, 1}, "r[1].n": {6, 1},
				"r[1].s[0].x": {8, 1}, "r[1].s[1]": {9, 1}, "r[1].s[1].x": {10, 1}}},
		{"array elements over lines", "a = [\n  1, # one\n  [2, 3],\n\n  4,\n]\nb = 5\n",
			map[string]pos{"a[0]": {2, 3}, "a[1]": {3, 3}, "a[1][1]": {3, 7}, "a[2]": {5, 3}, "b": {7, 1}}},
		{"inline tables", "t = { a = 1, b = { c = \"}\" }, d.e = [ { f = 1 } ] }\nz = 0\n",
			map[string]pos{"t.a": {1, 7}, "t.b.c": {1, 20}, "t.d": {1, 31}, "t.d.e": {1, 33}, "t.d.e[0].f": {1, 41}, "z": {2, 1}}},
		{"strings that look like syntax", "a = \"[x] = # \\\" ]\"\nb = 'lit \\'\nc = \"\"\"\nx = 1\n[y]\n\"\"\"\nd = '''\n[z]\n'''''\ne = 1\n",
			map[string]pos{"a": {1, 1}, "b": {2, 1}, "c": {3, 1}, "d": {7, 1}, "e": {10, 1}}},
		{"dates and numbers", "a = 1979-05-27 07:32:00Z\nb = [1979-05-27 07:32:00, 2]\nc = 0x1F\nd = inf\ne = true\n",
			map[string]pos{"a": {1, 1}, "b[1]": {2, 27}, "c": {3, 1}, "d": {4, 1}, "e": {5, 1}}},
		{"columns count runes", "t = { \"ü\" = 1, x = 2 }\n",
			map[string]pos{"t": {1, 1}, `t."ü"`: {1, 7}, "t.x": {1, 16}}},
		{"byte order mark and CRLF", "\uFEFFa = 1\r\n[b]\r\nc = 2\r\n",
			map[string]pos{"a": {1, 1}, "b.c": {3, 1}}},
		{"multi-line inline table (TOML 1.1)", "t = {\n  a = 1,\n  b = 2,\n}\n",
			map[string]pos{"t.a": {2, 3}, "t.b": {3, 3}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := locate([]byte(tc.doc))
			for k, want := range tc.want {
				if got[k] != want {
					t.Errorf("%s: got %v, want %v", k, got[k], want)
				}
			}
			if t.Failed() {
				t.Logf("all: %v", got)
			}
		})
	}
}

// checkLocatesAllKeys asserts that every key the toml parser saw in a
// valid document has a place, and the place holds that key's name.
func checkLocatesAllKeys(t *testing.T, doc string) {
	t.Helper()
	var v map[string]any
	md, err := toml.Decode(doc, &v)
	if err != nil {
		return
	}
	found := make(map[string]bool)
	for k := range locate([]byte(doc)) {
		found[stripIndices(k)] = true
	}
	for _, k := range md.Keys() {
		path := ""
		for _, part := range k {
			path = joinPath(path, part)
		}
		if !found[path] {
			t.Fatalf("key %s not located; located: %v\ndocument:\n%s", path, slices.Sorted(maps.Keys(found)), numbered(doc))
		}
	}
}

// stripIndices removes the array indices of a key path, as toml's
// MetaData spells keys.
func stripIndices(path string) string {
	var b strings.Builder
	inQuote := false
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '"':
			inQuote = !inQuote
		case c == '\\' && inQuote:
			b.WriteByte(c)
			i++
			c = path[i]
		case c == '[' && !inQuote:
			for i < len(path) && path[i] != ']' {
				i++
			}
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func TestLocateFindsEveryKey(t *testing.T) {
	for _, tc := range []string{
		"[[a]]\nb.c = [1, {d = 2}]\n[[a]]\n[a.e]\nf = 3\n",
		"x = { y = { z = [ [ {w = 1} ] ] } }\n",
		"\"quo\\\"ted\" = { \"in ner\" = 1 }\n['lit'.\"b\"]\nc = 1\n",
	} {
		checkLocatesAllKeys(t, tc)
	}
}

func TestPathHelpers(t *testing.T) {
	for _, tc := range []struct{ path, parent, stripped string }{
		{"a", "", "a"},
		{"a.b", "a", "a.b"},
		{"routes[2].match", "routes[2]", "routes.match"},
		{"routes[2]", "routes", "routes"},
		{`s."a.b[1]".c`, `s."a.b[1]"`, `s."a.b[1]".c`},
		{`s."x\"y".z[0]`, `s."x\"y".z`, `s."x\"y".z`},
	} {
		if got := parentPath(tc.path); got != tc.parent {
			t.Errorf("parentPath(%s) = %s, want %s", tc.path, got, tc.parent)
		}
		if got := stripIndices(tc.path); got != tc.stripped {
			t.Errorf("stripIndices(%s) = %s, want %s", tc.path, got, tc.stripped)
		}
	}
	if got := joinPath("a", "b c"); got != `a."b c"` {
		t.Errorf("joinPath quoting: %s", got)
	}
}
