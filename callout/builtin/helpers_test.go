package builtin

import (
	"fmt"
	"slices"
	"testing"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/callouttest"
	"github.com/opes-milter/opes-milter/callout/mimetext"
)

// sample loads testdata/mail/name as a message.
func sample(t testing.TB, name string) *callout.Message {
	t.Helper()
	return callout.NewMessage(callouttest.Sample(t, name))
}

// all returns the bytes of m.
func all(t testing.TB, m *callout.Message) []byte { t.Helper(); return callouttest.Bytes(t, m) }

// mustEqualBytes fails the test if got and want differ.
func mustEqualBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	callouttest.EqualBytes(t, what, got, want)
}

// section returns the section of m at path, failing the test if none.
func section(t testing.TB, m *callout.Message, path ...int) *callout.Section {
	t.Helper()
	var found *callout.Section
	err := m.Walk(func(s *callout.Section) error {
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
func skeleton(t testing.TB, m *callout.Message, paths ...[]int) []byte {
	t.Helper()
	var edits []callout.Edit
	for _, p := range paths {
		s := section(t, m, p...)
		edits = append(edits, callout.Edit{Offset: s.Offset, End: s.End, Data: []byte(fmt.Sprintf("<<%v>>", p))})
	}
	out, err := m.Splice(edits...)
	if err != nil {
		t.Fatal(err)
	}
	return all(t, out)
}

// cut returns the bytes of m without the ranges [DelimOffset, End) of the
// sections at paths: what removing those parts must leave.
func cut(t testing.TB, m *callout.Message, paths ...[]int) []byte {
	t.Helper()
	var edits []callout.Edit
	for _, p := range paths {
		s := section(t, m, p...)
		edits = append(edits, callout.Edit{Offset: s.DelimOffset, End: s.End})
	}
	out, err := m.Splice(edits...)
	if err != nil {
		t.Fatal(err)
	}
	return all(t, out)
}

// decodedText returns the text of section s in UTF-8.
func decodedText(t testing.TB, m *callout.Message, s *callout.Section) string {
	t.Helper()
	raw, err := m.Bytes(s.BodyOffset, s.End)
	if err != nil {
		t.Fatal(err)
	}
	b, err := mimetext.DecodeTransfer(s.TransferEncoding(), raw)
	if err != nil {
		t.Fatalf("part %v: %v", s.Path, err)
	}
	u, err := mimetext.DecodeCharset(s.Charset(), b)
	if err != nil {
		t.Fatalf("part %v: %v", s.Path, err)
	}
	return string(u)
}

// headerBytes returns the raw header section of s.
func headerBytes(t testing.TB, m *callout.Message, s *callout.Section) []byte {
	t.Helper()
	b, err := m.Bytes(s.Offset, s.BodyOffset)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
