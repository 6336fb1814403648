package mapping

import (
	"strconv"
	"strings"
	"testing"
)

// fill completes a test document with a minimal opes-milter side, for
// each required part the document does not define itself. The filler
// comes after the document, so the document's line numbers are unchanged.
func fill(doc string) string {
	var b strings.Builder
	b.WriteString(doc)
	add := func(marker, piece string) {
		for _, m := range strings.Split(marker, "|") {
			if strings.Contains(doc, m) {
				return
			}
		}
		b.WriteString("\n" + piece)
	}
	add("[trace]", "[trace]\nsystem_uri = \"urn:test:system\"")
	add("[servers.", "[servers.s]\naddresses = [\"127.0.0.1:1\"]")
	add("[services.", "[services.a]\nuri = \"urn:test:a\"")
	add("[chains.", "[chains.c]\nservices = [\"a\"]")
	add("[[routes]]|routes = [", "[[routes]]\nchain = \"c\"\nadaptive = [\"RCPT\"]")
	b.WriteString("\n")
	return b.String()
}

// loadString loads a test document named t.toml.
func loadString(t *testing.T, doc string) (*Config, error) {
	t.Helper()
	return Load("t.toml", []byte(doc))
}

// mustLoad loads a document that must be valid.
func mustLoad(t *testing.T, doc string) *Config {
	t.Helper()
	c, err := loadString(t, doc)
	if err != nil {
		t.Fatalf("Load:\n%v\ndocument:\n%s", err, numbered(doc))
	}
	return c
}

// numbered prefixes each line of doc with its number, for failure output.
func numbered(doc string) string {
	var b strings.Builder
	for i, l := range strings.Split(doc, "\n") {
		b.WriteString(strings.Repeat(" ", max(0, 3-len(strconv.Itoa(i+1)))) + strconv.Itoa(i+1) + "  " + l + "\n")
	}
	return b.String()
}
