package callout

import (
	"testing"

	"github.com/opes-milter/opes-milter/callout/callouttest"
)

// sample loads testdata/mail/name as a message.
func sample(t testing.TB, name string) *Message {
	t.Helper()
	return NewMessage(callouttest.Sample(t, name))
}

// all returns the bytes of m.
func all(t testing.TB, m *Message) []byte { t.Helper(); return callouttest.Bytes(t, m) }

// mustEqualBytes fails the test if got and want differ.
func mustEqualBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	callouttest.EqualBytes(t, what, got, want)
}
