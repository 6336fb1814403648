package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// GTUBE is SpamAssassin's Generic Test for Unsolicited Bulk Email: any message whose
// body contains it scores 1000.
const GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

// Spamd is a SpamAssassin spamd listening on a loopback port, with local tests only
// (-L: no DNS or network rules) and no per-user configuration.
type Spamd struct {
	Addr string // "127.0.0.1:PORT"
	Port int
	proc *Process
}

// StartSpamd starts spamd as nobody in a new instance directory and waits until it
// listens. It is stopped when the test ends, or earlier with Stop.
func StartSpamd(t testing.TB) *Spamd {
	t.Helper()
	RequireRoot(t)
	bin := RequirePeer(t, "spamd")
	RequirePeer(t, "spamc")
	dir := InstanceDir(t, "spamd")
	s := &Spamd{Port: FreePort(t)}
	s.Addr = "127.0.0.1:" + strconv.Itoa(s.Port)
	s.proc = Command{
		Name: "spamd",
		Argv: []string{bin,
			"--local", "--nouser-config", "--username=nobody",
			"--listen=" + s.Addr, "--allowed-ips=127.0.0.1",
			"--min-children=1", "--max-children=2",
			"--syslog=stderr", "--pidfile=" + filepath.Join(dir, "spamd.pid"),
		},
		Dir:   dir,
		Ready: func() bool { return Listening(s.Addr) },
	}.Start(t)
	return s
}

// Stop stops spamd (SIGTERM to its process group) and waits for it. Later calls do
// nothing. Use it to test what a client does when spamd goes away.
func (s *Spamd) Stop() { _ = s.proc.Stop() }

// Output returns spamd's log so far.
func (s *Spamd) Output() string { return s.proc.Output() }

// Spamc runs spamc against this spamd with msg on standard input and the extra
// args (for example "-c" for "score/threshold" or "-R" for the report). It returns
// spamc's standard output and exit code: with -c or -R, 1 means spam and 0 ham;
// spamc's own errors (such as 69, service unavailable) come back as codes too. err
// is set only when spamc could not run or timed out.
func (s *Spamd) Spamc(t testing.TB, msg []byte, args ...string) (out string, code int, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), ClientTimeout)
	defer cancel()
	argv := append([]string{"-d", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-t", "30"}, args...)
	cmd := exec.CommandContext(ctx, RequirePeer(t, "spamc"), argv...)
	cmd.Stdin = bytes.NewReader(msg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return string(b), -1, fmt.Errorf("spamc: %w: %s", ctx.Err(), stderr.String())
	case errors.As(err, &exit):
		return string(b), exit.ExitCode(), nil
	case err != nil:
		return string(b), -1, fmt.Errorf("spamc: %w", err)
	}
	return string(b), 0, nil
}
