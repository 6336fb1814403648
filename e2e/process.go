package e2e

import (
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/internal/syncbuf"
)

// DefaultReadyTimeout bounds how long Command.Start waits for a peer to become ready.
const DefaultReadyTimeout = 30 * time.Second

// stopGrace is how long a process group has between SIGTERM and SIGKILL.
const stopGrace = 5 * time.Second

// Command describes a child process to start. The zero values of the optional
// fields mean: working directory of the test, the test's environment, and
// DefaultReadyTimeout.
type Command struct {
	Name         string        // label used in logs and failure messages
	Argv         []string      // program and arguments; Argv[0] is looked up in PATH
	Dir          string        // working directory
	Env          []string      // full environment; nil inherits the test's
	Ready        func() bool   // polled until it returns true; nil means ready at once
	ReadyTimeout time.Duration // how long to poll Ready
	// Diagnose, if set, is called when the process does not become ready; what
	// it returns is added to the failure message. For peers that log elsewhere
	// than to their standard output and error.
	Diagnose func() string
}

// Process is a child process started by Command.Start or StartProcess. It runs in its
// own process group; its standard output and error are captured together.
type Process struct {
	name string
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{} // closed when the process has been waited for
	err  error         // exit status, valid after done is closed

	stopOnce sync.Once
}

// StartProcess starts argv as a child process labelled name and waits until ready
// returns true (nil ready means at once). See Command.Start.
func StartProcess(t testing.TB, name string, argv []string, ready func() bool) *Process {
	t.Helper()
	return Command{Name: name, Argv: argv, Ready: ready}.Start(t)
}

// Start starts the command and waits until it is ready. If the process exits or
// does not become ready in time, the test fails with the process's output. A
// cleanup registered on t stops the whole process group (SIGTERM, then SIGKILL) and
// prints the output when the test has failed.
func (c Command) Start(t testing.TB) *Process {
	t.Helper()
	if len(c.Argv) == 0 {
		t.Fatalf("e2e: %s: empty command", c.Name)
	}
	p := &Process{name: c.Name, out: &syncbuf.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(c.Argv[0], c.Argv[1:]...)
	p.cmd.Dir = c.Dir
	p.cmd.Env = c.Env
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	// Pdeathsig: if the test binary dies without its cleanups (a go test -timeout
	// panic), the peer dies with it; what escapes by detaching is left to SweepStale.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// A daemon that forks may keep the output pipe open after the leader exits;
	// do not let Wait hang on it.
	p.cmd.WaitDelay = 2 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("e2e: start %s: %v", c.Name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("e2e: output of %s (%s):\n%s", p.name, p.cmd, p.Output())
		}
	})
	if c.Ready == nil {
		return p
	}
	timeout := c.ReadyTimeout
	if timeout <= 0 {
		timeout = DefaultReadyTimeout
	}
	if err := p.waitReady(c.Ready, timeout); err != nil {
		diag := ""
		if c.Diagnose != nil {
			diag = "\n--- diagnosis ---\n" + c.Diagnose()
		}
		t.Fatalf("e2e: %v\n--- output of %s ---\n%s%s", err, c.Name, p.Output(), diag)
	}
	return p
}

// waitReady polls ready every 20 ms until it reports true, the process exits or the
// timeout passes.
func (p *Process) waitReady(ready func() bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !ready() {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready: %v", p.name, p.err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v", p.name, timeout)
		}
	}
	return nil
}

// Pid returns the process id, which is also the id of its process group.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output returns what the process has written to its standard output and error so far.
func (p *Process) Output() string { return p.out.String() }

// Done returns a channel that is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stop sends SIGTERM to the process group, waits up to five seconds, then sends
// SIGKILL. It returns the exit status; a process ended by Stop's own SIGTERM reports
// nil. Stop is idempotent and safe to call from several goroutines.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() {
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopGrace):
		}
		// Kill whatever is left of the group (children that ignored SIGTERM, or the
		// leader itself) and wait for the leader.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	})
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	return p.err
}
