package e2e

import (
	"context"
	"fmt"
	"net/smtp"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The SASL account of the scenario, in a Cyrus sasldb of its own.
const (
	saslLogin    = "alice@example.org"
	saslPassword = "correct horse battery staple"
)

// cyrusSASL sets o up for SMTP AUTH with Cyrus SASL: PLAIN and LOGIN
// checked against a sasldb of the test's own (made with saslpasswd2,
// holding login with password; no saslauthd). Debian's Postfix reads
// $config_directory/sasl/smtpd.conf and ignores cyrus_sasl_config_path,
// upstream's reads cyrus_sasl_config_path: both name the same file. The
// sasldb is readable by group postfix, as smtpd runs as the postfix user
// (not chrooted in the e2e instances, e2e/config.go).
func cyrusSASL(t *testing.T, o *PostfixOptions, login, password string) {
	t.Helper()
	dir := InstanceDir(t, "sasl")
	db := filepath.Join(dir, "sasldb")
	name, realm, _ := strings.Cut(login, "@")
	ctx, cancel := context.WithTimeout(t.Context(), ClientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, RequirePeer(t, "saslpasswd2"), "-f", db, "-p", "-c", "-u", realm, name)
	cmd.Stdin = strings.NewReader(password)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("e2e: saslpasswd2: %v: %s", err, out)
	}
	pf, err := user.Lookup("postfix")
	if err != nil {
		t.Fatalf("e2e: user postfix: %v (%s)", err, InstallHint)
	}
	gid, _ := strconv.Atoi(pf.Gid)
	chown(t, db, 0, gid)
	if err := os.Chmod(db, 0o640); err != nil {
		t.Fatal(err)
	}
	if o.Files == nil {
		o.Files = map[string]string{}
	}
	o.Files["sasl/smtpd.conf"] = fmt.Sprintf(
		"pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: %s\nmech_list: PLAIN LOGIN\n", db)
	if o.Extra == nil {
		o.Extra = map[string]string{}
	}
	o.Extra["smtpd_sasl_auth_enable"] = "yes"
	o.Extra["smtpd_sasl_type"] = "cyrus"
	o.Extra["smtpd_sasl_path"] = "smtpd"
	o.Extra["cyrus_sasl_config_path"] = "$config_directory/sasl"
}

// TestScenarioSASL: a client that logs in with AUTH PLAIN on Postfix's
// submission service, checked by Cyrus SASL against a sasldb, takes the
// route whose condition is authenticated = true (e2e/testdata/opes/
// sasl-route.toml) under the sender profile, and the callout server reads
// the login from the MAIL part's AM-OPT: its header-tag service writes
// {auth_user} into the delivered message. A client on the same port that
// does not log in takes the catch-all inbound route; one with a wrong
// password gets 535 and delivers nothing.
func TestScenarioSASL(t *testing.T) {
	rec := startOCPRecorder(t)
	op := StartOpes(t, OpesOptions{Edit: func(cfg string) string {
		cfg = applyEdits(t, cfg, []configEdit{calloutAt(rec.Addr)})
		cfg = InsertRoute(t, cfg, ScenarioFragment(t, "sasl-route.toml", nil))
		return cfg + "\n" + ScenarioFragment(t, "sasl.toml", nil)
	}})
	rec.setTarget(op.CalloutAddr)
	po := PostfixOptions{Milter: op.PostfixSocket()}
	cyrusSASL(t, &po, saslLogin, saslPassword)
	p := StartPostfix(t, po)
	ctx := t.Context()
	host := hostOf(p.SubmissionAddr) // 127.0.0.1: PlainAuth sends without TLS to it
	rcpts := []string{"friend@example.com"}

	bad := SendAuth(ctx, p.SubmissionAddr, smtp.PlainAuth("", saslLogin, "wrong", host), saslLogin, rcpts,
		scenarioMessage(saslLogin, rcpts[0], "Wrong password", "Never delivered.\n"))
	if bad.Auth.Code != 535 || !strings.Contains(bad.Auth.Text, "5.7.8") || bad.Data.Code != 0 {
		t.Errorf("wrong password: AUTH %v, end of data %v, want 535 5.7.8 and no transaction", bad.Auth, bad.Data)
	}

	anon := Send(ctx, p.SubmissionAddr, "bob@example.net", rcpts,
		scenarioMessage("bob@example.net", rcpts[0], "Not logged in", "No AUTH.\n"))
	if !anon.Accepted() {
		t.Fatalf("without AUTH: not accepted: %+v", anon)
	}
	c := p.Sink.Wait(t, 1, scenarioTimeout)[0]
	if got := c.Header.Get("Subject"); got != "Not logged in" {
		t.Fatalf("first delivered message is %q, want the one sent without AUTH", got)
	}
	if got := c.Header.Get("X-OPES-Login"); got != "" {
		t.Errorf("mail without AUTH took the authenticated route: X-OPES-Login %q\n%s", got, c.Raw)
	}
	if c.Header.Get("X-OPES-Tag") == "" {
		t.Errorf("mail without AUTH did not take the inbound chain:\n%s", c.Raw)
	}

	good := SendAuth(ctx, p.SubmissionAddr, smtp.PlainAuth("", saslLogin, saslPassword, host), saslLogin, rcpts,
		scenarioMessage(saslLogin, rcpts[0], "Logged in", "Sent after AUTH PLAIN.\n"))
	if good.Auth.Code != 235 || !good.Accepted() {
		t.Fatalf("with AUTH: %+v", good)
	}
	msgs := p.Sink.Wait(t, 2, scenarioTimeout)
	c = msgs[1]
	if got := c.Header.Get("Subject"); got != "Logged in" {
		t.Fatalf("second delivered message is %q, want the one sent after AUTH", got)
	}
	if got := c.Header.Get("X-OPES-Login"); got != saslLogin {
		t.Errorf("X-OPES-Login = %q, want the SASL login %q from AM-OPT\n%s", got, saslLogin, c.Raw)
	}
	if c.Header.Get("X-OPES-Tag") != "" {
		t.Errorf("authenticated mail also took the inbound chain:\n%s", c.Raw)
	}
	if via := c.Header.Get("OPES-Via"); !strings.Contains(via, "login-tag") {
		t.Errorf("OPES-Via %q does not name the submission chain's service", via)
	}

	// On the wire: the MAIL part of exactly one transaction carried the
	// login, with the mechanism, under the sender profile.
	login := fmt.Sprintf(`{auth-authen "%d:%s"}`, len(saslLogin), saslLogin)
	if got := rec.profileOf(login); got != senderURI {
		t.Errorf("OCP profile of the transaction with %s: %q, want %s", login, got, senderURI)
	}
	all := strings.Join(rec.streams(), "")
	if n := strings.Count(all, "{auth-authen "); n != 1 {
		t.Errorf("%d AM-OPT entries auth-authen, want 1", n)
	}
	if !strings.Contains(all, "{auth-type PLAIN}") {
		t.Errorf("no AM-OPT auth-type PLAIN in the OCP the processor sent")
	}
	if msgs, _ := p.Sink.Messages(); len(msgs) != 2 {
		t.Errorf("the sink got %d messages, want 2 (nothing from the wrong password)", len(msgs))
	}
}
