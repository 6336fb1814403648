package mapping

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

func TestMailKeys(t *testing.T) {
	opts := func(c *Config) any { return c.Callout.Services[0].Options }
	runKeyCases(t, []keyCase{
		{"spamd defaults", svc("spamd"), opts, &Spamd{
			Backend: Backend{Address: "127.0.0.1:783", Timeout: 30 * time.Second, MaxConns: 8},
			MaxSize: 512 << 10, Request: "SYMBOLS", HeaderPrefix: "X-Spam-", Tag: 2, Tag2: 6.2, Kill: 6.9,
			Tag2Actions: []string{"subject"}, SubjectPrefix: "***SPAM***", KillAction: "reject",
			Reply: ocpsmtp.Reply{Code: 550, Text: "5.7.1 Message rejected as spam"}, DKIM: "skip"}},
		{"spamd", svc("spamd") + `address = "unix:/run/spamd.sock"
timeout = "10s"
max_connections = 2
max_size = "1MiB"
user = "mail"
request = "report"
compress = true
header_prefix = "X-SA-"
tag = -999
tag2 = 5
kill = 10.5
tag2_action = ["subject", "quarantine"]
subject_prefix = "[SPAM]"
kill_action = "quarantine"
reply = "554 5.7.1 no"
dkim = "modify"`, opts, &Spamd{
			Backend: Backend{Address: "unix:/run/spamd.sock", Timeout: 10 * time.Second, MaxConns: 2},
			MaxSize: 1 << 20, User: "mail", Request: "REPORT", Compress: true, HeaderPrefix: "X-SA-",
			Tag: -999, Tag2: 5, Kill: 10.5, Tag2Actions: []string{"subject", "quarantine"}, SubjectPrefix: "[SPAM]",
			KillAction: "quarantine", Reply: ocpsmtp.Reply{Code: 554, Text: "5.7.1 no"}, DKIM: "modify"}},
		{"rspamd defaults", svc("rspamd"), opts, &Rspamd{
			Backend: Backend{Address: "127.0.0.1:11333", Timeout: 30 * time.Second, MaxConns: 8},
			MaxSize: 20 << 20, Greylist: "accept", SpamHeader: "X-Spam", SubjectPrefix: "***SPAM***",
			RejectReply: ocpsmtp.Reply{Code: 550, Text: "5.7.1 Message rejected as spam"}, TempfailReply: ocpsmtp.Reply{Code: 451, Text: "4.7.1 Try again later"},
			MaxResponse: 1 << 20, DKIM: "skip"}},
		{"auth-verify defaults", svc("auth-verify") + `authserv_id = "mx.example.com"`, opts, &AuthVerify{
			AuthservID: "mx.example.com", Timeout: 10 * time.Second, MaxSignatures: 5, DKIM: true, SPF: true, DMARC: true,
			DMARCReject: "none", Reply: ocpsmtp.Reply{Code: 550, Text: "5.7.1 Rejected by the sender domain's DMARC policy"}}},
	})
}

// TestDefaultDKIMSignHeadersFresh: a caller changing the defaults it got
// changes no one else's.
func TestDefaultDKIMSignHeadersFresh(t *testing.T) {
	h := DefaultDKIMSignHeaders()
	h[0] = "X-Changed"
	if got := DefaultDKIMSignHeaders()[0]; got != "From" {
		t.Errorf("defaults changed by a caller: %q", got)
	}
}

// TestDefaultDKIMSignHeadersRFC6376: the default set covers every field
// RFC 6376 §5.4.1 lists as the ones to sign.
func TestDefaultDKIMSignHeadersRFC6376(t *testing.T) {
	have := map[string]bool{}
	for _, h := range DefaultDKIMSignHeaders() {
		have[strings.ToLower(h)] = true
	}
	for _, h := range []string{"From", "Reply-To", "Subject", "Date", "To", "Cc", "Resent-Date", "Resent-From",
		"Resent-To", "Resent-Cc", "In-Reply-To", "References", "List-Id", "List-Help", "List-Unsubscribe",
		"List-Subscribe", "List-Post", "List-Owner", "List-Archive"} {
		if !have[strings.ToLower(h)] {
			t.Errorf("%s not in the default set", h)
		}
	}
}

