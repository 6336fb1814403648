package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/internal/peerprobe"
)

// PostfixOptions configure StartPostfix. The zero value is a Postfix without milter
// that relays to its own smtp-sink.
type PostfixOptions struct {
	// Milter is the milter socket in Postfix syntax, e.g. "inet:127.0.0.1:10025".
	// Empty means no milter.
	Milter string
	// NonSMTPMilter also applies the milter to mail submitted with Postfix.Sendmail
	// (non_smtpd_milters).
	NonSMTPMilter bool
	// RelayTo is the "127.0.0.1:PORT" that all mail is relayed to. Empty starts an
	// smtp-sink for the instance (Postfix.Sink).
	RelayTo string
	// Hostname is myhostname; default "mx.postfix.test".
	Hostname string
	// Extra main.cf parameters, applied last.
	Extra map[string]string
	// Files are written below ConfigDir (names relative to it, mode 0644)
	// before Postfix starts, e.g. Cyrus SASL's "sasl/smtpd.conf".
	Files map[string]string
}

func (o PostfixOptions) hostname() string {
	if o.Hostname == "" {
		return "mx.postfix.test"
	}
	return o.Hostname
}

// Postfix is a throwaway Postfix instance with its own configuration and queue
// directories, started with "postfix start-fg" as a child process.
type Postfix struct {
	Dir            string // instance directory: conf/, queue/, data/, maillog
	ConfigDir      string // for postfix -c, postconf -c, sendmail -C
	SMTPAddr       string // smtpd with {daemon_name} = myhostname
	SubmissionAddr string // smtpd with milter_macro_daemon_name = ORIGINATING
	Sink           *Sink  // the relay target, when StartPostfix started it
	proc           *Process
}

// StartPostfix generates a configuration from contrib/postfix/main.cf and master.cf,
// starts Postfix and waits until both SMTP services listen. The cleanup stops the
// master (which stops its children), kills leftovers and removes the directory. On
// failure the test log shows the maillog.
func StartPostfix(t testing.TB, o PostfixOptions) *Postfix {
	t.Helper()
	RequireRoot(t)
	postfixBin := RequirePeer(t, "postfix")
	RequirePeer(t, "smtp-sink")
	dir := InstanceDir(t, "postfix")
	p := &Postfix{
		Dir:            dir,
		ConfigDir:      filepath.Join(dir, "conf"),
		SMTPAddr:       FreeAddr(t),
		SubmissionAddr: FreeAddr(t),
	}
	relay := o.RelayTo
	if relay == "" {
		p.Sink = StartSink(t, SinkOptions{})
		relay = p.Sink.Addr
	}
	mkdirs(t, 0o755, p.ConfigDir)
	for name, content := range o.Files {
		path := filepath.Join(p.ConfigDir, name)
		mkdirs(t, 0o755, filepath.Dir(path))
		writeFile(t, path, content, 0o644)
	}
	preparePostfixDirs(t, filepath.Join(dir, "queue"), filepath.Join(dir, "data"))
	writeFile(t, filepath.Join(p.ConfigDir, "main.cf"), postfixMainCF(t, dir, "["+hostOf(relay)+"]:"+portOf(relay), o), 0o644)
	writeFile(t, filepath.Join(p.ConfigDir, "master.cf"), postfixMasterCF(t, p.SMTPAddr, p.SubmissionAddr), 0o644)
	// Postfix re-reads a configuration file written within the last two seconds
	// until it is that old (in case an editor is still writing it); date them back.
	past := time.Now().Add(-time.Minute)
	for _, f := range []string{"main.cf", "master.cf"} {
		if err := os.Chtimes(filepath.Join(p.ConfigDir, f), past, past); err != nil {
			t.Fatalf("e2e: %v", err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("e2e: Postfix maillog (%s):\n%s", dir, p.Log())
		}
	})
	p.proc = Command{
		Name: "postfix",
		Argv: []string{postfixBin, "-c", p.ConfigDir, "start-fg"},
		Dir:  dir,
		Ready: func() bool {
			return Listening(p.SMTPAddr) && Listening(p.SubmissionAddr)
		},
		Diagnose: func() string { return postfixCheck(postfixBin, p.ConfigDir) },
	}.Start(t)
	t.Cleanup(p.Stop) // before Process.Stop, which was registered earlier
	return p
}

