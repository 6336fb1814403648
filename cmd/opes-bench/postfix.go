package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opes-milter/opes-milter/internal/peerprobe"
)

// The Postfix instance is built like the e2e harness builds its own (see
// package e2e): the e2e base files for a throwaway relay-only instance,
// then the administrator snippets of contrib/postfix with their
// placeholders filled in. They are read from the repository at run time,
// so the bench measures the configuration the tests and the documentation
// use.
const (
	postfixBaseMain    = "e2e/testdata/postfix/main.cf"
	postfixBaseMaster  = "e2e/testdata/postfix/master.cf"
	contribPostfixMain = "contrib/postfix/main.cf"
	contribMasterCF    = "contrib/postfix/master.cf"
)

// benchMessageSizeLimit is message_size_limit of the instance.
const benchMessageSizeLimit = 64 << 20

// postfix is a throwaway Postfix instance relaying to its own smtp-sink.
type postfix struct {
	dir      string
	confDir  string
	SMTPAddr string
	SinkAddr string
	master   *child // "postfix start-fg": the shell, master below it
	sink     *child
}

// ErrPeerMissing reports a program the Postfix cases need.
var ErrPeerMissing = errors.New("peer program missing (run .ci/install-peers.sh as root)")

// peer returns the path of a Postfix program.
func peer(name string) (string, error) {
	for _, d := range []string{"/usr/sbin", "/usr/bin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %s", ErrPeerMissing, name)
}

// startPostfix starts smtp-sink and a Postfix whose smtpd_milters is
// milter ("" for none), in a new directory under parent.
func (e *env) startPostfix(parent, milter string) (*postfix, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the Postfix cases need root (Postfix, smtp-sink -u nobody)")
	}
	postfixBin, err := peer("postfix")
	if err != nil {
		return nil, err
	}
	sinkBin, err := peer("smtp-sink")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(parent, "postfix-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	p := &postfix{dir: dir, confDir: filepath.Join(dir, "conf")}
	addrs, err := freeAddrs(3)
	if err != nil {
		return nil, err
	}
	submission := addrs[1]
	p.SMTPAddr, p.SinkAddr = addrs[0], addrs[2]
	mainCF, masterCF, err := e.postfixConfig(dir, milter, p.SMTPAddr, submission, p.SinkAddr)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(p.confDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(p.confDir, "main.cf"), []byte(mainCF), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(p.confDir, "master.cf"), []byte(masterCF), 0o644); err != nil {
		return nil, err
	}
	if err := preparePostfixDirs(filepath.Join(dir, "queue"), filepath.Join(dir, "data")); err != nil {
		return nil, err
	}
	p.sink, err = startChild("smtp-sink", []string{sinkBin, "-u", "nobody", "-h", "sink.bench.test", p.SinkAddr, "256"},
		dir, filepath.Join(dir, "smtp-sink.log"), func() bool { return peerprobe.Listening(p.SinkAddr) })
	if err != nil {
		return nil, err
	}
	p.master, err = startChild("postfix", []string{postfixBin, "-c", p.confDir, "start-fg"}, dir,
		filepath.Join(dir, "postfix.out"), func() bool { return peerprobe.Listening(p.SMTPAddr) })
	if err != nil {
		p.sink.Stop()
		return nil, fmt.Errorf("%w\n%s", err, p.Log(20))
	}
	return p, nil
}

// postfixConfig renders main.cf and master.cf.
func (e *env) postfixConfig(dir, milter, smtp, submission, relay string) (mainCF, masterCF string, err error) {
	read := func(rel string) (string, error) {
		b, err := os.ReadFile(filepath.Join(e.repo, rel))
		return string(b), err
	}
	var parts [4]string
	for i, rel := range []string{postfixBaseMain, contribPostfixMain, postfixBaseMaster, contribMasterCF} {
		if parts[i], err = read(rel); err != nil {
			return "", "", err
		}
	}
	base, err := fillTemplate(parts[0], map[string]string{
		"DIR": dir, "HOSTNAME": "mx.bench.test", "RELAYHOST": "[127.0.0.1]:" + portOf(relay),
	})
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", postfixBaseMain, err)
	}
	// Locally submitted mail is not measured: drop the non-SMTP milter
	// here rather than override it later (Postfix warns about overrides
	// in every process it starts).
	nonSMTP := regexp.MustCompile(`(?m)^non_smtpd_milters\s*=.*$`)
	if !nonSMTP.MatchString(parts[1]) {
		return "", "", fmt.Errorf("%s: no non_smtpd_milters line", contribPostfixMain)
	}
	parts[1] = nonSMTP.ReplaceAllString(parts[1], "non_smtpd_milters =")
	contrib, err := fillTemplate(parts[1], map[string]string{
		"MILTER": milter, "MESSAGE_SIZE_LIMIT": strconv.Itoa(benchMessageSizeLimit),
	})
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", contribPostfixMain, err)
	}
	mainCF = base + "\n# --- " + contribPostfixMain + " ---\n" + contrib
	services, err := fillTemplate(parts[3], map[string]string{
		"SMTP_SERVICE": smtp, "SUBMISSION_SERVICE": submission, "CHROOT": "n",
	})
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", contribMasterCF, err)
	}
	masterCF = parts[2] + "\n# --- " + contribMasterCF + " ---\n" + services
	return mainCF, masterCF, nil
}

