package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestScenarioCalloutDown: with opes-callout stopped, Postfix and Sendmail
// (under the default tempfail policy) answer 4xx: an SMTP client sees the
// refusal, and a sending MTA (a Postfix without milter relaying to them)
// keeps the message in its deferred queue. Once opes-callout is back, the
// client's retry and the sending MTA's (postqueue -f) are delivered,
// adapted.
func TestScenarioCalloutDown(t *testing.T) {
	op := StartOpes(t, OpesOptions{})
	mtas := StartMTAs(t, op, PostfixOptions{}, SendmailOptions{})
	senders := make([]*Postfix, len(mtas))
	for i, m := range mtas {
		senders[i] = StartPostfix(t, PostfixOptions{RelayTo: m.SMTPAddr, Hostname: "out.sender.test"})
	}
	if err := op.Callout.Stop(); err != nil {
		t.Fatalf("stopping opes-callout: %v", err)
	}
	direct := scenarioMessage("sender@example.org", "friend@example.com", "Direct", "Sent while the callout server is down.\n")
	relayed := scenarioMessage("sender@example.org", "friend@example.com", "Relayed", "Queued by the sending MTA.\n")

	for i, m := range mtas {
		t.Run(m.Name+"/down", func(t *testing.T) {
			d := Send(t.Context(), m.SMTPAddr, "sender@example.org", []string{"friend@example.com"}, direct)
			refusal := d.Data
			if len(d.Rcpts) == 1 && d.Rcpts[0].Code != 250 {
				refusal = d.Rcpts[0]
			}
			if refusal.Code/100 != 4 {
				t.Errorf("the SMTP client got %+v, want a 4xx", d)
			}
			t.Logf("%s without opes-callout: %v", m.Name, refusal)
			if d := Send(t.Context(), senders[i].SMTPAddr, "sender@example.org", []string{"friend@example.com"}, relayed); !d.Accepted() {
				t.Fatalf("the sending MTA refused the message: %+v", d)
			}
			log := senders[i].WaitLog(t, "status=deferred", scenarioTimeout)
			if !strings.Contains(log, " 4.") {
				t.Errorf("the sending MTA deferred without a 4xx reply:\n%s", log)
			}
			// The status=deferred line is logged before the queue manager
			// moves the file into the deferred queue: wait for the state.
			if !Eventually(scenarioTimeout, func() bool { return len(senders[i].QueueFiles("deferred")) == 1 }) {
				t.Errorf("the sending MTA's deferred queue holds %v, want the message", senders[i].QueueFiles("deferred"))
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	for _, m := range mtas {
		if msgs, _ := m.Sink.Messages(); len(msgs) != 0 {
			t.Fatalf("%s relayed %d message(s) while opes-callout was down", m.Name, len(msgs))
		}
	}

	op.StartCallout(t, "")
	for i, m := range mtas {
		t.Run(m.Name+"/back", func(t *testing.T) {
			if d := Send(t.Context(), m.SMTPAddr, "sender@example.org", []string{"friend@example.com"}, direct); !d.Accepted() {
				t.Errorf("the client's retry: %+v", d)
			}
			senders[i].Flush(t)
			msgs := m.Sink.Wait(t, 2, scenarioTimeout)
			subjects := map[string]bool{}
			for _, c := range msgs {
				subjects[c.Header.Get("Subject")] = true
				checkAdapted(t, c)
			}
			if !subjects["Direct"] || !subjects["Relayed"] || len(msgs) != 2 {
				t.Errorf("delivered %v, want the client's and the sending MTA's message once each", subjects)
			}
			if !Eventually(scenarioTimeout, func() bool { return len(senders[i].QueueFiles()) == 0 }) {
				t.Errorf("the sending MTA still queues %v", senders[i].QueueFiles())
			}
		})
	}
}
