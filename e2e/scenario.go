package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// This file is what the scenario tests (scenario_*_test.go) share: both real
// MTAs in front of one opes-milter, an SMTP client that reports every reply,
// configuration fragments from e2e/testdata/opes, and the places a message can
// end up besides the sink (a Maildir, a queue).

// MTA is one real MTA in front of opes-milter, as a scenario sees it.
type MTA struct {
	Name string // "postfix" or "sendmail"
	// SMTPAddr receives mail from the Internet: {daemon_name} is Postfix's
	// $myhostname or Sendmail's MTA, and opes-milter takes the receiver route.
	SMTPAddr string
	// SubmissionAddr is the submission service: {daemon_name} ORIGINATING
	// (Postfix master.cf) or MSA (Sendmail DaemonPortOptions).
	SubmissionAddr string
	Sink           *Sink // where the MTA relays to, unless the options named a relay
	Postfix        *Postfix
	Sendmail       *Sendmail
}

// Log returns the MTA's log so far.
func (m *MTA) Log() string {
	if m.Postfix != nil {
		return m.Postfix.Log()
	}
	return m.Sendmail.Log()
}

// WaitLog polls the MTA's log until it contains substr; see Postfix.WaitLog.
func (m *MTA) WaitLog(t testing.TB, substr string, timeout time.Duration) string {
	t.Helper()
	if m.Postfix != nil {
		return m.Postfix.WaitLog(t, substr, timeout)
	}
	return m.Sendmail.WaitLog(t, substr, timeout)
}

// StartMTAs starts a Postfix and a Sendmail, both with op as their milter
// (Postfix for non-SMTP mail too), configured from the contrib snippets plus
// po and so. Milter fields the options already set are kept.
func StartMTAs(t testing.TB, op *Opes, po PostfixOptions, so SendmailOptions) []*MTA {
	t.Helper()
	if po.Milter == "" {
		po.Milter = op.PostfixSocket()
		po.NonSMTPMilter = true
	}
	if so.Milter == "" {
		so.Milter = op.SendmailSocket()
	}
	p := StartPostfix(t, po)
	s := StartSendmail(t, so)
	return []*MTA{
		{Name: "postfix", SMTPAddr: p.SMTPAddr, SubmissionAddr: p.SubmissionAddr, Sink: p.Sink, Postfix: p},
		{Name: "sendmail", SMTPAddr: s.SMTPAddr, SubmissionAddr: s.SubmissionAddr, Sink: s.Sink, Sendmail: s},
	}
}

// Reply is one SMTP reply.
type Reply struct {
	Code int    // 0 when the command got no reply (the connection broke)
	Text string // the text after the code, lines joined with "\n"
}

func (r Reply) String() string { return fmt.Sprintf("%d %s", r.Code, r.Text) }

// Delivery is what an SMTP client saw for one message.
type Delivery struct {
	Auth  Reply // the reply to AUTH, when SendAuth logged in
	Mail  Reply
	Rcpts []Reply // one per recipient, in order
	Data  Reply   // the reply to the end of DATA (or to DATA itself when that was refused)
	Err   error   // a transport failure or a refusal before the end of DATA
}

// Accepted reports whether the message was accepted after DATA.
func (d Delivery) Accepted() bool { return d.Err == nil && d.Data.Code == 250 }

// Send sends raw (CRLF line ends) from from to rcpts over one SMTP session to
// addr, reporting every reply. A refused recipient is left out and the
// message still goes to the others; with none left, Send stops at RCPT. It
// never fails the test: the caller judges the replies.
func Send(ctx context.Context, addr, from string, rcpts []string, raw []byte) Delivery {
	return SendAuth(ctx, addr, nil, from, rcpts, raw)
}

