package bridge

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
)

// FuzzSplitSections feeds arbitrary bodies and Content-Types to the MIME
// section splitter and the splicer and checks their contract:
//   - the sections lie within the body, in order, and are disjoint; each
//     delimiter line precedes its section and starts with "--";
//   - splicing with no edits, or with every section replaced by its own
//     bytes, reproduces the body byte for byte;
//   - deleting one section removes exactly its bytes and its delimiter line
//     with one line break (the one before the delimiter line, or for a
//     first delimiter line the one after the entity), nothing else.
func FuzzSplitSections(f *testing.F) {
	for _, seed := range []struct{ body, ctype string }{
		{nested, `multipart/mixed; boundary="outer"`},
		{strings.ReplaceAll(nested, "\r\n", "\n"), "multipart/mixed; boundary=outer"},
		{"--b\r\nA\r\n--b\r\nB\r\n--b--\r\n", "multipart/mixed; boundary=b"},
		{"--b\r\n\r\n--b--", "multipart/mixed; boundary=b"},
		{"--b\r\nx\r\n", "multipart/mixed; boundary=b"},
		{"pre\r\n--b \t\r\nx\r\n--b--  \r\npost", "multipart/alternative; boundary=b"},
		{"--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nx\r\n--a--\r\n--a--\r\n", "multipart/mixed; boundary=a"},
		{"--b\r\nContent-Type: multipart/mixed;\r\n boundary=c\r\n\r\n--c\r\ny\r\n--c--\r\n--b--\r\n", "multipart/related; boundary=b"},
		{"just text\r\n", "text/plain"},
		{"", "multipart/mixed; boundary=b"},
		{"--b\r\n--b\r\n--b--\r\n", "multipart/mixed; boundary=b"},
		{"--b--\r\n", "multipart/mixed; boundary=b"},
	} {
		f.Add([]byte(seed.body), seed.ctype)
	}
	f.Fuzz(func(t *testing.T, body []byte, ctype string) {
		size := int64(len(body))
		ra := bytes.NewReader(body)
		secs, _ := splitSections(ra, size, ctype)
		if len(secs) == 0 {
			t.Fatal("no sections")
		}
		var prevEnd int64
		for i, s := range secs {
			if s.start < prevEnd || s.end < s.start || s.end > size {
				t.Fatalf("section %d [%d,%d) out of order or outside the %d-byte body (previous end %d)", i, s.start, s.end, size, prevEnd)
			}
			if s.delimStart >= 0 {
				if s.delimStart < prevEnd || s.delimStart >= s.start {
					t.Fatalf("section %d: delimiter line at %d, section at %d, previous end %d", i, s.delimStart, s.start, prevEnd)
				}
				line := body[s.delimStart:s.start]
				if !bytes.HasPrefix(line, []byte("--")) || !bytes.HasSuffix(line, []byte("\n")) {
					t.Fatalf("section %d: delimiter line %q", i, line)
				}
			} else if len(secs) != 1 || s.start != 0 || s.end != size {
				t.Fatalf("section %d without a delimiter line is not the whole body: %+v", i, s)
			}
			prevEnd = s.end
		}

		if got := splice(t, ra, size, nil); !bytes.Equal(got, body) {
			t.Fatalf("splicing nothing changed the body:\n got %q\nwant %q", got, body)
		}
		same := make([]sectionEdit, len(secs))
		for i, s := range secs {
			same[i] = sectionEdit{sec: s, content: bytes.NewReader(body[s.start:s.end])}
		}
		if got := splice(t, ra, size, same); !bytes.Equal(got, body) {
			t.Fatalf("replacing every section by itself changed the body:\n got %q\nwant %q", got, body)
		}

		for i, s := range secs {
			if i >= maxDeletionChecks/2 && i < len(secs)-maxDeletionChecks/2 {
				continue // each check copies the body: keep an execution linear
			}
			got := splice(t, ra, size, []sectionEdit{{sec: s}})
			if want, ok := withoutSection(body, s); !ok || !bytes.Equal(got, want) {
				t.Fatalf("deleting section %d %+v of %q:\n got %q\nwant %q", i, s, body, got, want)
			}
		}
	})
}

// maxDeletionChecks bounds how many sections of one input the fuzz target
// deletes one by one: the first and the last half of this many.
const maxDeletionChecks = 16

// splice runs spliceSections and reads its result.
func splice(t *testing.T, ra io.ReaderAt, size int64, edits []sectionEdit) []byte {
	t.Helper()
	out, err := io.ReadAll(spliceSections(ra, size, edits))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// withoutSection is the body with section s deleted as the contract says:
// the entity, its delimiter line and the CRLF before that line (RFC 2046
// §5.1.1: it belongs to the delimiter), or, when the delimiter line is not
// preceded by one, the CRLF after the entity. Line breaks are CRLF: the MTA
// passes the body to the milter with CRLF line ends, and a bare LF is kept
// as the entity's content.
func withoutSection(body []byte, s section) ([]byte, bool) {
	from, to := s.start, s.end
	if s.delimStart >= 0 {
		from = s.delimStart
		switch {
		case bytes.HasSuffix(body[:from], []byte("\r\n")):
			from -= 2
		case bytes.HasPrefix(body[to:], []byte("\r\n")):
			to += 2
		}
	}
	if from < 0 || to > int64(len(body)) {
		return nil, false
	}
	return append(append([]byte(nil), body[:from]...), body[to:]...), true
}

// TestFuzzSplitSectionsOracle pins the deletion oracle of FuzzSplitSections
// on hand-checked bodies, so a wrong oracle cannot make the fuzz target
// pass vacuously.
func TestFuzzSplitSectionsOracle(t *testing.T) {
	tests := []struct {
		body, ctype string
		index       string
		want        string
	}{
		{"--b\r\nA\r\n--b\r\nB\r\n--b--\r\n", "multipart/mixed; boundary=b", "1", "--b\r\nB\r\n--b--\r\n"},
		{"--b\r\nA\r\n--b\r\nB\r\n--b--\r\n", "multipart/mixed; boundary=b", "2", "--b\r\nA\r\n--b--\r\n"},
		{"pre\r\n--b\r\nA\r\n--b--\r\n", "multipart/mixed; boundary=b", "1", "pre\r\n--b--\r\n"},
		{"plain\r\n", "text/plain", "1", ""},
	}
	for _, tt := range tests {
		body := []byte(tt.body)
		secs, _ := splitSections(bytes.NewReader(body), int64(len(body)), tt.ctype)
		var found bool
		for _, s := range secs {
			if s.index() != tt.index {
				continue
			}
			found = true
			got, ok := withoutSection(body, s)
			if !ok || string(got) != tt.want {
				t.Errorf("%q without %s = %q, want %q", tt.body, tt.index, got, tt.want)
			}
			if spliced := splice(t, bytes.NewReader(body), int64(len(body)), []sectionEdit{{sec: s}}); string(spliced) != tt.want {
				t.Errorf("%q: spliceSections deleting %s = %q, want %q", tt.body, tt.index, spliced, tt.want)
			}
		}
		if !found {
			t.Errorf("%q: no section %s in %s", tt.body, tt.index, fmt.Sprint(secs))
		}
	}
}
