package ocpsmtp

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/opes-milter/opes-milter/ocp"
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
		if r.Code < 400 || r.Code > 559 || r.Code == 421 || len(r.Lines()) > MaxReplyLines {
			t.Fatalf("accepted %q as %+v", s, r)
		}
		if e := r.Enhanced(); e != "" && e[0] != byte('0'+r.Code/100) {
			t.Fatalf("enhanced class mismatch in %+v", r)
		}
		for _, l := range r.Lines() {
			if strings.ContainsAny(l, "\r\n\x00") {
				t.Fatalf("line %q holds a line break or NUL", l)
			}
		}
		r2, err := ParseReply(r.String())
		if err != nil || r2 != r || r.Validate() != nil {
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

// decodeOne decodes the first OCP message of b, lenient about a bare "*".
func decodeOne(b []byte) (*ocp.Message, error) {
	d := ocp.NewDecoder(bytes.NewReader(b), ocp.Limits{})
	d.AllowBareStar = true
	return d.Decode()
}

func FuzzParseProfile(f *testing.F) {
	f.Add([]byte("NR {\"38:http://iana.org/opes/ocp/SMTP/receiver\"\r\nAdaptive-Parts: (RCPT,RAWDATA)\r\nInformative-Parts: (IP,HELO,MAIL)\r\n};\r\n"))
	f.Add([]byte("NR {\"36:http://iana.org/opes/ocp/SMTP/sender\"\r\nAdaptive-Commands: (MAIL)\r\nInformative-Commands: (SINGLEHEADERS)\r\nHeader-List: (From,*)\r\nExtensions: (SIZE)\r\n};\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeOne(b)
		if err != nil || len(m.Anon) == 0 {
			return
		}
		feat, err := ocp.ParseFeature(m.Anon[0])
		if err != nil {
			return
		}
		p, err := ParseProfile(feat)
		if err != nil {
			return
		}
		wire := ocp.AppendMessage(nil, &ocp.Message{Name: "NR", Anon: []ocp.Value{p.Feature().Value()}})
		m2, err := decodeOne(wire)
		if err != nil {
			t.Fatalf("re-encoded profile does not decode: %v\n%q", err, wire)
		}
		feat2, err := ocp.ParseFeature(m2.Anon[0])
		if err != nil {
			t.Fatal(err)
		}
		p2, err := ParseProfile(feat2)
		if err != nil || !reflect.DeepEqual(p2.Feature(), p.Feature()) {
			t.Fatalf("round trip: %+v -> %+v, %v", p, p2, err)
		}
		// A profile that passes CheckAnswer against itself has no
		// exclusive pair, no part twice and a consistent Header-List.
		if CheckAnswer(p, p) == nil {
			if CheckExclusive(p.Parts()) != nil {
				t.Fatalf("self-check accepted exclusive parts: %+v", p)
			}
			for _, x := range p.Adaptive {
				if contains(p.Informative, x) {
					t.Fatalf("self-check accepted %s in both lists", x)
				}
			}
		}
	})
}

func FuzzParseData(f *testing.F) {
	f.Add([]byte("DUM 1 0\r\nAM-Part: RCPT\r\nSMTP-Error: \"21:550 No such user here\"\r\n\r\n0:\r\n;\r\n"))
	f.Add([]byte("DUY 1 91 232\r\nAdd-Header: \"15:X-Spam-Flag: NO\"\r\nAdvice: Quarantine\r\n;\r\n"))
	f.Add([]byte("DUM 1 25\r\nAM-Part: SECTIONS\r\nAM-Index: \"3:2.1\"\r\nAllow: (SMTP-Error,Add-Header)\r\nAM-OPT: ({queue-id 4Zx})\r\n\r\n2:ab\r\n;\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeOne(b)
		if err != nil {
			return
		}
		d, err := ParseData(m)
		if err != nil {
			return
		}
		if d.SMTPError != "" {
			if _, err := ParseReply(d.SMTPError); err != nil {
				t.Fatalf("accepted SMTP-Error %q: %v", d.SMTPError, err)
			}
		}
		if d.AddHeader != "" {
			n, _, err := ParseHeaderField(d.AddHeader)
			if err != nil || IsOPESHeader(n) {
				t.Fatalf("accepted Add-Header %q", d.AddHeader)
			}
		}
		m2 := &ocp.Message{Name: m.Name, Named: d.Params(), Payload: m.Payload, HasPayload: m.HasPayload}
		wire := ocp.AppendMessage(nil, m2)
		m3, err := decodeOne(wire)
		if err != nil {
			t.Fatalf("re-encoded data does not decode: %v\n%q", err, wire)
		}
		d2, err := ParseData(m3)
		if err != nil || !reflect.DeepEqual(d2, d) {
			t.Fatalf("round trip: %+v -> %+v, %v", d, d2, err)
		}
	})
}
