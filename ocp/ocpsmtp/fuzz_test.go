package ocpsmtp

import (
	"slices"
	"strings"
	"testing"
)

// The fuzz targets check properties of what the parsers accept: nothing
// that could smuggle a line break or a second field past them, and a
// stable round trip. Seeds live in testdata/fuzz/<target>.

func FuzzParseReply(f *testing.F) {
	f.Add("550 5.1.1 No such user here")
	f.Add("550-5.7.1 first\r\n550 5.7.1 second")
	f.Add("451")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReply(s)
		if err != nil {
			return
		}
		if r.Code < 400 || r.Code > 559 || r.Code == 421 || len(r.Lines) == 0 || len(r.Lines) > MaxReplyLines {
			t.Fatalf("accepted %q as %+v", s, r)
		}
		if r.Enhanced != "" && r.Enhanced[0] != byte('0'+r.Code/100) {
			t.Fatalf("enhanced class mismatch in %+v", r)
		}
		for _, l := range r.Lines {
			if strings.ContainsAny(l, "\r\n\x00") {
				t.Fatalf("line %q holds a line break or NUL", l)
			}
		}
		r2, err := ParseReply(r.String())
		if err != nil || r2.Code != r.Code || r2.Enhanced != r.Enhanced || !slices.Equal(r2.Lines, r.Lines) {
			t.Fatalf("round trip of %q: %+v, %v", s, r2, err)
		}
	})
}

func FuzzParseHeaderField(f *testing.F) {
	f.Add("X-Spam-Flag: YES")
	f.Add("X-Fold: first\r\n\tsecond")
	f.Add("X-Empty:")
	f.Fuzz(func(t *testing.T, s string) {
		name, value, err := ParseHeaderField(s)
		if err != nil {
			return
		}
		if name+":"+value != s || name == "" || strings.ContainsAny(name, ": \t") {
			t.Fatalf("bad split of %q: %q %q", s, name, value)
		}
		for _, line := range strings.Split(s, "\r\n")[1:] {
			if line == "" || (line[0] != ' ' && line[0] != '\t') {
				t.Fatalf("accepted %q: a line does not start with white space", s)
			}
		}
		if strings.ContainsAny(strings.ReplaceAll(s, "\r\n", ""), "\r\n\x00") {
			t.Fatalf("accepted %q with a bare CR, LF or NUL", s)
		}
	})
}

func FuzzParseBypass(f *testing.F) {
	f.Add(" *")
	f.Add(" http://a.example/av, urn:x:spam")
	f.Add(" ,http://a.example/av,\r\n urn:x:spam,")
	f.Fuzz(func(t *testing.T, s string) {
		all, uris, err := ParseBypass(s)
		if err != nil {
			return
		}
		if all {
			if uris != nil {
				t.Fatalf("%q: all and URIs", s)
			}
			return
		}
		if len(uris) == 0 || len(uris) > MaxBypassEntries {
			t.Fatalf("%q: %d URIs", s, len(uris))
		}
		for _, u := range uris {
			if CheckAgentID(u) != nil || strings.ContainsAny(u, ",; \t\r\n") {
				t.Fatalf("%q: bad URI %q", s, u)
			}
		}
		all2, uris2, err := ParseBypass(strings.Join(uris, ", "))
		if err != nil || all2 || !slices.Equal(uris, uris2) {
			t.Fatalf("round trip of %q: %v %q %v", s, all2, uris2, err)
		}
	})
}
