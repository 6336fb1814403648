package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSendmailHarness proves the Sendmail harness: swaks -> Sendmail -> milter ->
// smtp-sink, with the milter's RCPT rejection at the client and its header at the
// sink, and Sendmail's syslog captured.
func TestSendmailHarness(t *testing.T) {
	milterAddr, stats := startHarnessMilter(t)
	s := StartSendmail(t, SendmailOptions{
		Milter: fmt.Sprintf("inet:%d@%s", milterAddr.Port, milterAddr.IP),
	})

	out, err := Swaks(t, "--server", s.SMTPAddr, "--from", "a@example.org",
		"--to", "b@example.com,"+blockedRcpt, "--header", "Subject: harness", "--body", "hello")
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	// Sendmail puts the address between the codes and the milter's text.
	if !strings.Contains(out, "550 5.1.1 <"+blockedRcpt+">... blocked by the harness milter") {
		t.Errorf("swaks did not see the milter's RCPT rejection:\n%s", out)
	}

	msgs := s.Sink.Wait(t, 1, 20*time.Second)
	m := msgs[0]
	if got := m.Header.Get("X-Harness"); got != "ok" {
		t.Errorf("X-Harness = %q, want ok\n%s", got, m.Raw)
	}
	if !slices.Equal(m.Rcpts, []string{"b@example.com"}) {
		t.Errorf("relayed recipients = %v, want [b@example.com]", m.Rcpts)
	}
	if got := stats.messages.Load(); got != 1 {
		t.Errorf("milter saw %d messages, want 1", got)
	}
	// Sendmail's own milter log line proves that its syslog is captured.
	s.WaitLog(t, "Milter (opes-milter) add: header: X-Harness: ok", 5*time.Second)
}
