package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestScenarioQuarantine: the chain's failure policy says "quarantine" when
// no callout server can be reached, and opes-callout is down. Through
// Postfix and Sendmail the client's message is accepted (250) but held:
// Postfix puts it in its hold queue, Sendmail quarantines it (an hf file).
// The held copy is traced status=unadapted and nothing is relayed. The
// same daemon, driven by miltertest, shows the quarantine request with
// mt.eom_check (e2e/testdata/miltertest/quarantine.lua). No shipped service
// produces Advice Quarantine, so the failure policy is the way there.
func TestScenarioQuarantine(t *testing.T) {
	op := StartOpes(t, OpesOptions{NoCallout: true, Edit: func(cfg string) string {
		return applyEdits(t, cfg, []configEdit{{`connect = "tempfail"`, `connect = "quarantine"`}})
	}})
	traced := "OPES-System: " + systemURI + "; status=unadapted"
	for _, m := range StartMTAs(t, op, PostfixOptions{}, SendmailOptions{}) {
		t.Run(m.Name, func(t *testing.T) {
			raw := scenarioMessage("sender@example.org", "friend@example.com", "Held", "Held while the callout server is down.\n")
			if d := Send(t.Context(), m.SMTPAddr, "sender@example.org", []string{"friend@example.com"}, raw); !d.Accepted() {
				t.Fatalf("not accepted: %+v", d)
			}
			var held string
			if p := m.Postfix; p != nil {
				p.WaitLog(t, "milter-hold: END-OF-MESSAGE", scenarioTimeout)
				var files []string
				if !Eventually(scenarioTimeout, func() bool { files = p.QueueFiles("hold"); return len(files) == 1 }) {
					t.Fatalf("hold queue: %v, want one message", files)
				}
				held = postcat(t, p, files[0])
			} else {
				s := m.Sendmail
				s.WaitLog(t, "quarantine=", scenarioTimeout)
				files := s.QueueFiles("hf")
				if len(files) != 1 {
					t.Fatalf("quarantined queue files %v (queue: %v), want one hf file", files, s.QueueFiles(""))
				}
				held = readAll(files[0])
			}
			if !strings.Contains(held, traced) {
				t.Errorf("the held message lacks %q:\n%s", traced, held)
			}
			if !strings.Contains(held, "X-Quarantine-Reason: content adaptation failed (connect)") {
				t.Errorf("the held message lacks the reason in X-Quarantine-Reason ([milter] quarantine_header):\n%s", held)
			}
			if strings.Contains(held, "X-OPES-Tag") {
				t.Errorf("the held message was adapted:\n%s", held)
			}
			time.Sleep(200 * time.Millisecond)
			if msgs, _ := m.Sink.Messages(); len(msgs) != 0 {
				t.Errorf("%d held message(s) were relayed", len(msgs))
			}
		})
	}
	t.Run("miltertest", func(t *testing.T) {
		out, err := Miltertest(t, RepoRoot(t)+"/e2e/testdata/miltertest/quarantine.lua",
			map[string]string{"MILTER": op.SendmailSocket(), "SYSTEM": systemURI, "PARAMS": privacyParam})
		if err != nil || !strings.Contains(out, "quarantine.lua: ok") {
			t.Errorf("miltertest: %v\n%s", err, out)
		}
	})
}

// postcat returns the header of a Postfix queue file as postcat -h shows it.
func postcat(t *testing.T, p *Postfix, file string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), ClientTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, RequirePeer(t, "postcat"), "-c", p.ConfigDir, "-h", file).CombinedOutput()
	if err != nil {
		t.Fatalf("postcat %s: %v\n%s", file, err, out)
	}
	return string(out)
}
