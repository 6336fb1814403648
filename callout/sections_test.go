package callout

import (
	"bytes"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// sectionMap renders the SECTIONS instances of m as the callout server's
// section tree numbers them: one line per instance, "AM-Index start end
// delim line" with offsets relative to the body (delim and line -1 for the
// whole-body section). bridge's TestSectionsGolden renders what the
// processor cuts in the same form from the same files.
func sectionMap(t testing.TB, m *Message) string {
	t.Helper()
	secs, err := m.Sections()
	if err != nil {
		t.Fatal(err)
	}
	root, _ := m.Root()
	body := root.BodyOffset
	var b strings.Builder
	for _, s := range secs {
		if s == root {
			fmt.Fprintf(&b, "%s %d %d -1 -1\n", s.Index(), s.BodyOffset-body, s.End-body)
			continue
		}
		line := s.DelimOffset
		for line < s.Offset && (m.byteAt(line) == '\r' || m.byteAt(line) == '\n') {
			line++
		}
		fmt.Fprintf(&b, "%s %d %d %d %d\n", s.Index(), s.Offset-body, s.End-body, s.DelimOffset-body, line-body)
	}
	return b.String()
}

func (m *Message) byteAt(off int64) byte {
	b, _ := m.Bytes(off, off+1)
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// cutMap renders ocpsmtp.CutSections (what the processor sends) in
// sectionMap's form.
func cutMap(t testing.TB, body []byte, contentType string) string {
	t.Helper()
	secs, err := ocpsmtp.CutSections(bytes.NewReader(body), int64(len(body)), contentType)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, s := range secs {
		fmt.Fprintf(&b, "%s %d %d %d %d\n", s.Index(), s.Start, s.End, s.Delim, s.Line)
	}
	return b.String()
}

// TestSectionsAgree checks, for every sample under testdata/mail, that the
// callout server's section tree yields the same AM-Index → byte range
// mapping as the processor's cutter, and both the golden file under
// testdata/sections (which bridge's TestSectionsGolden checks too).
func TestSectionsAgree(t *testing.T) {
	samples, _ := filepath.Glob(filepath.Join("..", "testdata", "mail", "*.eml"))
	if len(samples) == 0 {
		t.Fatal("no samples")
	}
	for _, p := range samples {
		t.Run(filepath.Base(p), func(t *testing.T) {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := mail.ReadMessage(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			var rest bytes.Buffer
			rest.ReadFrom(msg.Body)
			body := data[len(data)-rest.Len():]
			want := cutMap(t, body, msg.Header.Get("Content-Type"))
			got := sectionMap(t, NewMessage(data))
			if got != want {
				t.Fatalf("callout tree\n%s\nprocessor cutter\n%s", got, want)
			}
			golden := filepath.Join("..", "testdata", "sections", strings.TrimSuffix(filepath.Base(p), ".eml")+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			g, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if string(g) != got {
				t.Fatalf("%s\n got %q\nwant %q", golden, got, g)
			}
		})
	}
}

// FuzzSectionsAgree feeds a top-level Content-Type and a body to both the
// callout server's section tree and the processor's cutter: they must
// yield the same AM-Index → byte range mapping, delimiter offsets
// included.
func FuzzSectionsAgree(f *testing.F) {
	for _, seed := range []struct{ ctype, body string }{
		{"multipart/mixed; boundary=b", "pre\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b\r\n\r\ny\r\n--b--\r\nepi\r\n"},
		{"multipart/mixed; boundary=b", "--b\r\nx\r\n"},
		{"multipart/mixed; boundary=b", "--b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\n\r\na\r\n--c\r\n\r\nb\r\n\r\n--b\r\n\r\nz\r\n--b--"},
		{"multipart/mixed; boundary=b", "--b\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nq\r\n--b--\r\n--b--\r\n"},
		{"multipart/digest; boundary=b", "--b\n\nSubject: x\n\nhi\n--b\nContent-Type: multipart/mixed;\n boundary=\"c\"\n\n--c\n\nin\n--c--\n--b--\n"},
		{"multipart/mixed; boundary=b", "--b  \t\r\nno header line\r\n--b\r\nContent-Type: multipart/mixed\r\n\r\n--b--  \r\n"},
		{"multipart/mixed; boundary=b", "--b\r\n--b\r\n--b--\r\n"},
		{"multipart/mixed; boundary=b", "\r\n--b\r\n\r\n--b--"},
		{"text/plain", "just text\r\n"},
		{"multipart/mixed; boundary=\"a b\"", "--a b\r\nContent-Type: Multipart/Related; boundary=a\r\n\r\n--a\r\n\r\n1\r\n--a--\r\n--a b--\r\n"},
		{"multipart/mixed", "--b\r\nx\r\n--b--\r\n"},
		{"multipart/mixed; boundary=b", "--b\r\nContent-Type: text/plain\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\nx\r\n--c--\r\n--b--\r\n"},
	} {
		f.Add(seed.ctype, []byte(seed.body))
	}
	// Nesting at and beyond the depth limit.
	var deep strings.Builder
	for i := 0; i < ocpsmtp.MaxSectionDepth+2; i++ {
		fmt.Fprintf(&deep, "--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n", i, i+1)
	}
	deep.WriteString("--leaf\r\n")
	for i := ocpsmtp.MaxSectionDepth + 1; i >= 0; i-- {
		fmt.Fprintf(&deep, "\r\n--b%d--\r\n", i)
	}
	f.Add("multipart/mixed; boundary=b0", []byte(deep.String()))
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		if len(body) > 1<<20 || strings.ContainsAny(ctype, "\r\n") {
			return
		}
		data := append([]byte("Content-Type: "+ctype+"\r\n\r\n"), body...)
		m := NewMessage(data)
		root, err := m.Root()
		if err != nil {
			t.Fatal(err)
		}
		if root.BodyOffset != int64(len(data)-len(body)) {
			return // a Content-Type that is not a field value
		}
		got := sectionMap(t, m)
		want := cutMap(t, body, ctype)
		if got != want {
			t.Fatalf("callout tree\n%s\nprocessor cutter\n%s", got, want)
		}
	})
}
