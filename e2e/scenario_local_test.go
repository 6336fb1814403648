package e2e

import (
	"strings"
	"testing"
)

// TestScenarioLocal: opes-milter run -local, alone (no opes-callout, and
// nothing listening on the server set's address), adapts mail through
// Postfix and Sendmail with the [callout] services of the same file run
// in process: the recipient policy refuses at RCPT, the message gets the
// tag, the disclaimer and the OPES trace.
func TestScenarioLocal(t *testing.T) {
	op := StartOpes(t, OpesOptions{Local: true})
	if Listening(op.CalloutAddr) {
		t.Fatalf("something listens on the configured callout address %s", op.CalloutAddr)
	}
	mtas := StartMTAs(t, op, PostfixOptions{}, SendmailOptions{})
	msg := scenarioMessage("sender@example.org", "friend@example.com", "In process", "Served by opes-milter alone.\n")
	for _, m := range mtas {
		t.Run(m.Name, func(t *testing.T) {
			d := Send(t.Context(), m.SMTPAddr, "sender@example.org", []string{"blocked@example.com", "friend@example.com"}, msg)
			if len(d.Rcpts) != 2 || d.Rcpts[0].Code != 550 || d.Rcpts[1].Code != 250 || !d.Accepted() {
				t.Fatalf("want blocked@ refused with 550 and the message accepted for friend@: %+v", d)
			}
			msgs := waitRcpts(t, m, 1)
			c := msgs[0]
			if c.Header.Get("X-OPES-Tag") != "tagged by opes-callout" || !strings.Contains(string(c.Body), disclaimerText) ||
				!strings.Contains(c.Header.Get("OPES-System"), "opes-milter") {
				t.Errorf("not adapted:\n%s", c.Raw)
			}
		})
	}
}