func TestMailErrors(t *testing.T) {
	key := filepath.Join(t.TempDir(), "k.pem")
	if err := os.WriteFile(key, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	runErrorCases(t, []errorCase{
		{"spamd address", svc("spamd") + "address = \"localhost\"",
			`t.toml:4: callout.services.s.address: want "host:port", "unix:/path" or "inet:port@host", not "localhost"`},
		{"spamd thresholds", svc("spamd") + "tag2 = 7\nkill = 6",
			`t.toml:5: callout.services.s.kill: 6 is below tag2 (7)`},
		{"spamd request", svc("spamd") + "request = \"PROCESS\"",
			`t.toml:4: callout.services.s.request: "PROCESS" is not one of "SYMBOLS", "REPORT", "HEADERS"`},
		{"spamd tag2_action", svc("spamd") + "tag2_action = [\"discard\"]",
			`t.toml:4: callout.services.s.tag2_action[0]: "discard" is not one of "subject", "quarantine"`},
		{"spamd score type", svc("spamd") + "tag = \"high\"",
			`t.toml:4: callout.services.s.tag: expected a number like 6.2, got a string`},
		{"spamd dkim", svc("spamd") + "dkim = \"keep\"",
			`t.toml:4: callout.services.s.dkim: "keep" is not one of "skip", "modify"`},
		{"rspamd greylist", svc("rspamd") + "greylist = \"reject\"",
			`t.toml:4: callout.services.s.greylist: "reject" is not one of "accept", "tempfail"`},
		{"rspamd subject_prefix", svc("rspamd") + "subject_prefix = \"[SPAM]\\r\\nBcc: x@example.org\"",
			`t.toml:4: callout.services.s.subject_prefix: needs a one-line text (the Subject prefix of "rewrite subject")`},
		{"rspamd reject_reply", svc("rspamd") + "reject_reply = \"451 4.7.1 later\"",
			`t.toml:4: callout.services.s.reject_reply: must be a 5xx reply`},
		{"auth-verify authserv_id", svc("auth-verify"),
			`t.toml:1: callout.services.s.authserv_id: required: this host's name in Authentication-Results, like "mx.example.com"`},
		{"auth-verify resolver", svc("auth-verify") + "authserv_id = \"mx.example.com\"\nresolver = \"127.0.0.1\"",
			`t.toml:5: callout.services.s.resolver: "127.0.0.1": want host:port, or [addr]:port for IPv6`},
		{"dkim-sign keys", svc("dkim-sign"),
			`t.toml:1: callout.services.s: the service does nothing: set keys (a signing table: domain = { selector, key_file })`},
		{"dkim-sign key file", svc("dkim-sign") + "keys = { \"example.com\" = { selector = \"s1\", key_file = \"/nonexistent/k.pem\" } }",
			`t.toml:4: callout.services.s.keys."example.com".key_file: stat /nonexistent/k.pem: no such file or directory`},
		{"dkim-sign headers", svc("dkim-sign") + "keys = { \"example.com\" = { selector = \"s1\", key_file = \"" + key + "\" } }\nheaders = [\"Subject\"]",
			`t.toml:5: callout.services.s.headers: must include From (RFC 6376 §5.4)`},
		{"auth-verify not first", chainDoc(key, `["tag", "auth"]`),
			`t.toml:11: chains.c.services[1]: "auth" (auth-verify) must run before "tag", which may change the message or its sender: it verifies the message as it arrived`},
		{"dkim-sign not last", chainDoc(key, `["sign", "tag"]`),
			`t.toml:11: chains.c.services[1]: "tag" (disclaimer) follows "sign" (dkim-sign) and may change the message after it was signed: dkim-sign must run last`},
	})
	mustLoad(t, chainDoc(key, `["auth", "tag", "sign"]`))
}

// chainDoc is a file with both daemons' sides and a chain of services.
func chainDoc(key, services string) string {
	return fill(`[services.auth]
uri = "urn:auth"
[services.tag]
uri = "urn:tag"
[services.sign]
uri = "urn:sign"
[services.a]
uri = "urn:a"

[chains.c]
services = ` + services + `
[callout.services.auth]
uri = "urn:auth"
kind = "auth-verify"
authserv_id = "mx.example.com"
[callout.services.tag]
uri = "urn:tag"
kind = "disclaimer"
text = "x"
[callout.services.sign]
uri = "urn:sign"
kind = "dkim-sign"
keys = { "example.com" = { selector = "s1", key_file = "` + key + `" } }
`)
}
