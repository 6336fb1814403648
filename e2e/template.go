package e2e

import (
	"regexp"
	"sort"
	"strings"
	"testing"
)

// placeholder matches the @NAME@ markers in the contrib snippets.
var placeholder = regexp.MustCompile(`@[A-Z][A-Z0-9_]*@`)

// FillTemplate replaces every @NAME@ in text with vars["NAME"], except on comment
// lines (starting with '#' or, in m4, "dnl"), where the snippets document their
// placeholders. It fails the test when text uses a name that vars lacks, so a
// snippet and the harness cannot drift apart silently. Names in vars that text does
// not use are allowed.
func FillTemplate(t testing.TB, name, text string, vars map[string]string) string {
	t.Helper()
	out, missing := fillTemplate(text, vars)
	if len(missing) > 0 {
		t.Fatalf("e2e: %s: no value for %s", name, strings.Join(missing, ", "))
	}
	return out
}

// fillTemplate does the work of FillTemplate and returns the sorted names it could
// not fill.
func fillTemplate(text string, vars map[string]string) (string, []string) {
	seen := map[string]bool{}
	lines := strings.SplitAfter(text, "\n")
	for i, line := range lines {
		if trimmed := strings.TrimLeft(line, " \t"); strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, "dnl") {
			continue
		}
		lines[i] = placeholder.ReplaceAllStringFunc(line, func(m string) string {
			v, ok := vars[strings.Trim(m, "@")]
			if !ok {
				seen[m] = true
				return m
			}
			return v
		})
	}
	out := strings.Join(lines, "")
	missing := make([]string, 0, len(seen))
	for m := range seen {
		missing = append(missing, m)
	}
	sort.Strings(missing)
	return out, missing
}
