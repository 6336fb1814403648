package milter

import (
	"strings"
	"testing"

	"github.com/d--j/go-milter/milterutil"
)

// FuzzReplyReason checks the SMTP reply formatter on arbitrary text: it
// either refuses the text or yields a reply the MTA accepts: every line
// starts with the code ("ddd-" then "ddd "), no bare CR, LF or NUL, at most
// 32 lines, and an enhanced code that matches the code's class.
func FuzzReplyReason(f *testing.F) {
	for _, s := range []string{
		"5.1.1 no such user", "5.1.1 a\r\n5.1.1 b", "4.7.1 100% busy", "no code", "5.1.1 a\r\n4.7.1 b",
		"a\rb", "a\nb", "", "2.0.0 ok", strings.Repeat("x", 2000),
	} {
		f.Add(550, s)
		f.Add(451, s)
	}
	f.Fuzz(func(t *testing.T, code int, text string) {
		if code < 400 || code > 599 {
			return
		}
		reason, err := replyReason(code, text)
		if err != nil {
			return
		}
		wire, err := milterutil.FormatResponse(uint16(code), reason)
		if err != nil {
			t.Fatalf("accepted %q but go-milter cannot format it: %v", text, err)
		}
		lines := strings.Split(wire, "\r\n")
		if len(lines) > maxReplyLines {
			t.Fatalf("%d lines", len(lines))
		}
		prefix := wire[:3]
		for i, l := range lines {
			if strings.ContainsAny(l, "\r\n\x00") {
				t.Fatalf("line %d of %q has CR, LF or NUL", i, wire)
			}
			sep := byte(' ')
			if i < len(lines)-1 {
				sep = '-'
			}
			if len(l) < 4 || l[:3] != prefix || l[3] != sep {
				t.Fatalf("line %d of %q does not start with %s%c", i, wire, prefix, sep)
			}
			if esc, n := enhancedCode(l[4:]); n > 0 && int(esc[0]-'0') != code/100 {
				t.Fatalf("enhanced code %s in a %d reply: %q", esc, code, wire)
			}
		}
	})
}
