package e2e

import (
	"slices"
	"strings"
	"testing"
)

// The OCP/SMTP profiles.
const (
	senderURI   = "http://iana.org/opes/ocp/SMTP/sender"
	receiverURI = "http://iana.org/opes/ocp/SMTP/receiver"
)

// daemonMarkers are what the MAIL part's AM-OPT says of each MTA's
// services: its submission service, then its inbound one.
var daemonMarkers = map[string][2]string{
	"postfix":  {"daemon-name ORIGINATING}", `daemon-name "15:mx.postfix.test"}`},
	"sendmail": {"daemon-name MSA}", "daemon-name MTA}"},
}

// startOutbound starts opes-milter with the outbound route and chain of
// e2e/testdata/opes in front of the shipped configuration, its OCP recorded
// on the way to opes-callout, and both MTAs in front of it.
func startOutbound(t *testing.T) (*Opes, *ocpRecorder, []*MTA) {
	t.Helper()
	rec := startOCPRecorder(t)
	op := StartOpes(t, OpesOptions{Edit: func(cfg string) string {
		cfg = applyEdits(t, cfg, []configEdit{calloutAt(rec.Addr)})
		cfg = InsertRoute(t, cfg, ScenarioFragment(t, "outbound-route.toml", nil))
		return cfg + "\n" + ScenarioFragment(t, "outbound.toml", nil)
	}})
	rec.setTarget(op.CalloutAddr)
	return op, rec, StartMTAs(t, op, PostfixOptions{}, SendmailOptions{})
}

// TestScenarioSender: mail through the submission services (Postfix
// ORIGINATING, Sendmail MSA) takes the outbound route under the sender
// profile: the envelope sender is rewritten to the public domain, the
// outbound chain's header is added, a denied recipient still gets
// 550 5.1.1 at RCPT. The same message through the MTA's inbound service
// keeps its sender and takes the receiver route.
func TestScenarioSender(t *testing.T) {
	op, rec, mtas := startOutbound(t)
	raw := scenarioMessage("alice@laptop.example.org", "friend@example.com", "Outbound", "Hello from the laptop.\n")
	for _, m := range mtas {
		t.Run(m.Name+"/submission", func(t *testing.T) {
			d := Send(t.Context(), m.SubmissionAddr, "alice@laptop.example.org",
				[]string{"friend@example.com", "blocked@example.com"}, raw)
			if !d.Accepted() {
				t.Fatalf("not accepted: %+v", d)
			}
			if got := d.Rcpts[1]; got.Code != 550 || !strings.Contains(got.Text, "5.1.1") {
				t.Errorf("blocked@example.com at RCPT: %v, want 550 5.1.1", got)
			}
			c := m.Sink.Wait(t, 1, scenarioTimeout)[0]
			if c.MailFrom != "alice@example.org" {
				t.Errorf("envelope sender %q, want the rewritten alice@example.org", c.MailFrom)
			}
			if !slices.Equal(c.Rcpts, []string{"friend@example.com"}) {
				t.Errorf("relayed to %v", c.Rcpts)
			}
			checkOutbound(t, c)
			if got := rec.profileOf(daemonMarkers[m.Name][0]); got != senderURI {
				t.Errorf("OCP profile %q, want %s", got, senderURI)
			}
		})
		t.Run(m.Name+"/inbound", func(t *testing.T) {
			d := Send(t.Context(), m.SMTPAddr, "alice@laptop.example.org", []string{"friend@example.com"}, raw)
			if !d.Accepted() {
				t.Fatalf("not accepted: %+v", d)
			}
			c := m.Sink.Wait(t, 2, scenarioTimeout)[1]
			if c.MailFrom != "alice@laptop.example.org" {
				t.Errorf("inbound mail's envelope sender %q was changed", c.MailFrom)
			}
			if c.Header.Get("X-OPES-Outbound") != "" || c.Header.Get("X-OPES-Tag") == "" {
				t.Errorf("inbound mail did not take the inbound chain:\n%s", c.Raw)
			}
			if got := rec.profileOf(daemonMarkers[m.Name][1]); got != receiverURI {
				t.Errorf("OCP profile %q, want %s", got, receiverURI)
			}
		})
	}
	log := op.Milter.Output()
	n := 0
	for _, l := range logLines(log, "message") {
		if l["route"] == "outbound" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("opes-milter logged %d messages on the outbound route, want 2:\n%s", n, log)
	}
}

