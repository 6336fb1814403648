package callout

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseMessage feeds arbitrary mail data to the byte-offset MIME
// parser: it must not panic, every section must lie inside its parent and
// after its predecessor, and removing a body part by its offsets must
// remove exactly those bytes (the splicer keeps every other byte).
func FuzzParseMessage(f *testing.F) {
	samples, _ := filepath.Glob(filepath.Join("..", "testdata", "mail", "*.eml"))
	for _, p := range samples {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		m := NewMessage(data)
		root, err := m.Root()
		if err != nil {
			return
		}
		var check func(s *Section, lo, hi int64)
		check = func(s *Section, lo, hi int64) {
			if s.Offset < lo || s.End > hi || s.Offset > s.BodyOffset || s.BodyOffset > s.End || s.DelimOffset > s.Offset {
				t.Fatalf("section %v: offsets %d/%d/%d/%d outside [%d,%d)", s.Path, s.DelimOffset, s.Offset, s.BodyOffset, s.End, lo, hi)
			}
			prev := s.BodyOffset
			for _, p := range s.Parts {
				check(p, prev, s.End)
				prev = p.End
			}
		}
		check(root, 0, int64(len(data)))
		same, err := m.Splice()
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(same.NewReader()); !bytes.Equal(b, data) {
			t.Fatal("splice without edits changed the message")
		}
		if len(root.Parts) > 0 {
			p := root.Parts[0]
			cut, err := m.Splice(Edit{Offset: p.DelimOffset, End: p.End})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(cut.NewReader())
			want := append(append([]byte(nil), data[:p.DelimOffset]...), data[p.End:]...)
			if !bytes.Equal(b, want) {
				t.Fatal("removing a part changed other bytes")
			}
		}
	})
}
