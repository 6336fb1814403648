package e2e

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/opes-milter/opes-milter/callout/callouttest"
)

// spamAuthCF are the test's own SpamAssassin rules: a marker in the body
// reaches the spamd service's tag (10) or tag2 (10 + 30) threshold.
const spamAuthCF = `body OPES_TEST_TAG /opes-test-tag/
score OPES_TEST_TAG 10
body OPES_TEST_TAG2 /opes-test-tag2/
score OPES_TEST_TAG2 30
`

// spamAuthLua is the test's own rspamd rule: X-Opes-Test: add scores far
// above add_header, which is set far above what rspamd's own rules give
// ordinary mail offline.
const spamAuthLua = `
rspamd_config:register_symbol({name='OPES_TEST_ADD', score=60.0, callback=function(task)
  local h = task:get_header('X-Opes-Test') return h ~= nil and h:find('add', 1, true) ~= nil end})
`

// dkimRecord returns the DNS TXT value publishing the public key of s.
func dkimRecord(t *testing.T, s crypto.Signer) string {
	t.Helper()
	switch k := s.Public().(type) {
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(k)
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	}
	t.Fatal("unknown key type")
	return ""
}

// crlf turns a sink copy (LF line endings) back into SMTP's CRLF.
func crlf(b []byte) []byte {
	return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
}

