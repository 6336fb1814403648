package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// captureTB stands in for a test that a harness start function fails: it
// records what the harness logs and reports, ends the goroutine on Fatal
// (as testing does), and runs the cleanups when asked. Everything else goes
// to the real test.
type captureTB struct {
	testing.TB
	mu       sync.Mutex
	log      strings.Builder
	failed   bool
	cleanups []func()
}

func (c *captureTB) Helper() {}

func (c *captureTB) Logf(format string, args ...any) { c.record(fmt.Sprintf(format, args...)) }
func (c *captureTB) Log(args ...any)                 { c.record(fmt.Sprint(args...)) }

func (c *captureTB) Errorf(format string, args ...any) {
	c.record(fmt.Sprintf(format, args...))
	c.Fail()
}

func (c *captureTB) Error(args ...any) {
	c.record(fmt.Sprint(args...))
	c.Fail()
}

func (c *captureTB) Fatalf(format string, args ...any) {
	c.Errorf(format, args...)
	runtime.Goexit()
}

func (c *captureTB) Fatal(args ...any) {
	c.Error(args...)
	runtime.Goexit()
}

func (c *captureTB) FailNow() {
	c.Fail()
	runtime.Goexit()
}

func (c *captureTB) Fail() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed = true
}

func (c *captureTB) Failed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed
}

func (c *captureTB) Cleanup(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cleanups = append(c.cleanups, f)
}

func (c *captureTB) record(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log.WriteString(s + "\n")
}

// run calls start in a goroutine of its own, runs the cleanups it
// registered (last first), and returns whether it failed and everything it
// logged.
func (c *captureTB) run(start func(tb testing.TB)) (failed bool, log string) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		start(c)
	}()
	<-done
	for i := len(c.cleanups) - 1; i >= 0; i-- {
		c.cleanups[i]()
	}
	return c.Failed(), c.log.String()
}

// TestScenarioPeerStartFailure: a peer whose configuration is broken fails
// the test, and the failure shows the peer's own log (Postfix's "postfix
// check" diagnosis and maillog, Sendmail's syslog, the daemon's output), so
// that a broken contrib snippet is diagnosed from the CI log alone. The
// harness cleans up after the failure: no process or directory is left.
func TestScenarioPeerStartFailure(t *testing.T) {
	tests := []struct {
		name  string
		start func(tb testing.TB)
		want  string // from the peer's own log
	}{
		{"postfix", func(tb testing.TB) {
			StartPostfix(tb, PostfixOptions{Extra: map[string]string{"mail_owner": "opes-no-such-user"}})
		}, "opes-no-such-user"},
		{"sendmail", func(tb testing.TB) {
			StartSendmail(tb, SendmailOptions{Milter: "inet:9@127.0.0.1", ExtraMC: "define(`QUEUE_DIR', `/nonexistent/opes-mqueue')dnl\n"})
		}, "/nonexistent/opes-mqueue"},
		{"opes-milter", func(tb testing.TB) {
			StartOpes(tb, OpesOptions{NoCallout: true, Edit: func(cfg string) string {
				return strings.Replace(cfg, "max_sessions = 500", "max_sesions = 500", 1)
			}})
		}, `unknown key (did you mean "max_sessions"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Peers shared by the whole test binary (clamd, c-icap) may
			// already hold instance directories: only new ones count.
			before := ownInstanceDirs()
			failed, log := (&captureTB{TB: t}).run(tt.start)
			if !failed {
				t.Fatalf("the broken %s started:\n%s", tt.name, log)
			}
			if !strings.Contains(log, tt.want) {
				t.Errorf("the failure does not show %s's own log (%q):\n%s", tt.name, tt.want, log)
			}
			if left := newDirs(before, ownInstanceDirs()); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
			if testing.Verbose() {
				t.Logf("what the failure showed:\n%s", log)
			}
		})
	}
}

// newDirs returns the directories of after that are not in before.
func newDirs(before, after []string) []string {
	var out []string
	for _, d := range after {
		if !slices.Contains(before, d) {
			out = append(out, d)
		}
	}
	return out
}

// ownInstanceDirs lists the instance directories this test binary created
// and has not removed, besides the one holding the built daemons.
func ownInstanceDirs() []string {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), instancePattern))
	self := fmt.Sprint(os.Getpid())
	var own []string
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil || d == builtBinaries.dir {
			continue
		}
		if pid, _, _ := strings.Cut(strings.TrimSpace(string(b)), " "); pid == self {
			own = append(own, d)
		}
	}
	return own
}
