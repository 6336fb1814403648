package callout

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// sample loads testdata/mail/name as a message.
func sample(t testing.TB, name string) *Message {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "mail", name))
	if err != nil {
		t.Fatal(err)
	}
	return NewMessage(b)
}

// all returns the bytes of m.
func all(t testing.TB, m *Message) []byte {
	t.Helper()
	b, err := m.Bytes(0, m.Size())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// section returns the section of m at path, failing the test if none.
func section(t testing.TB, m *Message, path ...int) *Section {
	t.Helper()
	var found *Section
	err := m.Walk(func(s *Section) error {
		if slices.Equal(s.Path, path) {
			found = s
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found == nil {
		t.Fatalf("no section at %v", path)
	}
	return found
}

// skeleton returns the bytes of m with the sections at paths (their header
// and body) replaced by a placeholder naming the path. Two messages with
// equal skeletons are byte-identical outside those sections.
func skeleton(t testing.TB, m *Message, paths ...[]int) []byte {
	t.Helper()
	var edits []Edit
	for _, p := range paths {
		s := section(t, m, p...)
		edits = append(edits, Edit{Offset: s.Offset, End: s.End, Data: []byte(fmt.Sprintf("<<%v>>", p))})
	}
	out, err := m.Splice(edits...)
	if err != nil {
		t.Fatal(err)
	}
	return all(t, out)
}

// cut returns the bytes of m without the ranges [DelimOffset, End) of the
// sections at paths: what removing those parts must leave.
func cut(t testing.TB, m *Message, paths ...[]int) []byte {
	t.Helper()
	var edits []Edit
	for _, p := range paths {
		s := section(t, m, p...)
		edits = append(edits, Edit{Offset: s.DelimOffset, End: s.End})
	}
	out, err := m.Splice(edits...)
	if err != nil {
		t.Fatal(err)
	}
	return all(t, out)
}

// decodedText returns the text of section s in UTF-8.
func decodedText(t testing.TB, m *Message, s *Section) string {
	t.Helper()
	raw, err := m.Bytes(s.BodyOffset, s.End)
	if err != nil {
		t.Fatal(err)
	}
	b, err := decodeTransfer(s.TransferEncoding(), raw)
	if err != nil {
		t.Fatalf("part %v: %v", s.Path, err)
	}
	u, err := decodeCharset(s.Charset(), b)
	if err != nil {
		t.Fatalf("part %v: %v", s.Path, err)
	}
	return string(u)
}

// headerBytes returns the raw header section of s.
func headerBytes(t testing.TB, m *Message, s *Section) []byte {
	t.Helper()
	b, err := m.Bytes(s.Offset, s.BodyOffset)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustEqualBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s differ at byte %d:\n got  %q\n want %q", what, i, excerpt(got, i), excerpt(want, i))
	}
}

func excerpt(b []byte, i int) []byte {
	lo, hi := max(0, i-40), min(len(b), i+40)
	return b[lo:hi]
}
