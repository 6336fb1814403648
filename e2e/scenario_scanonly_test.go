package e2e

import (
	"strings"
	"testing"
)

// scanOnlyRoute edits the shipped configuration into a route that decides
// nothing per recipient: the message adaptive, the envelope informative
// (what a scanning service alone needs), without recipient-policy.
func scanOnlyRoute(t *testing.T) func(string) string {
	return func(cfg string) string {
		for _, e := range [][2]string{
			{`services = ["recipient-policy", "header-tag", "disclaimer", "attachment-filter"]`, `services = ["header-tag", "disclaimer", "attachment-filter"]`},
			{`adaptive = ["RCPT", "RAWDATA"]`, `adaptive = ["RAWDATA"]`},
			{`informative = ["IP", "HELO", "MAIL"]`, `informative = ["IP", "HELO", "MAIL", "RCPT"]`},
		} {
			if !strings.Contains(cfg, e[0]) {
				t.Fatalf("contrib/opes-milter.toml has no %q", e[0])
			}
			cfg = strings.Replace(cfg, e[0], e[1], 1)
		}
		return cfg
	}
}

// TestScenarioScanOnlyRoute: on such a route opes-milter negotiates each
// MTA connection without RCPT replies (SMFIP_NR_RCPT, docs/profile.md 7),
// through Postfix and Sendmail. A message to two recipients is adapted and
// delivered to both. With opes-callout down, both RCPTs are accepted and
// the message is tempfailed at end of data by the failure policy, where a
// route deciding per recipient refuses at RCPT (TestScenarioCalloutDown);
// nothing is delivered; once opes-callout is back the retry is.
func TestScenarioScanOnlyRoute(t *testing.T) {
	op := StartOpes(t, OpesOptions{Edit: scanOnlyRoute(t)})
	mtas := StartMTAs(t, op, PostfixOptions{}, SendmailOptions{})
	rcpts := []string{"friend@example.com", "other@example.com"}
	msg := scenarioMessage("sender@example.org", "friend@example.com", "Scan only", "One message, two recipients.\n")
	for _, m := range mtas {
		t.Run(m.Name+"/up", func(t *testing.T) {
			if d := Send(t.Context(), m.SMTPAddr, "sender@example.org", rcpts, msg); !d.Accepted() {
				t.Fatalf("refused: %+v", d)
			}
			msgs := waitRcpts(t, m, 2)
			for _, c := range msgs {
				if c.Header.Get("X-OPES-Tag") != "tagged by opes-callout" || !strings.Contains(string(c.Body), disclaimerText) {
					t.Errorf("not adapted:\n%s", c.Raw)
				}
			}
		})
	}
	if err := op.Callout.Stop(); err != nil {
		t.Fatalf("stopping opes-callout: %v", err)
	}
	for _, m := range mtas {
		t.Run(m.Name+"/down", func(t *testing.T) {
			d := Send(t.Context(), m.SMTPAddr, "sender@example.org", rcpts, msg)
			for _, r := range d.Rcpts {
				if r.Code != 250 {
					t.Errorf("RCPT answered %v: the MTA waited for a RCPT reply", r)
				}
			}
			if d.Data.Code/100 != 4 {
				t.Errorf("end of data answered %v, want the failure policy's 4xx", d.Data)
			}
		})
	}
	op.StartCallout(t, "")
	for _, m := range mtas {
		t.Run(m.Name+"/back", func(t *testing.T) {
			// Nothing of the refused message was delivered: the sink
			// holds the first message's two recipients, then the retry's.
			if n := rcptsOf(t, m); n != 2 {
				t.Fatalf("%d recipients delivered before the retry, want 2", n)
			}
			if d := Send(t.Context(), m.SMTPAddr, "sender@example.org", rcpts, msg); !d.Accepted() {
				t.Fatalf("the retry: %+v", d)
			}
			waitRcpts(t, m, 4)
		})
	}
}

// rcptsOf counts the recipients of the messages m's sink holds.
func rcptsOf(t *testing.T, m *MTA) int {
	t.Helper()
	msgs, err := m.Sink.Messages()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range msgs {
		n += len(c.Rcpts)
	}
	return n
}

// waitRcpts waits until m's sink holds messages for n recipients in all
// (an MTA may deliver one copy per recipient or one for both).
func waitRcpts(t *testing.T, m *MTA, n int) []SinkMessage {
	t.Helper()
	if !Eventually(scenarioTimeout, func() bool { return rcptsOf(t, m) >= n }) {
		t.Fatalf("%d recipients delivered, want %d", rcptsOf(t, m), n)
	}
	msgs, _ := m.Sink.Messages()
	return msgs
}
