package e2e

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

// scenarioTimeout bounds one SMTP session of a scenario, and how long a
// scenario waits for a copy to arrive.
const scenarioTimeout = 30 * time.Second

// rcptRejectLog is what each MTA logs when opes-milter refuses
// blocked@example.com at RCPT.
var rcptRejectLog = map[string]string{
	"postfix":  "milter-reject: RCPT from localhost[127.0.0.1]: 550 5.1.1 Recipient address rejected: blocked by policy; from=<sender@example.org> to=<blocked@example.com>",
	"sendmail": "Milter: to=<blocked@example.com>, reject=550 5.1.1 Recipient address rejected: blocked by policy",
}

// TestScenarioDelivery: a multipart message with a .exe and a PDF
// attachment to a denied and an allowed recipient, through Postfix and
// Sendmail with the shipped configuration. The denied recipient gets
// 550 5.1.1 at RCPT, the other one a copy that carries the trace lines (in
// their place), the tag header and the disclaimer, without the .exe,
// whose MIME parses and whose PDF is byte for byte what was sent.
func TestScenarioDelivery(t *testing.T) {
	op := StartOpes(t, OpesOptions{})
	pdf := attachment{"report.pdf", "application/pdf", bytes.Repeat([]byte("%PDF-1.4 scenario\n"), 500)}
	exe := attachment{"setup.exe", "application/octet-stream", append([]byte("MZ\x90\x00\x03"), make([]byte, 2000)...)}
	for _, m := range StartMTAs(t, op, PostfixOptions{}, SendmailOptions{}) {
		t.Run(m.Name, func(t *testing.T) {
			raw := scenarioMessage("sender@example.org", "friend@example.com", "Quarterly report",
				"Hello,\nthe report is attached.\n", exe, pdf)
			d := Send(t.Context(), m.SMTPAddr, "sender@example.org",
				[]string{"friend@example.com", "blocked@example.com", "colleague@example.com"}, raw)
			if !d.Accepted() {
				t.Fatalf("not accepted: %+v", d)
			}
			if got := d.Rcpts[1]; got.Code != 550 || !strings.Contains(got.Text, "5.1.1") || !strings.Contains(got.Text, "blocked by policy") {
				t.Errorf("blocked@example.com: %v, want 550 5.1.1 ... blocked by policy", got)
			}
			if d.Rcpts[0].Code != 250 || d.Rcpts[2].Code != 250 {
				t.Errorf("allowed recipients: %v", d.Rcpts)
			}
			m.WaitLog(t, rcptRejectLog[m.Name], scenarioTimeout)
			c := m.Sink.Wait(t, 1, scenarioTimeout)[0]
			if want := []string{"colleague@example.com", "friend@example.com"}; !slices.Equal(sorted(c.Rcpts), want) {
				t.Errorf("relayed to %v, want %v", c.Rcpts, want)
			}
			checkAdapted(t, c)
			checkTracePosition(t, c.Raw)
			leaves, err := mimeLeaves(c.Raw)
			if err != nil {
				t.Fatalf("the delivered MIME does not parse: %v\n%s", err, c.Raw)
			}
			var names []string
			for _, l := range leaves {
				names = append(names, l.filename)
				if l.filename == pdf.name && !bytes.Equal(l.data, pdf.data) {
					t.Errorf("%s changed: %d bytes, sha256 %s; sent %d bytes, sha256 %s",
						pdf.name, len(l.data), sha256Hex(l.data), len(pdf.data), sha256Hex(pdf.data))
				}
			}
			if !slices.Equal(names, []string{"", pdf.name}) {
				t.Errorf("delivered parts %q, want the text and %s only", names, pdf.name)
			}
			if !strings.Contains(string(leaves[0].data), "the report is attached.\n"+disclaimerText) &&
				!strings.Contains(string(leaves[0].data), "the report is attached.\r\n"+disclaimerText) {
				t.Errorf("text part %q lacks the disclaimer after the text", leaves[0].data)
			}
		})
	}
}

// checkAdapted checks a copy that the shipped chain adapted: one trace
// line naming the system without status, OPES-Via naming the services,
// the tag header and the disclaimer.
func checkAdapted(t *testing.T, c SinkMessage) {
	t.Helper()
	if got := c.Header["Opes-System"]; len(got) != 1 || got[0] != systemURI+privacyParam {
		t.Errorf("OPES-System = %q, want one %q\n%s", got, systemURI+privacyParam, c.Raw)
	}
	via := c.Header.Get("OPES-Via")
	for _, s := range []string{systemURI, "recipient-policy", "header-tag", "disclaimer", "attachment-filter"} {
		if !strings.Contains(via, s) {
			t.Errorf("OPES-Via %q lacks %s", via, s)
		}
	}
	if got := c.Header.Get("X-OPES-Tag"); got != "tagged by opes-callout" {
		t.Errorf("X-OPES-Tag = %q", got)
	}
	if !bytes.Contains(c.Body, []byte(disclaimerText)) {
		t.Errorf("no disclaimer in the body:\n%s", c.Body)
	}
}

// sorted returns a sorted copy of s.
func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
