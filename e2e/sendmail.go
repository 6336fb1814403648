package e2e

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SendmailOptions configure StartSendmail. The zero value is a Sendmail without
// milter that relays to its own smtp-sink.
type SendmailOptions struct {
	// Milter is the milter socket in Sendmail syntax, e.g. "inet:10025@127.0.0.1".
	// Empty means no milter.
	Milter string
	// RelayTo is the "127.0.0.1:PORT" that all mail is relayed to. Empty starts an
	// smtp-sink for the instance (Sendmail.Sink).
	RelayTo string
	// Hostname is the host name (confDOMAIN_NAME, and the UTS name Sendmail runs
	// under); default "mx.sendmail.test". It must contain a dot.
	Hostname string
	// ExtraMC is m4 text added to the .mc before the MAILER lines.
	ExtraMC string

	// submissionAddr is where the submission daemon of the contrib snippet
	// (Name=MSA) listens; StartSendmail picks it. Empty renders 127.0.0.1:587.
	submissionAddr string
}

// Sendmail is a throwaway Sendmail daemon (sendmail -bD) running from the unpacked
// packages, in its own UTS namespace (a fully qualified host name avoids Sendmail's
// 60 s "unable to qualify my own domain name" stall) and mount namespace (its
// /dev/log is the harness's Syslog).
type Sendmail struct {
	Dir            string // instance directory: sendmail.mc, sendmail.cf, run/, dev/
	SMTPAddr       string // the daemon with Name=MTA ({daemon_name} MTA)
	SubmissionAddr string // the contrib snippet's daemon with Name=MSA (only with a Milter)
	Sink           *Sink  // the relay target, when StartSendmail started it
	Syslog         *Syslog
	proc           *Process
}

// sendmailScript runs inside unshare: it builds a /dev holding the null devices and
// the syslog socket, sets the host name and execs Sendmail. Arguments: instance
// directory, host name, sendmail binary, sendmail.cf.
const sendmailScript = `set -e
cd "$1"
for n in null zero random urandom; do
	: > "dev/$n"
	mount --bind "/dev/$n" "dev/$n"
done
mount --rbind "$1/dev" /dev
hostname "$2"
exec "$3" -C "$4" -bD
`

// StartSendmail generates sendmail.cf from a test .mc and contrib/sendmail/sendmail.mc,
// starts Sendmail and waits until it listens. The cleanup stops it, kills leftovers
// and removes the directory; on failure the test log shows Sendmail's syslog.
func StartSendmail(t testing.TB, o SendmailOptions) *Sendmail {
	t.Helper()
	RequireRoot(t)
	root := SendmailRoot(t)
	unshare := RequirePeer(t, "unshare")
	m4 := RequirePeer(t, "m4")
	dir := InstanceDir(t, "sendmail")
	s := &Sendmail{Dir: dir, SMTPAddr: FreeAddr(t), SubmissionAddr: FreeAddr(t)}
	o.submissionAddr = s.SubmissionAddr
	relay := o.RelayTo
	if relay == "" {
		s.Sink = StartSink(t, SinkOptions{})
		relay = s.Sink.Addr
	}
	host := o.Hostname
	if host == "" {
		host = "mx.sendmail.test"
	}
	mkdirs(t, 0o755, filepath.Join(dir, "run"), filepath.Join(dir, "dev"))
	mkdirs(t, 0o700, filepath.Join(dir, "run", "mqueue"))
	writeFile(t, filepath.Join(dir, "service.switch"), "hosts\tfiles\naliases\tfiles\n", 0o644)
	writeFile(t, filepath.Join(dir, "run", "statistics"), "", 0o600)
	mc := sendmailMC(t, dir, host, s.SMTPAddr, relay, o)
	writeFile(t, filepath.Join(dir, "sendmail.mc"), mc, 0o644)
	cfDir := sendmailCFDir(root)
	cf, err := exec.Command(m4, "-D_CF_DIR_="+cfDir+"/", filepath.Join(cfDir, "m4", "cf.m4"),
		filepath.Join(dir, "sendmail.mc")).Output()
	if err != nil {
		t.Fatalf("e2e: m4 sendmail.mc: %v: %s\n%s", err, stderrOf(err), mc)
	}
	writeFile(t, filepath.Join(dir, "sendmail.cf"), string(cf), 0o644)

	s.Syslog = StartSyslog(t, filepath.Join(dir, "dev", "log"))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("e2e: Sendmail syslog (%s):\n%s", dir, s.Syslog)
		}
	})
	s.proc = Command{
		Name: "sendmail",
		Argv: []string{unshare, "--uts", "--mount", "--propagation", "private",
			"sh", "-c", sendmailScript, "sh", dir, host, sendmailBinary(root), filepath.Join(dir, "sendmail.cf")},
		Dir:   dir,
		Ready: func() bool { return Listening(s.SMTPAddr) && (o.Milter == "" || Listening(s.SubmissionAddr)) },
	}.Start(t)
	return s
}

// Log returns Sendmail's syslog lines and its own output so far.
func (s *Sendmail) Log() string {
	return s.Syslog.String() + s.proc.Output()
}

// WaitLog polls the log until it contains substr and returns the log. The test fails
// after timeout, showing the log.
func (s *Sendmail) WaitLog(t testing.TB, substr string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		log := s.Log()
		if strings.Contains(log, substr) {
			return log
		}
		if time.Now().After(deadline) {
			t.Fatalf("e2e: Sendmail log lacks %q after %v:\n%s", substr, timeout, log)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// sendmailMC renders the .mc for an instance in dir.
func sendmailMC(t testing.TB, dir, host, smtpAddr, relay string, o SendmailOptions) string {
	t.Helper()
	submission := o.submissionAddr
	if submission == "" {
		submission = "127.0.0.1:587"
	}
	contrib := FillTemplate(t, ContribSendmailMC, readRepoFile(t, ContribSendmailMC), map[string]string{
		"MILTER":             o.Milter,
		"MESSAGE_SIZE_LIMIT": fmt.Sprint(TestMessageSizeLimit),
		"SUBMISSION_PORT":    portOf(submission),
		"SUBMISSION_ADDR":    hostOf(submission),
	})
	if o.Milter == "" {
		contrib = "dnl no milter\n"
	}
	return FillTemplate(t, "sendmail base mc", sendmailBaseMC, map[string]string{
		"DIR":        dir,
		"HOSTNAME":   host,
		"RELAY_HOST": hostOf(relay),
		"RELAY_PORT": portOf(relay),
		"SMTP_HOST":  hostOf(smtpAddr),
		"SMTP_PORT":  portOf(smtpAddr),
		"CONTRIB":    "dnl --- " + ContribSendmailMC + " ---\n" + contrib,
		"EXTRA":      "dnl --- test options ---\n" + o.ExtraMC,
	})
}

// stderrOf returns the standard error captured in an *exec.ExitError.
func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}
