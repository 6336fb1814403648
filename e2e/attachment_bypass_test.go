package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// bypassMessage is a message whose .exe attachment sits behind fields
// header fields in its part, or nested depth multiparts deep.
func bypassMessage(subject string, fields, depth int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: <sender@example.org>\r\nTo: <friend@example.com>\r\nSubject: %s\r\nMIME-Version: 1.0\r\n", subject)
	for i := range depth {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
		if i == 0 {
			b.WriteString("Content-Type: text/plain\r\n\r\nSee the attachment.\r\n--b0\r\n")
		}
	}
	for i := range fields {
		fmt.Fprintf(&b, "X-Filler-%d: filler\r\n", i)
	}
	b.WriteString("Content-Type: application/octet-stream; name=\"evil.exe\"\r\nContent-Disposition: attachment; filename=\"evil.exe\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return []byte(b.String())
}

// TestAttachmentBypass: the two messages that carried an .exe past the
// attachment filter through Postfix (1,000 header fields before the
// part's Content-Type; MIME nesting deeper than 32 levels) are refused
// with the filter's reply (unparsable = "reject", the default), or get
// opes-milter's failure policy with unparsable = "fail"; nothing of them
// is delivered, so no trace claims the filter adapted them. Just within the
// limits (990 fields, 20 levels) the .exe is removed and traced as usual.
func TestAttachmentBypass(t *testing.T) {
	over := map[string][]byte{
		"1000 fields": bypassMessage("fields 1000", 1000, 1),
		"40 levels":   bypassMessage("levels 40", 0, 40),
	}
	within := map[string][]byte{
		"990 fields": bypassMessage("fields 990", 990, 1),
		"20 levels":  bypassMessage("levels 20", 0, 20),
	}
	for _, policy := range []string{"reject", "fail"} {
		t.Run(policy, func(t *testing.T) {
			op := startOpesEdited(t, false, configEdit{`unparsable = "reject"`, fmt.Sprintf("unparsable = %q", policy)})
			pf := StartPostfix(t, PostfixOptions{Milter: op.PostfixSocket()})
			for name, raw := range over {
				d := Send(context.Background(), pf.SMTPAddr, "sender@example.org", []string{"friend@example.com"}, raw)
				t.Logf("%s: %v", name, d.Data)
				switch {
				case policy == "reject" && (d.Data.Code != 554 || !strings.Contains(d.Data.Text, "forbidden attachment")):
					t.Errorf("%s: %+v, want the filter's 554 refusal", name, d)
				case policy == "fail" && d.Data.Code/100 != 4:
					t.Errorf("%s: %+v, want the tempfail failure policy", name, d)
				}
			}
			for name, raw := range within {
				if d := Send(context.Background(), pf.SMTPAddr, "sender@example.org", []string{"friend@example.com"}, raw); !d.Accepted() {
					t.Errorf("%s: %+v, want it accepted", name, d)
				}
			}
			msgs := pf.Sink.Wait(t, len(within), scenarioTimeout)
			for _, m := range msgs {
				subject := m.Header.Get("Subject")
				if subject != "fields 990" && subject != "levels 20" {
					t.Errorf("delivered %q, which should have been stopped", subject)
				}
				if strings.Contains(string(m.Raw), "TVqQAAMAAAAEAAAA") {
					t.Errorf("%s: the .exe was delivered", subject)
				}
				if via := m.Header.Get("OPES-Via"); !strings.Contains(via, "attachment-filter") {
					t.Errorf("%s: OPES-Via %q does not name the filter that removed the .exe", subject, via)
				}
			}
		})
	}
}
