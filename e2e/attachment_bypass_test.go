package e2e

import (
	"fmt"
	"path/filepath"
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
// Each message is sent by smtp-source -F, twice in two sessions at once,
// and counted.
func TestAttachmentBypass(t *testing.T) {
	const copies = 2
	dir := t.TempDir()
	file := func(name string, raw []byte) string {
		// smtp-source -F reads LF lines and sends each with CRLF.
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".eml")
		writeFile(t, path, strings.ReplaceAll(string(raw), "\r\n", "\n"), 0o644)
		return path
	}
	over := map[string]string{
		"1000 fields": file("1000 fields", bypassMessage("fields 1000", 1000, 1)),
		"40 levels":   file("40 levels", bypassMessage("levels 40", 0, 40)),
	}
	within := map[string]string{
		"990 fields": file("990 fields", bypassMessage("fields 990", 990, 1)),
		"20 levels":  file("20 levels", bypassMessage("levels 20", 0, 20)),
	}
	for _, policy := range []string{"reject", "fail"} {
		t.Run(policy, func(t *testing.T) {
			op := startOpesEdited(t, false, configEdit{`unparsable = "reject"`, fmt.Sprintf("unparsable = %q", policy)})
			pf := StartPostfix(t, PostfixOptions{Milter: op.PostfixSocket()})
			for name, path := range over {
				rep := RunSource(t, SourceOptions{Addr: pf.SMTPAddr, File: path, Messages: copies, Sessions: copies})
				t.Logf("%s: %v", name, rep)
				rep.Check(t)
				switch {
				case policy == "reject" && (rep.Refused["554 at end of data"] != copies || !strings.Contains(rep.Output, "forbidden attachment")):
					t.Errorf("%s: %v, want the filter's 554 refusal of each\n%s", name, rep.Refused, rep.Output)
				case policy == "fail" && (rep.Temp != copies || rep.At("end of data") != copies):
					t.Errorf("%s: %v, want the tempfail failure policy for each", name, rep.Refused)
				}
			}
			delivered := 0
			for name, path := range within {
				rep := RunSource(t, SourceOptions{Addr: pf.SMTPAddr, File: path, Messages: copies, Sessions: copies})
				t.Logf("%s: %v", name, rep)
				got := rep.Delivered(t, pf.Sink, scenarioTimeout)
				if rep.Accepted != copies || len(got) != copies {
					t.Errorf("%s: %d accepted, %d delivered, want %d", name, rep.Accepted, len(got), copies)
				}
				delivered += len(got)
			}
			if !Eventually(scenarioTimeout, func() bool { return len(pf.QueueFiles()) == 0 }) {
				t.Errorf("Postfix's queue still holds %v", pf.QueueFiles())
			}
			msgs, err := pf.Sink.Messages()
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != delivered {
				t.Errorf("the sink holds %d messages, %d of them accepted", len(msgs), delivered)
			}
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
