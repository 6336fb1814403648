package callout

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseSamples(t *testing.T) {
	tests := []struct {
		file string
		// want lists "path type filename" for every section, in walk order.
		want     []string
		problems bool
	}{
		{file: "plain.eml", want: []string{"[] text/plain "}},
		{file: "alternative-qp.eml", want: []string{
			"[] multipart/alternative ", "[0] text/plain ", "[1] text/html "}},
		{file: "nested.eml", want: []string{
			"[] multipart/mixed ", "[0] multipart/related ", "[0 0] multipart/alternative ",
			"[0 0 0] text/plain ", "[0 0 1] text/html ", "[0 1] image/png chart.png",
			"[1] application/pdf report-q2.pdf"}},
		{file: "signed.eml", want: []string{
			"[] multipart/signed ", "[0] multipart/mixed ", "[0 0] text/plain ",
			"[0 1] application/x-msdownload setup.exe", "[1] application/pkcs7-signature smime.p7s"}},
		{file: "forwarded.eml", want: []string{
			"[] multipart/mixed ", "[0] text/plain ", "[1] message/rfc822 Your parcel.eml",
			"[1 0] multipart/mixed ", "[1 0 0] text/plain ", "[1 0 1] application/octet-stream tracking.scr"}},
		{file: "attachments.eml", want: []string{
			"[] multipart/mixed ", "[0] text/plain ", "[1] application/x-msdownload invoice.exe",
			"[2] application/zip docs.zip", "[3] application/pdf scan-large.pdf", "[4] image/jpeg photo.JPG",
			"[5] application/vnd.ms-word.document.macroenabled.12 résumé.docm"}},
		{file: "malformed.eml", problems: true, want: []string{
			"[] multipart/mixed ", "[0] text/plain ", "[1] application/octet-stream payload.exe",
			"[2] text/plain ", "[3] text/html "}},
		{file: "malformed-noboundary.eml", problems: true, want: []string{"[] multipart/mixed "}},
		{file: "pgp-encrypted.eml", want: []string{
			"[] multipart/encrypted ", "[0] application/pgp-encrypted ", "[1] application/octet-stream encrypted.asc"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			m := sample(t, tt.file)
			var got []string
			problems := false
			err := m.Walk(func(s *Section) error {
				got = append(got, fmt.Sprintf("%v %s %s", s.Path, s.MediaType, s.Filename()))
				problems = problems || len(s.Problems) > 0
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("sections:\n got  %q\n want %q", got, tt.want)
			}
			if problems != tt.problems {
				t.Errorf("problems = %v, want %v", problems, tt.problems)
			}
		})
	}
}

// TestParseInvariants checks every sample: sections nest inside their
// parent, in order, and a splice without edits gives the same bytes.
func TestParseInvariants(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "mail", "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatal("no samples", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			m := sample(t, filepath.Base(f))
			err := m.Walk(func(s *Section) error {
				if !(s.DelimOffset <= s.Offset && s.Offset <= s.BodyOffset && s.BodyOffset <= s.End && s.End <= m.Size()) {
					t.Errorf("%v: offsets out of order: %d %d %d %d", s.Path, s.DelimOffset, s.Offset, s.BodyOffset, s.End)
				}
				prev := s.BodyOffset
				for _, c := range s.Parts {
					if c.DelimOffset < prev || c.End > s.End {
						t.Errorf("%v: child %v [%d,%d) outside [%d,%d)", s.Path, c.Path, c.DelimOffset, c.End, prev, s.End)
					}
					prev = c.End
				}
				for _, fl := range s.Fields {
					raw, _ := m.Bytes(fl.Offset, fl.End)
					if string(raw) != string(fl.Raw) {
						t.Errorf("%v: field %s: offsets do not match its bytes", s.Path, fl.Name)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			same, err := m.Splice()
			if err != nil {
				t.Fatal(err)
			}
			mustEqualBytes(t, "identity splice", all(t, same), all(t, m))
		})
	}
}

func TestParseEdgeCases(t *testing.T) {
	tests := []struct {
		name, msg string
		want      []string // "path type body"
	}{
		{"LF only", "Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\n\ntwo\n--b--\n",
			[]string{"[] multipart/mixed", "[0] text/plain one", "[1] text/plain two"}},
		{"no header", "\r\nbody only\r\n", []string{"[] text/plain body only\r\n"}},
		{"header only", "Subject: x\r\n", []string{"[] text/plain "}},
		{"transport padding", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b  \r\n\r\nx\r\n--b-- \t\r\n",
			[]string{"[] multipart/mixed", "[0] text/plain x"}},
		{"boundary prefix is not a delimiter", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n--bb\r\n--b--\r\n",
			[]string{"[] multipart/mixed", "[0] text/plain --bb"}},
		{"empty part", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b\r\n\r\ny\r\n--b--\r\n",
			[]string{"[] multipart/mixed", "[0] text/plain ", "[1] text/plain y"}},
		{"deep nesting", strings.Repeat("Content-Type: message/rfc822\r\n\r\n", 40) + "x",
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMessage([]byte(tt.msg))
			var got []string
			err := m.Walk(func(s *Section) error {
				body, _ := m.Bytes(s.BodyOffset, s.End)
				if s.IsMultipart() {
					got = append(got, fmt.Sprintf("%v %s", s.Path, s.MediaType))
				} else {
					got = append(got, fmt.Sprintf("%v %s %s", s.Path, s.MediaType, body))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				if len(got) != maxMIMEDepth+1 {
					t.Errorf("got %d sections, want %d (depth limit)", len(got), maxMIMEDepth+1)
				}
				return
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestSpoolToFile(t *testing.T) {
	sp := NewSpool(SpoolOptions{Threshold: 10, Dir: t.TempDir()})
	for range 5 {
		if _, err := sp.WriteString("0123456789"); err != nil {
			t.Fatal(err)
		}
	}
	m, err := sp.Message()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.file == nil {
		t.Fatal("50 bytes over a threshold of 10 stayed in memory")
	}
	if got := string(all(t, m)); got != strings.Repeat("0123456789", 5) {
		t.Fatalf("got %q", got)
	}
	entries, _ := os.ReadDir(m.opts.Dir)
	if len(entries) != 0 {
		t.Errorf("spool file left in the directory: %v", entries)
	}
	if _, err := sp.Write([]byte("x")); err != ErrSpoolDone {
		t.Errorf("write after Message: %v", err)
	}
}

// TestMessageWriteTo: a message in memory goes out in one Write, one in a
// file whole, in chunks.
func TestMessageWriteTo(t *testing.T) {
	const text = "From: a@example.org\r\n\r\nhello\r\n"
	var w countingWriter
	if n, err := NewMessage([]byte(text)).WriteTo(&w); err != nil || n != int64(len(text)) || w.b.String() != text || w.writes != 1 {
		t.Errorf("memory: %d %v %q in %d writes", n, err, w.b.String(), w.writes)
	}
	sp := NewSpool(SpoolOptions{Threshold: 10, Dir: t.TempDir()})
	sp.WriteString(text)
	m, err := sp.Message()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	w = countingWriter{}
	if n, err := m.WriteTo(&w); err != nil || n != int64(len(text)) || w.b.String() != text {
		t.Errorf("file: %d %v %q", n, err, w.b.String())
	}
}

type countingWriter struct {
	b      strings.Builder
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.b.Write(p)
}