// placeholder is an @NAME@ marker of the contrib snippets.
var placeholder = regexp.MustCompile(`@[A-Z][A-Z0-9_]*@`)

// ErrTemplate reports a placeholder without a value.
var ErrTemplate = errors.New("no value for placeholder")

// fillTemplate replaces @NAME@ by vars["NAME"] outside comment lines.
func fillTemplate(text string, vars map[string]string) (string, error) {
	var missing []string
	lines := strings.SplitAfter(text, "\n")
	for i, line := range lines {
		if strings.HasPrefix(strings.TrimLeft(line, " \t"), "#") {
			continue
		}
		lines[i] = placeholder.ReplaceAllStringFunc(line, func(m string) string {
			v, ok := vars[strings.Trim(m, "@")]
			if !ok {
				missing = append(missing, m)
				return m
			}
			return v
		})
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return "", fmt.Errorf("%w: %s", ErrTemplate, strings.Join(slices.Compact(missing), ", "))
	}
	return strings.Join(lines, ""), nil
}

func portOf(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

// preparePostfixDirs creates the queue and data directories as "postfix
// check" would and the quick-start file that lets start-fg skip the check.
func preparePostfixDirs(queue, data string) error {
	owner, err := user.Lookup("postfix")
	if err != nil {
		return fmt.Errorf("%w: user postfix: %v", ErrPeerMissing, err)
	}
	group, err := user.LookupGroup("postdrop")
	if err != nil {
		return fmt.Errorf("%w: group postdrop: %v", ErrPeerMissing, err)
	}
	uid, _ := strconv.Atoi(owner.Uid)
	ownerGid, _ := strconv.Atoi(owner.Gid)
	dropGid, _ := strconv.Atoi(group.Gid)
	mk := func(path string, mode os.FileMode, u, g int) error {
		if err := os.MkdirAll(path, mode); err != nil {
			return err
		}
		if err := os.Chmod(path, mode); err != nil {
			return err
		}
		return os.Chown(path, u, g)
	}
	if err := mk(queue, 0o755, 0, 0); err != nil {
		return err
	}
	if err := mk(data, 0o700, uid, ownerGid); err != nil {
		return err
	}
	for _, d := range peerprobe.PostfixQueueDirs() {
		u, g := 0, 0
		if d.Owner {
			u, g = uid, ownerGid
		}
		if d.Group {
			g = dropGid
		}
		if err := mk(filepath.Join(queue, d.Name), d.Mode, u, g); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(queue, "quick-start"), nil, 0o644)
}

// Components are Postfix (every process below start-fg) and smtp-sink.
func (p *postfix) Components() []Component {
	return []Component{{Name: "postfix", Pid: p.master.Pid()}, {Name: "smtp-sink", Pid: p.sink.Pid()}}
}

// queued counts the files in the queue directories that hold messages.
func (p *postfix) queued() int {
	n := 0
	for _, d := range []string{"maildrop", "incoming", "active", "deferred", "hold"} {
		_ = filepath.WalkDir(filepath.Join(p.dir, "queue", d), func(_ string, de os.DirEntry, err error) error {
			if err == nil && !de.IsDir() {
				n++
			}
			return nil
		})
	}
	return n
}

// WaitDrained waits until the queue is empty.
func (p *postfix) WaitDrained(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for p.queued() > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("postfix: %d queue files left after %v", p.queued(), timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// LogCounts counts maillog lines: delivered recipients (status=sent) and
// any other outcome (deferred, bounced, milter reject, hold, discard).
func (p *postfix) LogCounts() (sent, other int) {
	b, _ := os.ReadFile(filepath.Join(p.dir, "maillog"))
	sent = bytes.Count(b, []byte(" status=sent "))
	for _, s := range []string{" status=deferred ", " status=bounced ", "milter-reject:", "milter-hold:", "milter-discard:"} {
		other += bytes.Count(b, []byte(s))
	}
	return sent, other
}

// Log returns the last n lines of the maillog.
func (p *postfix) Log(n int) string {
	b, err := os.ReadFile(filepath.Join(p.dir, "maillog"))
	if err != nil {
		return p.master.Tail(n)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stop stops Postfix as "postfix stop" does (SIGTERM to the master, whose
// process group holds every daemon), then smtp-sink, and kills whatever
// still works in the instance directory.
func (p *postfix) Stop() {
	if b, err := os.ReadFile(filepath.Join(p.dir, "queue", "pid", "master.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			select {
			case <-p.master.done:
			case <-time.After(stopGrace):
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			}
		}
	}
	p.master.Stop()
	p.sink.Stop()
	killProcessesIn(p.dir)
}

// killProcessesIn kills every process whose working directory is dir or
// below it (Postfix daemons work in their queue directory) and waits for
// them to go, at most five seconds.
func killProcessesIn(dir string) {
	dir = filepath.Clean(dir)
	in := func() []int {
		var pids []int
		for _, p := range allProcs() {
			if p.State == 'Z' || p.Pid == os.Getpid() {
				continue
			}
			cwd, err := os.Readlink("/proc/" + strconv.Itoa(p.Pid) + "/cwd")
			if err == nil && (cwd == dir || strings.HasPrefix(cwd, dir+"/")) {
				pids = append(pids, p.Pid)
			}
		}
		return pids
	}
	for _, pid := range in() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(in()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}
