package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// spamReply is the reply e2e/testdata/opes/spamassassin.toml configures.
const spamReply = "550 5.7.1 Message refused as spam by SpamAssassin"

// TestScenarioSpam: SpamAssassin through the command service (spamc
// against a real spamd) in the default chain. Through Postfix and
// Sendmail, a GTUBE message is refused at the end of DATA with the
// configured reply and nothing is relayed, while an ordinary message is
// delivered with SpamAssassin's headers. With spamd stopped the client gets
// a 4xx at the end of DATA, and nothing is relayed either.
func TestScenarioSpam(t *testing.T) {
	spamd := StartSpamd(t)
	op := StartOpes(t, OpesOptions{Edit: func(cfg string) string {
		const chain = `services = ["recipient-policy", "header-tag", "disclaimer", "attachment-filter"]`
		if !strings.Contains(cfg, chain) {
			t.Fatalf("contrib/opes-milter.toml has no line %s", chain)
		}
		cfg = strings.Replace(cfg, chain,
			`services = ["recipient-policy", "spamassassin", "header-tag", "disclaimer", "attachment-filter"]`, 1)
		return cfg + "\n" + ScenarioFragment(t, "spamassassin.toml", map[string]string{"SPAMD_PORT": strconv.Itoa(spamd.Port)})
	}})
	mtas := StartMTAs(t, op, PostfixOptions{}, SendmailOptions{})
	gtube := scenarioMessage("spammer@example.org", "friend@example.com", "Cheap offer", "Buy now.\n"+GTUBE+"\n")
	ham := scenarioMessage("sender@example.org", "friend@example.com", "Lunch", "See you at noon.\n")

	for _, m := range mtas {
		t.Run(m.Name+"/gtube", func(t *testing.T) {
			d := Send(t.Context(), m.SMTPAddr, "spammer@example.org", []string{"friend@example.com"}, gtube)
			if d.Data.Code != 550 || !strings.Contains(d.Data.Text, "5.7.1") || !strings.Contains(d.Data.Text, "refused as spam by SpamAssassin") {
				t.Errorf("GTUBE at the end of DATA: %+v, want %q", d, spamReply)
			}
			t.Logf("GTUBE: %v", d.Data)
		})
		t.Run(m.Name+"/ham", func(t *testing.T) {
			d := Send(t.Context(), m.SMTPAddr, "sender@example.org", []string{"friend@example.com"}, ham)
			if !d.Accepted() {
				t.Fatalf("ham refused: %+v", d)
			}
			c := m.Sink.Wait(t, 1, scenarioTimeout)[0]
			if got := c.Header.Get("X-Spam-Status"); !strings.HasPrefix(got, "No,") {
				t.Errorf("X-Spam-Status = %q, want SpamAssassin's verdict No\n%s", got, c.Raw)
			}
			if via := c.Header.Get("OPES-Via"); !strings.Contains(via, "spamassassin") {
				t.Errorf("OPES-Via %q does not name the spamassassin service", via)
			}
		})
	}
	spamd.Stop()
	for _, m := range mtas {
		t.Run(m.Name+"/spamd-stopped", func(t *testing.T) {
			d := Send(t.Context(), m.SMTPAddr, "sender@example.org", []string{"friend@example.com"}, ham)
			if d.Data.Code != 451 || !strings.Contains(d.Data.Text, "4.7.1") {
				t.Errorf("with spamd stopped the end of DATA got %+v, want the command service's 451 4.7.1", d)
			}
			t.Logf("spamd stopped: %v", d.Data)
		})
	}
	// Only the ham copies arrived: the refused messages stayed with the client.
	time.Sleep(500 * time.Millisecond)
	for _, m := range mtas {
		if msgs, _ := m.Sink.Messages(); len(msgs) != 1 {
			t.Errorf("%s relayed %d messages, want the ham only", m.Name, len(msgs))
		}
	}
}
