package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// checkSkeletonDelivery checks what the walking skeleton promises: the
// blocked recipient was refused with 550 5.1.1 at RCPT, and the other
// recipient's copy carries the OPES trace and the header-tag header.
func checkSkeletonDelivery(t *testing.T, swaksOut string, sink *Sink) {
	t.Helper()
	if !strings.Contains(swaksOut, "550 5.1.1") {
		t.Errorf("the SMTP client did not see 550 5.1.1 for blocked@example.com:\n%s", swaksOut)
	}
	msgs := sink.Wait(t, 1, 30*time.Second)
	m := msgs[0]
	t.Logf("delivered copy:\n%s", m.Raw)
	if slices.Contains(m.Rcpts, "blocked@example.com") || !slices.Contains(m.Rcpts, "friend@example.com") {
		t.Errorf("relayed recipients = %v", m.Rcpts)
	}
	if got := m.Header.Get("OPES-System"); got != `http://opes.example.net/opes-milter; privacy-policy="http://opes.example.net/privacy"` {
		t.Errorf("OPES-System = %q\n%s", got, m.Raw)
	}
	if got := m.Header.Get("OPES-Via"); !strings.Contains(got, "header-tag") {
		t.Errorf("OPES-Via = %q", got)
	}
	if got := m.Header.Get("X-OPES-Tag"); got != "tagged by opes-callout" {
		t.Errorf("X-OPES-Tag = %q\n%s", got, m.Raw)
	}
	// The trace lines sit directly below the MTA's own Received line
	// (docs/profile.md 12: the milter index counts that hidden line).
	if names := fieldNames(m.Raw); len(names) < 3 || names[0] != "Received" || names[1] != "OPES-System" || names[2] != "OPES-Via" {
		t.Errorf("header order %v, want Received, OPES-System, OPES-Via first", names)
	}
}

// fieldNames returns the names of a message's header fields in order.
func fieldNames(raw []byte) []string {
	var names []string
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if name, _, ok := strings.Cut(line, ":"); ok {
			names = append(names, name)
		}
	}
	return names
}

func swaksSkeleton(t *testing.T, server string) string {
	t.Helper()
	out, err := Swaks(t, "--server", server, "--from", "sender@example.org",
		"--to", "blocked@example.com,friend@example.com",
		"--header", "Subject: walking skeleton", "--body", "Hello through OPES.")
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	return out
}

// TestSkeletonPostfix: swaks → Postfix → opes-milter → OCP → opes-callout,
// relayed to smtp-sink.
func TestSkeletonPostfix(t *testing.T) {
	op := StartOpes(t, OpesOptions{})
	p := StartPostfix(t, PostfixOptions{Milter: op.PostfixSocket(), NonSMTPMilter: true})
	out := swaksSkeleton(t, p.SMTPAddr)
	checkSkeletonDelivery(t, out, p.Sink)
	p.WaitLog(t, "milter-reject: RCPT", 5*time.Second)
}

// TestSkeletonSendmail: the same through a real Sendmail.
func TestSkeletonSendmail(t *testing.T) {
	op := StartOpes(t, OpesOptions{})
	s := StartSendmail(t, SendmailOptions{Milter: op.SendmailSocket()})
	out := swaksSkeleton(t, s.SMTPAddr)
	checkSkeletonDelivery(t, out, s.Sink)
}