// Stop stops Postfix the way "postfix stop" does: SIGTERM to the master, whose
// process group holds every Postfix daemon, then SIGKILL to the group if the master
// is still there after five seconds. It waits for the start-fg process to exit and
// is idempotent.
func (p *Postfix) Stop() {
	b, err := os.ReadFile(filepath.Join(p.Dir, "queue", "pid", "master.pid"))
	if err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			select {
			case <-p.proc.Done():
			case <-time.After(stopGrace):
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			}
		}
	}
	_ = p.proc.Stop()
}

// Log returns the instance's maillog so far.
func (p *Postfix) Log() string {
	b, err := os.ReadFile(filepath.Join(p.Dir, "maillog"))
	if err != nil {
		return fmt.Sprintf("(no maillog: %v)", err)
	}
	return string(b)
}

// WaitLog polls the maillog until it contains substr and returns the log. The test
// fails after timeout, showing the log.
func (p *Postfix) WaitLog(t testing.TB, substr string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		log := p.Log()
		if strings.Contains(log, substr) {
			return log
		}
		if time.Now().After(deadline) {
			t.Fatalf("e2e: Postfix maillog lacks %q after %v:\n%s", substr, timeout, log)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Sendmail submits msg with Postfix's sendmail(1) -C ConfigDir, the non-SMTP path
// (postdrop, pickup, cleanup) where non_smtpd_milters apply. It returns the command's
// error with its output.
func (p *Postfix) Sendmail(t testing.TB, from string, rcpts []string, msg []byte) error {
	t.Helper()
	bin := RequirePeer(t, "sendmail")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	args := append([]string{"-C", p.ConfigDir, "-f", from, "-i", "--"}, rcpts...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = bytes.NewReader(msg)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("postfix sendmail: %w: %s", err, out)
	}
	return nil
}

// postfixCheck runs "postfix check" for a configuration that did not start. Postfix
// commands report configuration errors only to syslog, or to standard error when
// that is a terminal, so the check runs under script(1) to get one.
func postfixCheck(postfixBin, configDir string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "script", "-qec", postfixBin+" -c "+configDir+" check", "/dev/null").CombinedOutput()
	return fmt.Sprintf("postfix check: %v\n%s", err, out)
}

// preparePostfixDirs creates the queue and data directories with the owners and
// modes "postfix check" would give them, and the queue's quick-start file, which
// makes "postfix start-fg" skip its checks: they take seconds of shell work per
// instance, and a fresh instance has nothing to repair.
func preparePostfixDirs(t testing.TB, queue, data string) {
	t.Helper()
	owner, err := user.Lookup("postfix")
	if err != nil {
		t.Fatalf("e2e: user postfix: %v (%s)", err, InstallHint)
	}
	group, err := user.LookupGroup("postdrop")
	if err != nil {
		t.Fatalf("e2e: group postdrop: %v (%s)", err, InstallHint)
	}
	uid, _ := strconv.Atoi(owner.Uid)
	gid, _ := strconv.Atoi(group.Gid)
	ownerGid, _ := strconv.Atoi(owner.Gid)
	mkdirs(t, 0o755, queue)
	mkdirs(t, 0o700, data)
	chown(t, data, uid, ownerGid)
	for _, d := range peerprobe.PostfixQueueDirs() {
		path := filepath.Join(queue, d.Name)
		mkdirs(t, d.Mode, path)
		u, g := 0, 0
		if d.Owner {
			u, g = uid, ownerGid
		}
		if d.Group {
			g = gid
		}
		chown(t, path, u, g)
	}
	writeFile(t, filepath.Join(queue, "quick-start"), "", 0o644)
}

// chown changes a file's owner or fails the test.
func chown(t testing.TB, path string, uid, gid int) {
	t.Helper()
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatalf("e2e: %v", err)
	}
}

// hostOf and portOf split "HOST:PORT" without failing; the harness builds these
// addresses itself.
func hostOf(addr string) string {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return addr
	}
	return strings.Trim(addr[:i], "[]")
}

func portOf(addr string) string {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return ""
	}
	return addr[i+1:]
}