// checkOutbound checks a copy that took the outbound chain.
func checkOutbound(t *testing.T, c SinkMessage) {
	t.Helper()
	if got := c.Header.Get("X-OPES-Outbound"); got != "sender profile" {
		t.Errorf("X-OPES-Outbound = %q, want the outbound chain's header\n%s", got, c.Raw)
	}
	if got := c.Header.Get("X-OPES-Tag"); got != "" {
		t.Errorf("the inbound chain's X-OPES-Tag is there: %q", got)
	}
	if got := c.Header.Get("OPES-System"); got != systemURI+privacyParam {
		t.Errorf("OPES-System = %q", got)
	}
	if via := c.Header.Get("OPES-Via"); !strings.Contains(via, "sender-rewrite") || !strings.Contains(via, "outbound-tag") {
		t.Errorf("OPES-Via %q does not name the outbound services", via)
	}
	if !strings.Contains(string(c.Body), disclaimerText) {
		t.Errorf("no disclaimer:\n%s", c.Body)
	}
}

// TestScenarioNonSMTP: mail submitted with Postfix's sendmail(1) passes
// pickup and cleanup-local ({daemon_name} LOCAL, contrib/postfix/master.cf),
// where non_smtpd_milters apply: it takes the outbound route under the
// sender profile, and the denied recipient is removed at the end of the
// message, not refused, so Postfix neither keeps the mail queued nor
// bounces it. Sendmail has no such path: its sendmail(1) submits over SMTP.
func TestScenarioNonSMTP(t *testing.T) {
	op, rec, mtas := startOutbound(t)
	p := mtas[0].Postfix
	msg := []byte("From: alice@laptop.example.org\nTo: friend@example.com, blocked@example.com\nSubject: Local\n\nSubmitted with sendmail(1).\n")
	if err := p.Sendmail(t, "alice@laptop.example.org", []string{"friend@example.com", "blocked@example.com"}, msg); err != nil {
		t.Fatal(err)
	}
	c := p.Sink.Wait(t, 1, scenarioTimeout)[0]
	if !slices.Equal(c.Rcpts, []string{"friend@example.com"}) {
		t.Errorf("relayed to %v, want friend@example.com only", c.Rcpts)
	}
	if c.MailFrom != "alice@example.org" {
		t.Errorf("envelope sender %q, want the rewritten alice@example.org", c.MailFrom)
	}
	checkOutbound(t, c)
	if got := rec.profileOf("daemon-name LOCAL}"); got != senderURI {
		t.Errorf("OCP profile %q, want %s", got, senderURI)
	}
	// Postfix logs "removed" when it is done with the message: by then a
	// refused recipient would have been bounced (a non-delivery
	// notification) or the message kept queued.
	log := p.WaitLog(t, ": removed", scenarioTimeout)
	for _, bad := range []string{"milter-reject", "milter configuration error", "non-delivery notification"} {
		if strings.Contains(log, bad) {
			t.Errorf("Postfix logged %q:\n%s", bad, log)
		}
	}
	if q := p.QueueFiles(); len(q) != 0 {
		t.Errorf("Postfix still queues %v", q)
	}
	if msgs, _ := p.Sink.Messages(); len(msgs) != 1 {
		t.Errorf("the sink got %d messages, want 1", len(msgs))
	}
	ml := op.Milter.Output()
	if !strings.Contains(ml, "route=outbound") {
		t.Errorf("opes-milter log lacks the outbound route:\n%s", ml)
	}
	if !strings.Contains(ml, "recipient removed (non-SMTP path)") || !strings.Contains(ml, "rcpt=<blocked@example.com>") {
		t.Errorf("opes-milter did not log the removed recipient:\n%s", ml)
	}
}
