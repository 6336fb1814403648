package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// ClientTimeout bounds one run of swaks, miltertest or spamc.
const ClientTimeout = 60 * time.Second

// Swaks runs swaks with args (for example "--server", p.SMTPAddr, "--to", rcpt) and
// returns its combined output. err is non-nil when swaks exits non-zero, which it
// does when the server rejects the transaction (exit 23-29), or after
// ClientTimeout. A missing swaks fails the test.
func Swaks(t testing.TB, args ...string) (out string, err error) {
	t.Helper()
	return run(t, RequirePeer(t, "swaks"), args...)
}

// MiltertestScript returns the path of a Lua script in testdata/miltertest.
func MiltertestScript(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(RepoRoot(t), "testdata", "miltertest", name)
}

// Miltertest runs miltertest -s script with each define passed as -D name=value
// (the script reads them as Lua globals) and returns its combined output. script is
// a path, or a bare file name in testdata/miltertest. err is non-nil when the script
// fails (an assert or error() in Lua makes miltertest exit non-zero).
func Miltertest(t testing.TB, script string, defines map[string]string) (out string, err error) {
	t.Helper()
	bin := RequirePeer(t, "miltertest")
	if filepath.Base(script) == script {
		script = MiltertestScript(t, script)
	}
	names := make([]string, 0, len(defines))
	for k := range defines {
		names = append(names, k)
	}
	sort.Strings(names)
	args := []string{"-v"}
	for _, k := range names {
		args = append(args, "-D", k+"="+defines[k])
	}
	args = append(args, "-s", script)
	return run(t, bin, args...)
}

// run executes bin with args under ClientTimeout and returns the combined output.
func run(t testing.TB, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), ClientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: %w: %w", filepath.Base(bin), ctx.Err(), err)
	}
	return string(out), err
}