// SendAuth is Send with an SMTP AUTH login (RFC 4954) after EHLO when auth
// is not nil; a refused login ends the session (Delivery.Auth, Err). The
// client's server name is addr's host, which net/smtp's PlainAuth accepts
// without TLS when it is 127.0.0.1.
func SendAuth(ctx context.Context, addr string, auth smtp.Auth, from string, rcpts []string, raw []byte) Delivery {
	var d Delivery
	reply := func(err error) Reply {
		var te *textproto.Error
		if errors.As(err, &te) {
			return Reply{Code: te.Code, Text: te.Msg}
		}
		return Reply{}
	}
	dl := net.Dialer{Timeout: 10 * time.Second}
	nc, err := dl.DialContext(ctx, "tcp", addr)
	if err != nil {
		d.Err = err
		return d
	}
	defer nc.Close()
	deadline := time.Now().Add(SMTPTimeout)
	if t, ok := ctx.Deadline(); ok && t.Before(deadline) {
		deadline = t
	}
	_ = nc.SetDeadline(deadline)
	c, err := smtp.NewClient(nc, hostOf(addr))
	if err != nil {
		d.Err = err
		return d
	}
	defer c.Close()
	if err := c.Hello("client.scenario.test"); err != nil {
		d.Err = err
		return d
	}
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			d.Auth, d.Err = reply(err), fmt.Errorf("AUTH: %w", err)
			return d
		}
		d.Auth = Reply{Code: 235}
	}
	if err := c.Mail(from); err != nil {
		d.Mail, d.Err = reply(err), fmt.Errorf("MAIL: %w", err)
		return d
	}
	d.Mail = Reply{Code: 250}
	accepted := 0
	for _, rcpt := range rcpts {
		if err := c.Rcpt(rcpt); err != nil {
			d.Rcpts = append(d.Rcpts, reply(err))
			continue
		}
		d.Rcpts = append(d.Rcpts, Reply{Code: 250})
		accepted++
	}
	if accepted == 0 {
		d.Err = errors.New("RCPT: every recipient refused")
		return d
	}
	w, err := c.Data()
	if err != nil {
		d.Data, d.Err = reply(err), fmt.Errorf("DATA: %w", err)
		return d
	}
	if _, err := w.Write(raw); err != nil {
		d.Err = fmt.Errorf("DATA: %w", err)
		return d
	}
	if err := w.Close(); err != nil {
		d.Data = reply(err)
		if d.Data.Code == 0 {
			d.Err = fmt.Errorf("end of DATA: %w", err)
		}
		return d
	}
	d.Data = Reply{Code: 250}
	_ = c.Quit()
	return d
}

// ScenarioFragment returns e2e/testdata/opes/name (an opes-milter
// configuration fragment) with its @PLACEHOLDERS@ filled from vars.
func ScenarioFragment(t testing.TB, name string, vars map[string]string) string {
	t.Helper()
	rel := filepath.Join("e2e", "testdata", "opes", name)
	return FillTemplate(t, rel, readRepoFile(t, rel), vars)
}

// InsertRoute puts route (one or more [[routes]] tables) before the first
// [[routes]] table of cfg, so that it is tried before the configuration's
// own routes, and fails the test when cfg has none.
func InsertRoute(t testing.TB, cfg, route string) string {
	t.Helper()
	i := strings.Index(cfg, "\n[[routes]]")
	if i < 0 {
		t.Fatalf("e2e: configuration has no [[routes]] table")
	}
	return cfg[:i+1] + strings.TrimRight(route, "\n") + "\n\n" + cfg[i+1:]
}

// Maildir reads the messages delivered to the Maildir dir (dir/new), oldest
// first by file name.
func Maildir(dir string) ([][]byte, error) {
	entries, err := os.ReadDir(filepath.Join(dir, "new"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	msgs := make([][]byte, 0, len(names))
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, "new", n))
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, b)
	}
	return msgs, nil
}

// WaitMaildir polls the Maildir dir until it holds at least n messages and
// returns them; the test fails after timeout.
func WaitMaildir(t testing.TB, dir string, n int, timeout time.Duration) [][]byte {
	t.Helper()
	var msgs [][]byte
	ok := Eventually(timeout, func() bool {
		var err error
		msgs, err = Maildir(dir)
		if err != nil {
			t.Fatalf("e2e: maildir: %v", err)
		}
		return len(msgs) >= n
	})
	if !ok {
		t.Fatalf("e2e: %s holds %d message(s) after %v, want %d", dir, len(msgs), timeout, n)
	}
	return msgs
}

// QueueFiles lists the queue files of Postfix's queues (e.g. "hold",
// "deferred"; all of incoming, active, deferred and hold when none are
// named), as paths.
func (p *Postfix) QueueFiles(queues ...string) []string {
	if len(queues) == 0 {
		queues = []string{"incoming", "active", "deferred", "hold"}
	}
	var files []string
	for _, q := range queues {
		_ = filepath.WalkDir(filepath.Join(p.Dir, "queue", q), func(path string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, path)
			}
			return nil
		})
	}
	sort.Strings(files)
	return files
}

// Flush asks Postfix to retry its deferred mail now (postqueue -f).
func (p *Postfix) Flush(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), ClientTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, RequirePeer(t, "postqueue"), "-c", p.ConfigDir, "-f").CombinedOutput()
	if err != nil {
		t.Fatalf("e2e: postqueue -f: %v: %s", err, out)
	}
}

// QueueFiles lists Sendmail's queue files whose names start with prefix:
// "qf" (queued control files), "hf" (quarantined ones), "df" (bodies).
func (s *Sendmail) QueueFiles(prefix string) []string {
	matches, _ := filepath.Glob(filepath.Join(s.Dir, "run", "mqueue", prefix+"*"))
	sort.Strings(matches)
	return matches
}

// readAll reads a whole file, or returns the error as its text, for logs.
func readAll(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	return string(b)
}
