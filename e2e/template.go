package e2e

import (
	"regexp"
	"sort"
	"strings"
	"testing"
)

// placeholder matches the @NAME@ markers in the contrib snippets.
var placeholder = regexp.MustCompile(`@[A-Z][A-Z0-9_]*@`)

// FillTemplate replaces every @NAME@ in text with vars["NAME"]. It fails the test
// when text uses a name that vars lacks, so a snippet and the harness cannot drift
// apart silently. Names in vars that text does not use are allowed.
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
	out := placeholder.ReplaceAllStringFunc(text, func(m string) string {
		v, ok := vars[strings.Trim(m, "@")]
		if !ok {
			seen[m] = true
			return m
		}
		return v
	})
	missing := make([]string, 0, len(seen))
	for m := range seen {
		missing = append(missing, m)
	}
	sort.Strings(missing)
	return out, missing
}
