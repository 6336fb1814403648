package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPostfixHarness proves the Postfix harness: swaks -> Postfix -> milter ->
// smtp-sink, where the milter's RCPT rejection reaches the client and its added
// header reaches the sink; and the non-SMTP path (sendmail -C) through the milter.
func TestPostfixHarness(t *testing.T) {
	milterAddr, stats := startHarnessMilter(t)
	p := StartPostfix(t, PostfixOptions{
		Milter:        fmt.Sprintf("inet:%s", milterAddr),
		NonSMTPMilter: true,
	})

	out, err := Swaks(t, "--server", p.SMTPAddr, "--from", "a@example.org",
		"--to", "b@example.com,"+blockedRcpt, "--header", "Subject: harness", "--body", "hello")
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	if !strings.Contains(out, "550 5.1.1 blocked by the harness milter") {
		t.Errorf("swaks did not see the milter's RCPT rejection:\n%s", out)
	}
	if err := p.Sendmail(t, "local@example.org", []string{"c@example.com"},
		[]byte("Subject: local\n\nsubmitted with sendmail -C\n")); err != nil {
		t.Fatal(err)
	}

	msgs := p.Sink.Wait(t, 2, 20*time.Second)
	for _, m := range msgs {
		if got := m.Header.Get("X-Harness"); got != "ok" {
			t.Errorf("%s: X-Harness = %q, want ok\n%s", m.Path, got, m.Raw)
		}
		if slices.Contains(m.Rcpts, blockedRcpt) {
			t.Errorf("%s: the rejected recipient was relayed: %v", m.Path, m.Rcpts)
		}
	}
	if got := stats.messages.Load(); got != 2 {
		t.Errorf("milter saw %d messages, want 2", got)
	}
	p.WaitLog(t, "milter-reject: RCPT", 5*time.Second)
}
