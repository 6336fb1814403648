// Package callouttest holds test helpers for packages that work with mail
// messages: the sample messages under testdata/mail and byte comparisons
// that show where two messages differ, and the peers of mail tests (a
// loopback DNS server, rspamd offline). It imports nothing of the project, so
// that package callout's own tests may use it too.
package callouttest

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// SampleDir returns the directory of the sample messages (testdata/mail at
// the repository's top).
func SampleDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "mail")
}

// Sample returns the bytes of testdata/mail/name, failing the test if it
// cannot be read.
func Sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(SampleDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Ranged is what Bytes reads: a message with a size and byte ranges
// (callout.Message).
type Ranged interface {
	Size() int64
	Bytes(off, end int64) ([]byte, error)
}

// Bytes returns all bytes of m, failing the test on a read error.
func Bytes(t testing.TB, m Ranged) []byte {
	t.Helper()
	b, err := m.Bytes(0, m.Size())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// EqualBytes fails the test if got and want differ, showing the first
// differing byte and the text around it.
func EqualBytes(t testing.TB, what string, got, want []byte) {
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
