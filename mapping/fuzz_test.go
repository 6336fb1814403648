package mapping

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzLoad feeds arbitrary documents to the loader: it must not panic,
// every error must be an *Error that prints, a valid configuration must
// print, and the key locator must find every key of any TOML document.
// The seed corpus is in testdata/fuzz/FuzzLoad.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(fill("")))
	f.Add([]byte("[callout]\n" + svc("command") + "argv = [\"cat\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkLocatesAllKeys(t, string(data))
		c, err := Load("fuzz.toml", data)
		if err != nil {
			if c != nil {
				t.Fatal("Load returned a Config with an error")
			}
			checkErrors(t, err)
			return
		}
		var out bytes.Buffer
		if err := c.Format(&out); err != nil {
			t.Fatal(err)
		}
		for _, r := range c.Routes {
			if r.Chain == nil || r.Chain.Server == nil || len(r.Chain.Services) == 0 {
				t.Fatalf("route %s is not resolved", r.Name)
			}
		}
		if c.HasMilter() && len(c.Milter.Listen) == 0 {
			t.Fatal("a valid opes-milter side without sockets")
		}
	})
}

// checkErrors asserts that err is one *Error or several joined.
func checkErrors(t *testing.T, err error) {
	t.Helper()
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	line := 0
	for _, e := range list {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Fatalf("%T is not an *Error: %v", e, e)
		}
		if ce.File != "fuzz.toml" || ce.Msg == "" || ce.Err == nil || ce.Error() == "" {
			t.Fatalf("incomplete error %#v", ce)
		}
		if ce.Line < line {
			t.Fatalf("errors not sorted by line: %v", err)
		}
		line = ce.Line
	}
}