// authMessage is a message from alice@example.org with the fields a signer
// covers, so that no MTA adds one after signing.
func authMessage(subject, body string, extra ...string) []byte {
	id := strings.ReplaceAll(strings.ToLower(subject), " ", "-")
	return []byte(strings.Join(extra, "") + "From: Alice <alice@example.org>\r\nTo: <friend@example.com>\r\nSubject: " + subject +
		"\r\nDate: Mon, 07 Dec 2026 01:00:00 +0000\r\nMessage-ID: <" + id + "@example.org>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body + "\r\n")
}

// TestScenarioSpamAuth: the spamd, rspamd, auth-verify and dkim-sign
// services with real spamd (-L, rules of the test's own), real rspamd
// (offline, DNS on the test's loopback resolver) and dkimpy as the
// independent verifier, through Postfix and Sendmail:
//   - GTUBE is rejected by spamd's kill level and by rspamd's reject;
//     marked mail gets the X-Spam fields at tag and the subject prefix at
//     tag2; a forged X-Spam-Status is gone; rspamd's add header adds
//     X-Spam: Yes;
//   - a message signed in the test (key, SPF and DMARC records on the
//     loopback DNS) arrives with Authentication-Results at the top (dkim,
//     spf and dmarc pass), byte for byte unchanged by the disclaimer, and
//     still verifies; one altered body byte gives dkim=fail; a forged
//     Authentication-Results with our authserv-id is gone;
//   - outbound mail is signed by dkim-sign after the disclaimer and
//     verifies with dkimpy; after a new key file and SIGHUP it is signed
//     with the new key;
//   - spamd and rspamd stopped: 4xx at the end of DATA (the chain's
//     failure policy), nothing relayed, nothing lost.
func TestScenarioSpamAuth(t *testing.T) {
	started := time.Now()
	_, remoteKey, _ := ed25519.GenerateKey(rand.Reader)
	signKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	records := map[string]string{
		"remote._domainkey.example.org": dkimRecord(t, remoteKey),
		"opes._domainkey.example.org":   dkimRecord(t, signKey),
	}
	dns := callouttest.StartDNS(t, map[string][]string{
		"example.org":        {"v=spf1 ip4:127.0.0.1 -all"},
		"_dmarc.example.org": {"v=DMARC1; p=reject"},
	})
	for n, v := range records {
		dns.SetTXT(n, v)
	}
	keyFile := filepath.Join(t.TempDir(), "dkim.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(signKey)}), 0o600); err != nil {
		t.Fatal(err)
	}

	spamd := StartSpamdRules(t, spamAuthCF)
	rsp := callouttest.StartRspamd(t, callouttest.RspamdOptions{DNS: dns.Addr, Lua: spamAuthLua, LocalD: map[string]string{
		"actions.conf": "reject = 150;\nadd_header = 50;\ngreylist = 40;\n",
	}})
	op := StartOpes(t, OpesOptions{Edit: func(cfg string) string {
		cfg = replaceOnce(t, cfg, `services = ["recipient-policy", "header-tag", "disclaimer", "attachment-filter"]`,
			`services = ["auth", "recipient-policy", "spamd", "header-tag", "disclaimer", "attachment-filter"]`)
		cfg = InsertRoute(t, cfg, ScenarioFragment(t, "outbound-route.toml", nil)+"\n"+ScenarioFragment(t, "rspamd-route.toml", nil))
		out := replaceOnce(t, ScenarioFragment(t, "outbound.toml", nil),
			`services = ["sender-rewrite", "recipient-policy", "outbound-tag", "disclaimer"]`,
			`services = ["sender-rewrite", "recipient-policy", "outbound-tag", "disclaimer", "dkim-sign"]`)
		return cfg + "\n" + out + "\n" + ScenarioFragment(t, "spam-auth.toml", map[string]string{
			"DNS": dns.Addr, "SPAMD_PORT": portOf(spamd.Addr), "RSPAMD_ADDR": rsp.Addr, "DKIM_KEY": keyFile,
		})
	}})
	mtas := StartMTAs(t, op, PostfixOptions{}, SendmailOptions{})
	t.Logf("peers ready after %v", time.Since(started).Round(time.Millisecond))

	sign := func(m []byte) []byte {
		var out bytes.Buffer
		if err := dkim.Sign(&out, bytes.NewReader(m), &dkim.SignOptions{Domain: "example.org", Selector: "remote", Signer: remoteKey,
			HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed}); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	relayed := map[string]int{}
	deliver := func(t *testing.T, m *MTA, addr, from, to string, raw []byte) SinkMessage {
		t.Helper()
		d := Send(t.Context(), addr, from, []string{to}, raw)
		if !d.Accepted() {
			t.Fatalf("not accepted: %+v\n%s", d, m.Log())
		}
		relayed[m.Name]++
		return m.Sink.Wait(t, relayed[m.Name], scenarioTimeout)[relayed[m.Name]-1]
	}
	refused := func(t *testing.T, m *MTA, to string, raw []byte, code int, text string) {
		t.Helper()
		d := Send(t.Context(), m.SMTPAddr, "alice@example.org", []string{to}, raw)
		if d.Data.Code != code || !strings.Contains(d.Data.Text, text) {
			t.Errorf("end of DATA: %+v, want %d ... %s", d.Data, code, text)
		}
	}

	for _, m := range mtas {
		t.Run(m.Name+"/spamd-gtube", func(t *testing.T) {
			refused(t, m, "friend@example.com", authMessage("Cheap offer", "Buy now.\r\n"+GTUBE), 550, "5.7.1 Message rejected as spam")
		})
		t.Run(m.Name+"/spamd-forged", func(t *testing.T) {
			c := deliver(t, m, m.SMTPAddr, "alice@example.org", "friend@example.com",
				authMessage("Lunch", "See you at noon.", "X-Spam-Status: No, score=-99.0\r\nX-Spam-Flag: NO\r\n"))
			if hdr, _, _ := bytes.Cut(c.Raw, []byte("\n\n")); bytes.Contains(bytes.ToLower(hdr), []byte("x-spam")) {
				t.Errorf("X-Spam fields in the delivered copy of ham (below tag, forged ones removed):\n%s", c.Raw)
			}
		})
		t.Run(m.Name+"/spamd-tag", func(t *testing.T) {
			c := deliver(t, m, m.SMTPAddr, "alice@example.org", "friend@example.com", authMessage("Offer", "opes-test-tag"))
			if st := c.Header.Get("X-Spam-Status"); !strings.HasPrefix(st, "No, score=") || !strings.Contains(st, "tag=8 tag2=25 kill=500") || !strings.Contains(st, "OPES_TEST_TAG") {
				t.Errorf("X-Spam-Status %q at tag\n%s", st, c.Raw)
			}
			if c.Header.Get("X-Spam-Level") == "" || c.Header.Get("X-Spam-Flag") != "" || c.Header.Get("Subject") != "Offer" {
				t.Errorf("at tag: level %q flag %q subject %q", c.Header.Get("X-Spam-Level"), c.Header.Get("X-Spam-Flag"), c.Header.Get("Subject"))
			}
		})
		t.Run(m.Name+"/spamd-tag2", func(t *testing.T) {
			c := deliver(t, m, m.SMTPAddr, "alice@example.org", "friend@example.com", authMessage("Offer two", "opes-test-tag2"))
			if c.Header.Get("Subject") != "***SPAM*** Offer two" || c.Header.Get("X-Spam-Flag") != "YES" || !strings.HasPrefix(c.Header.Get("X-Spam-Status"), "Yes, ") {
				t.Errorf("at tag2: subject %q flag %q status %q", c.Header.Get("Subject"), c.Header.Get("X-Spam-Flag"), c.Header.Get("X-Spam-Status"))
			}
		})
		t.Run(m.Name+"/rspamd-gtube", func(t *testing.T) {
			refused(t, m, "friend@rspamd.test", authMessage("Cheap offer", "Buy now.\r\n"+GTUBE), 550, "5.7.1 Gtube pattern")
		})
		t.Run(m.Name+"/rspamd-add-header", func(t *testing.T) {
			c := deliver(t, m, m.SMTPAddr, "alice@example.org", "friend@rspamd.test",
				authMessage("Borderline", "Hello.", "X-Opes-Test: add\r\nX-Spam: forged\r\n"))
			if got := c.Header["X-Spam"]; len(got) != 1 || got[0] != "Yes" {
				t.Errorf("X-Spam %q, want rspamd's one Yes\n%s", got, c.Raw)
			}
		})
		t.Run(m.Name+"/dkim-pass", func(t *testing.T) {
			signed := sign(authMessage("Signed", "Hello Bob, this is signed."))
			c := deliver(t, m, m.SMTPAddr, "alice@example.org", "friend@example.com", signed)
			first, _, _ := bytes.Cut(c.Raw, []byte("\n"))
			if !bytes.HasPrefix(first, []byte("Authentication-Results: mx.opes.test;")) {
				t.Errorf("first line %q, want our Authentication-Results\n%s", first, c.Raw)
			}
			ar := c.Header.Get("Authentication-Results")
			for _, w := range []string{"dkim=pass header.d=example.org header.s=remote", "spf=pass smtp.mailfrom=alice@example.org", "dmarc=pass header.from=example.org"} {
				if !strings.Contains(ar, w) {
					t.Errorf("Authentication-Results %q lacks %q", ar, w)
				}
			}
			if strings.Contains(string(c.Body), disclaimerText) || c.Header.Get("Subject") != "Signed" {
				t.Errorf("the disclaimer changed a message whose signature verified:\n%s", c.Raw)
			}
			if ok, out := callouttest.VerifyDKIMPy(t, crlf(c.Raw), records); !ok {
				t.Errorf("dkimpy on the delivered copy: %s\n%s", out, c.Raw)
			}
		})
		t.Run(m.Name+"/dkim-fail", func(t *testing.T) {
			altered := bytes.Replace(sign(authMessage("Altered", "Hello Bob, this is signed.")), []byte("Bob,"), []byte("Bob;"), 1)
			c := deliver(t, m, m.SMTPAddr, "alice@example.org", "friend@example.com", altered)
			if ar := c.Header.Get("Authentication-Results"); !strings.Contains(ar, "dkim=fail") || !strings.HasPrefix(ar, "mx.opes.test;") {
				t.Errorf("Authentication-Results %q, want dkim=fail", ar)
			}
		})
		t.Run(m.Name+"/forged-results", func(t *testing.T) {
			forged := append([]byte("Authentication-Results: mx.opes.test; dkim=pass header.d=bank.example\r\n"), sign(authMessage("Forged", "Hello."))...)
			c := deliver(t, m, m.SMTPAddr, "alice@example.org", "friend@example.com", forged)
			if n := bytes.Count(c.Raw, []byte("Authentication-Results: mx.opes.test")); n != 1 || bytes.Contains(c.Raw, []byte("bank.example")) {
				t.Errorf("%d fields claim mx.opes.test, forged one kept?\n%s", n, c.Raw)
			}
		})
		t.Run(m.Name+"/outbound-signed", func(t *testing.T) {
			raw := bytes.Replace(authMessage("Outbound", "Hello from the laptop."), []byte("alice@example.org"), []byte("alice@laptop.example.org"), 1)
			c := deliver(t, m, m.SubmissionAddr, "alice@laptop.example.org", "friend@example.com", raw)
			if !strings.Contains(string(c.Body), disclaimerText) {
				t.Errorf("no disclaimer:\n%s", c.Raw)
			}
			sig := c.Header.Get("DKIM-Signature")
			if !strings.Contains(sig, "d=example.org") || !strings.Contains(sig, "s=opes") {
				t.Errorf("DKIM-Signature %q", sig)
			}
			if ok, out := callouttest.VerifyDKIMPy(t, crlf(c.Raw), records); !ok {
				t.Errorf("dkimpy on the outbound copy: %s\n%s", out, c.Raw)
			}
		})
	}
	// Key rotation: a new key file and its record, SIGHUP to
	// opes-callout; outbound mail is signed with the new key once the
	// services were rebuilt (polled by sending, at most 20 messages).
	t.Run("dkim-sign-rotation", func(t *testing.T) {
		newKey, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(newKey)}), 0o600); err != nil {
			t.Fatal(err)
		}
		rotated := map[string]string{"opes._domainkey.example.org": dkimRecord(t, newKey)}
		if err := syscall.Kill(op.Callout.Pid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		m := mtas[0]
		raw := bytes.Replace(authMessage("Rotated", "Signed with the new key."), []byte("alice@example.org"), []byte("alice@laptop.example.org"), 1)
		for i := 0; ; i++ {
			c := deliver(t, m, m.SubmissionAddr, "alice@laptop.example.org", "friend@example.com", raw)
			if ok, _ := callouttest.VerifyDKIMPy(t, crlf(c.Raw), rotated); ok {
				break
			}
			if ok, out := callouttest.VerifyDKIMPy(t, crlf(c.Raw), records); !ok || i == 19 {
				t.Fatalf("after SIGHUP: signed with neither key, or still the old one after %d messages: %s\n%s", i+1, out, c.Raw)
			}
		}
	})
	spamd.Stop()
	rsp.Stop()
	for _, m := range mtas {
		t.Run(m.Name+"/scanners-stopped", func(t *testing.T) {
			ham := authMessage("Lunch", "See you at noon.")
			refused(t, m, "friend@example.com", ham, 451, "4.")
			refused(t, m, "friend@rspamd.test", ham, 451, "4.")
		})
	}
	// Nothing but the accepted messages was relayed: the refused ones
	// stayed with the client (5xx or 4xx), none was lost or passed.
	time.Sleep(300 * time.Millisecond)
	for _, m := range mtas {
		if msgs, _ := m.Sink.Messages(); len(msgs) != relayed[m.Name] {
			t.Errorf("%s relayed %d messages, want %d", m.Name, len(msgs), relayed[m.Name])
		}
	}
	t.Logf("scenario took %v", time.Since(started).Round(time.Millisecond))
}

// replaceOnce replaces old in s, failing the test when it is not there.
func replaceOnce(t testing.TB, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("e2e: no %q in the configuration", old)
	}
	return strings.Replace(s, old, new, 1)
}
