package milter

import (
	"strings"
	"testing"

	"github.com/d--j/go-milter/milterutil"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// FuzzReplyReason checks the SMTP reply formatter on arbitrary text: it
// either refuses the text or yields a reply the MTA accepts: one that
// ocpsmtp.ParseReply accepts (every line starts with the code, "ddd-" then
// "ddd ", no bare CR, LF or NUL, at most 32 lines, an enhanced code that
// matches the code's class).
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
		reason, err := replyReason(ocpsmtp.Reply{Code: code, Text: text})
		if err != nil {
			return
		}
		wire, err := milterutil.FormatResponse(uint16(code), reason)
		if err != nil {
			t.Fatalf("accepted %q but go-milter cannot format it: %v", text, err)
		}
		// What reaches the MTA passes the profile's validator too.
		if _, err := ocpsmtp.ParseReply(wire); err != nil {
			t.Fatalf("accepted %q, formatted as %q: %v", text, wire, err)
		}
	})
}
