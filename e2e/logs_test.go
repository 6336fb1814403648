package e2e

import (
	"strings"
	"testing"
	"time"
)

// logLines returns the logfmt lines of output whose msg is msg, as maps.
func logLines(output, msg string) []map[string]string {
	var out []map[string]string
	for _, line := range strings.Split(output, "\n") {
		f := parseLogfmt(line)
		if f["msg"] == msg {
			out = append(out, f)
		}
	}
	return out
}

// parseLogfmt splits key=value and key="quoted value" pairs; a key
// whose value is "" maps to "" (present).
func parseLogfmt(line string) map[string]string {
	f := map[string]string{}
	for line != "" {
		line = strings.TrimLeft(line, " ")
		eq := strings.IndexByte(line, '=')
		if eq < 0 {
			break
		}
		key := line[:eq]
		line = line[eq+1:]
		var val string
		if strings.HasPrefix(line, `"`) {
			i := 1
			for i < len(line) && line[i] != '"' {
				if line[i] == '\\' {
					i++
				}
				i++
			}
			val = strings.ReplaceAll(line[1:min(i, len(line))], `\"`, `"`)
			line = line[min(i+1, len(line)):]
		} else {
			sp := strings.IndexByte(line, ' ')
			if sp < 0 {
				sp = len(line)
			}
			val, line = line[:sp], line[sp:]
		}
		f[key] = val
	}
	return f
}

// TestLogsCorrelate: through each real MTA, one message to an allowed and
// a denied recipient, then one to the denied recipient only. Each daemon
// writes one line per message; both carry the MTA's queue id and
// Message-ID, both the same ocp_tx (for the transaction whose recipients
// were all refused, which has no queue id, that is the common key), the
// same field names (duration), service names rather than URIs, and no
// empty field. The milter logs the refused recipient and the callout
// server the removed attachment.
func TestLogsCorrelate(t *testing.T) {
	op := StartOpes(t, OpesOptions{})
	exe := attachment{"setup.exe", "application/octet-stream", append([]byte("MZ\x90\x00\x03"), make([]byte, 200)...)}
	for _, m := range StartMTAs(t, op, PostfixOptions{}, SendmailOptions{}) {
		t.Run(m.Name, func(t *testing.T) {
			subject := "Correlate " + m.Name
			raw := scenarioMessage("sender@example.org", "friend@example.com", subject, "Hello.\n", exe)
			msgID := "<" + strings.ReplaceAll(strings.ToLower(subject), " ", "-") + "@client.scenario.test>"
			if d := Send(t.Context(), m.SMTPAddr, "sender@example.org", []string{"friend@example.com", "blocked@example.com"}, raw); !d.Accepted() {
				t.Fatalf("not accepted: %+v", d)
			}
			m.Sink.Wait(t, 1, scenarioTimeout)

			var ml, cl map[string]string
			if !Eventually(10*time.Second, func() bool {
				ml, cl = nil, nil
				for _, l := range logLines(op.Milter.Output(), "message") {
					if l["message_id"] == msgID {
						ml = l
					}
				}
				for _, l := range logLines(op.Callout.Output(), "transaction done") {
					if l["message_id"] == msgID {
						cl = l
					}
				}
				return ml != nil && cl != nil
			}) {
				t.Fatalf("no line with message_id=%s\nopes-milter:\n%s\nopes-callout:\n%s", msgID, op.Milter.Output(), op.Callout.Output())
			}
			for _, k := range []string{"qid", "ocp_tx", "message_id", "rcpts", "duration"} {
				if ml[k] == "" || ml[k] != cl[k] && k != "duration" {
					t.Errorf("%s: opes-milter %q, opes-callout %q", k, ml[k], cl[k])
				}
			}
			if ml["rcpts"] != "1" || ml["rcpts_refused"] != "1" {
				t.Errorf("opes-milter rcpts %q refused %q, want 1 and 1", ml["rcpts"], ml["rcpts_refused"])
			}
			if ml["services"] != "recipient-policy header-tag disclaimer attachment-filter" {
				t.Errorf("services = %q, want the configured names", ml["services"])
			}
			for name, lines := range map[string]string{"opes-milter": op.Milter.Output(), "opes-callout": op.Callout.Output()} {
				for _, line := range strings.Split(lines, "\n") {
					if strings.Contains(line, `=""`) {
						t.Errorf("%s logs an empty field: %s", name, line)
					}
					if strings.Contains(line, " elapsed=") {
						t.Errorf("%s logs elapsed, not duration: %s", name, line)
					}
				}
			}
			refused := false
			for _, l := range logLines(op.Milter.Output(), "recipient refused") {
				refused = refused || (l["rcpt"] == "<blocked@example.com>" && l["ocp_tx"] == ml["ocp_tx"] && l["verdict"] == "reject")
			}
			if !refused {
				t.Errorf("opes-milter did not log the refused recipient with ocp_tx=%s:\n%s", ml["ocp_tx"], op.Milter.Output())
			}
			removed := false
			for _, l := range logLines(op.Callout.Output(), "attachment removed") {
				removed = removed || (l["ocp_tx"] == cl["ocp_tx"] && strings.Contains(l["match"], "setup.exe"))
			}
			if !removed {
				t.Errorf("opes-callout did not log the removed attachment:\n%s", op.Callout.Output())
			}

			t.Logf("opes-milter: %v\nopes-callout: %v", ml, cl)
			// Every recipient refused: no queue id; ocp_tx joins the lines.
			d := Send(t.Context(), m.SMTPAddr, "sender@example.org", []string{"blocked@example.com"}, raw)
			if d.Accepted() {
				t.Fatalf("accepted with every recipient refused: %+v", d)
			}
			if !Eventually(10*time.Second, func() bool {
				for _, l := range logLines(op.Milter.Output(), "recipient refused") {
					if l["ocp_tx"] == "" || l["ocp_tx"] == ml["ocp_tx"] {
						continue
					}
					for _, c := range logLines(op.Callout.Output(), "transaction done") {
						if c["ocp_tx"] == l["ocp_tx"] && c["result"] == "refused" && c["rcpts_refused"] == "1" {
							return true
						}
					}
				}
				return false
			}) {
				t.Errorf("no pair of lines with a common ocp_tx for the refused transaction\nopes-milter:\n%s\nopes-callout:\n%s", op.Milter.Output(), op.Callout.Output())
			}
		})
	}
}
