package e2e

import (
	"strconv"
	"strings"
	"testing"
)

// bounceSender is the sender of the bounce scenario: a domain whose mail
// stays local, so that its non-delivery report can be read.
const bounceSender = "sender@bounce.test"

// TestScenarioBounce (T54, RFC 4902 §4): a message adapted by opes-milter
// is relayed to a server that refuses it after DATA (smtp-sink -f .: 500
// 5.3.0), so the MTA
// bounces it to the sender. The non-delivery report's copy of the original
// header carries the OPES trace lines. Postfix delivers the report to a
// Maildir (virtual(8)), Sendmail to an smtp-sink of its own.
func TestScenarioBounce(t *testing.T) {
	op := StartOpes(t, OpesOptions{})
	refuser := StartSink(t, SinkOptions{Reject: []string{"."}})
	vmail := InstanceDir(t, "vmail")
	chown(t, vmail, 65534, 65534) // virtual(8) creates the Maildir as nobody
	bounces := StartSink(t, SinkOptions{})
	mtas := StartMTAs(t, op, PostfixOptions{
		RelayTo: refuser.Addr,
		Extra: map[string]string{
			"virtual_mailbox_domains": "bounce.test",
			"virtual_mailbox_base":    vmail,
			"virtual_mailbox_maps":    "static:Maildir/",
			"virtual_uid_maps":        "static:65534",
			"virtual_gid_maps":        "static:65534",
			"virtual_mailbox_limit":   "0",
		},
	}, SendmailOptions{
		RelayTo: refuser.Addr,
		ExtraMC: FillTemplate(t, "bounce-route.mc", readRepoFile(t, "e2e/testdata/sendmail/bounce-route.mc"),
			map[string]string{"BOUNCE_PORT": strconv.Itoa(bounces.Port())}),
	})
	for _, m := range mtas {
		t.Run(m.Name, func(t *testing.T) {
			subject := "Bounce via " + m.Name
			raw := scenarioMessage(bounceSender, "friend@example.com", subject, "This one will come back.\n")
			if d := Send(t.Context(), m.SMTPAddr, bounceSender, []string{"friend@example.com"}, raw); !d.Accepted() {
				t.Fatalf("not accepted: %+v", d)
			}
			var report []byte
			if m.Postfix != nil {
				report = WaitMaildir(t, vmail+"/Maildir", 1, scenarioTimeout)[0]
			} else {
				c := bounces.Wait(t, 1, scenarioTimeout)[0]
				if c.MailFrom != "" {
					t.Errorf("the report's envelope sender is %q, want <>", c.MailFrom)
				}
				report = c.Raw
			}
			checkBounce(t, report, subject)
		})
	}
}

// checkBounce checks a non-delivery report: its copy of the original
// message (message/rfc822 or text/rfc822-headers, or their RFC 6533 forms
// message/global and text/global-headers for SMTPUTF8 mail) is the one with subject
// and carries the OPES-System and OPES-Via lines opes-milter added.
func checkBounce(t *testing.T, report []byte, subject string) {
	t.Helper()
	leaves, err := mimeLeaves(report)
	if err != nil {
		t.Fatalf("the report's MIME does not parse: %v\n%s", err, report)
	}
	for _, l := range leaves {
		switch l.contentType {
		case "message/rfc822", "text/rfc822-headers", "message/global", "text/global-headers":
		default:
			continue
		}
		orig := string(l.data)
		header, _, _ := strings.Cut(strings.ReplaceAll(orig, "\r\n", "\n"), "\n\n")
		if !strings.Contains(header, "Subject: "+subject) {
			continue
		}
		if !strings.Contains(header, "\nOPES-System: "+systemURI+privacyParam+"\n") || !strings.Contains(header, "\nOPES-Via: "+systemURI) {
			t.Errorf("the returned header lacks the OPES trace lines:\n%s", header)
		}
		return
	}
	t.Errorf("no copy of the original message with subject %q in the report:\n%s", subject, report)
}
