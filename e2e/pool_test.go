package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The pool tests run real mail through Postfix and opes-milter to a set of
// several opes-callout processes, and fail, stop, kill and restart them
// under load (docs/profile.md 3.1 and 3.2).

// calloutPool is opes-milter behind Postfix with a server set of several
// opes-callout processes, each on its own port.
type calloutPool struct {
	t     *testing.T
	op    *Opes
	pf    *Postfix
	addrs []string
	cfgs  []string
	procs []*Process
}

// startCalloutPool starts n opes-callout processes and opes-milter with a
// server set over them (strategy as given), and Postfix in front.
func startCalloutPool(t *testing.T, n int, strategy string, edits ...configEdit) *calloutPool {
	t.Helper()
	cp := &calloutPool{t: t}
	for range n {
		cp.addrs = append(cp.addrs, FreeAddr(t))
	}
	edits = append([]configEdit{calloutAt(cp.addrs...),
		{`strategy = "failover"`, fmt.Sprintf("strategy = %q", strategy)}}, edits...)
	cp.op = startOpesEdited(t, true, edits...)
	base, err := os.ReadFile(cp.op.Config)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range cp.addrs {
		cfg := strings.Replace(string(base), fmt.Sprintf("listen = [%q]", cp.op.CalloutAddr), fmt.Sprintf("listen = [%q]", a), 1)
		if cfg == string(base) {
			t.Fatalf("no [callout] listen line for %s", cp.op.CalloutAddr)
		}
		path := filepath.Join(cp.op.Dir, fmt.Sprintf("callout%d.toml", i))
		writeFile(t, path, cfg, 0o644)
		cp.cfgs = append(cp.cfgs, path)
		cp.procs = append(cp.procs, nil)
		cp.start(i)
	}
	cp.pf = StartPostfix(t, PostfixOptions{Milter: cp.op.PostfixSocket()})
	return cp
}

// start (re)starts callout server i and waits until it listens.
func (cp *calloutPool) start(i int) {
	cp.t.Helper()
	_, calloutBin := BuildBinaries(cp.t)
	cp.procs[i] = StartProcess(cp.t, fmt.Sprintf("opes-callout-%d", i), []string{calloutBin, "run", "-config", cp.cfgs[i]},
		func() bool { return Listening(cp.addrs[i]) })
}

// source runs smtp-source through Postfix (o.Addr filled in) with during
// running meanwhile in the test's goroutine, and returns its report.
func (cp *calloutPool) source(t *testing.T, o SourceOptions, during func(*SourceRun)) SourceReport {
	t.Helper()
	o.Addr = cp.pf.SMTPAddr
	run := StartSource(t, o)
	if during != nil {
		during(run)
	}
	rep := run.Wait()
	t.Logf("%v", rep)
	return rep
}

// check checks the counts of a run: every message accepted or refused
// (none lost), every refusal a 4xx, every accepted message delivered once
// (by its queue id) and adapted, nothing else of the run delivered, and
// Postfix's queue empty afterwards (nothing deferred). It returns the
// number delivered.
func (cp *calloutPool) check(t *testing.T, rep SourceReport) int {
	t.Helper()
	got := rep.Delivered(t, cp.pf.Sink, 60*time.Second)
	if rep.Perm != 0 {
		t.Errorf("%d messages refused with a 5xx, want 4xx (tempfail) only: %v", rep.Perm, rep.Refused)
	}
	for _, s := range rep.Sessions {
		if s.Refusal/100 == 5 {
			t.Errorf("the tap saw a session refused with %d", s.Refusal)
		}
	}
	half := 0
	for id, m := range got {
		if a := adaptation(m); a != "adapted" {
			if half++; half <= 5 {
				t.Errorf("%s: %s", id, a)
			}
		}
	}
	if half > 0 {
		t.Errorf("%d of %d delivered messages not adapted", half, len(got))
	}
	if !Eventually(30*time.Second, func() bool { return len(cp.pf.QueueFiles()) == 0 }) {
		t.Errorf("Postfix's queue still holds %v", cp.pf.QueueFiles())
	}
	return len(got)
}

// TestPoolFailoverHungServer: with strategy = "failover" over two servers
// and the first one stopped (SIGSTOP), mail flows through the second: a
// transaction that finds the first server silent is retried on the second
// within the RCPT deadline, the timeouts open the first server's breaker,
// and at most the sessions in flight (16) are tempfailed; no message
// waits longer than the RCPT deadline (8 s).
func TestPoolFailoverHungServer(t *testing.T) {
	cp := startCalloutPool(t, 2, "failover")
	const sessions, messages = 16, 160
	const rcptDeadline = 8 * time.Second
	pid := cp.procs[0].Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT)
	rep := cp.source(t, SourceOptions{Subject: "pool hung", Sessions: sessions, Messages: messages}, nil)
	delivered := cp.check(t, rep)
	longest := rep.Longest()
	t.Logf("first server stopped: %d messages sent in %v: %d delivered, %d tempfailed, %d lost; longest SMTP session %v",
		rep.Messages, rep.Elapsed.Round(time.Millisecond), delivered, rep.Temp, rep.Lost(), longest.Round(time.Millisecond))
	if rep.Temp > sessions {
		t.Errorf("%d messages tempfailed, want at most %d (the sessions in flight)", rep.Temp, sessions)
	}
	if longest > rcptDeadline+2*time.Second {
		t.Errorf("a message took %v, longer than the RCPT deadline (%v)", longest, rcptDeadline)
	}
}

// TestPoolRestartRecovery: the only callout server is killed (SIGKILL)
// under a steady load and restarted 5 s later: mail is tempfailed meanwhile
// (never lost, never accepted unadapted), and flows again within 2 s of
// the restart (the breaker probes the server instead of waiting).
func TestPoolRestartRecovery(t *testing.T) {
	cp := startCalloutPool(t, 1, "failover")
	var restarted time.Time
	// About 40 messages a second for 12 s.
	rep := cp.source(t, SourceOptions{Subject: "pool rr", Sessions: 40, Messages: 480, PerSecond: true}, func(*SourceRun) {
		time.Sleep(2 * time.Second)
		_ = syscall.Kill(cp.procs[0].Pid(), syscall.SIGKILL)
		<-cp.procs[0].Done()
		time.Sleep(5 * time.Second)
		cp.start(0)
		restarted = time.Now()
	})
	delivered := cp.check(t, rep)
	var flowing time.Duration = -1
	after := 0 // tempfailed in sessions begun after the restart
	for _, s := range rep.Sessions {
		if s.Accepted.After(restarted) && (flowing < 0 || s.Accepted.Sub(restarted) < flowing) {
			flowing = s.Accepted.Sub(restarted)
		}
		if s.Start.After(restarted) && s.Refusal != 0 {
			after++
		}
	}
	t.Logf("killed for 5 s: %d messages sent: %d delivered, %d tempfailed %v (%d of them begun after the restart), %d lost; "+
		"first message accepted %v after the restart", rep.Messages, delivered, rep.Temp, rep.Refused, after, rep.Lost(), flowing.Round(time.Millisecond))
	if flowing < 0 || flowing > 2*time.Second {
		t.Errorf("traffic flowed %v after the restart, want within 2 s", flowing)
	}
	if rep.Temp == 0 {
		t.Errorf("nothing was tempfailed while the only server was down: the test did not test")
	}
}

// TestPoolRollingRestart: three opes-callout servers are restarted one by
// one (SIGTERM, start, next) while 500 messages are sent: each server
// drains (docs/profile.md 3.2) and opes-milter retries what it refused on
// another server, so no message is tempfailed, none is lost, and every
// delivered message is adapted.
func TestPoolRollingRestart(t *testing.T) {
	cp := startCalloutPool(t, 3, "round-robin")
	// make test sends 500 messages through one rolling restart; make soak
	// (OPES_SOAK set) 3,000 through six. The restarts are spread over the
	// load by its progress (the messages begun so far), so that each one
	// happens under load however fast the machine is.
	messages, timeout := 500, 3*time.Minute
	if os.Getenv("OPES_SOAK") != "" {
		messages, timeout = 3000, 15*time.Minute
	}
	restarts := messages / 500 * len(cp.procs)
	rep := cp.source(t, SourceOptions{Subject: "pool roll", Sessions: 8, Messages: messages, Timeout: timeout}, func(run *SourceRun) {
		for k := range restarts {
			i := k % len(cp.procs)
			due := (k + 1) * messages / (restarts + 1)
			Eventually(2*time.Minute, func() bool {
				select {
				case <-run.Done():
					return true
				default:
					return run.Begun() >= due
				}
			})
			select {
			case <-run.Done():
				t.Errorf("restart %d: the load ended before it: the test did not test", k+1)
				return
			default:
			}
			began, inFlight := time.Now(), run.InFlight()
			if err := cp.procs[i].Stop(); err != nil {
				t.Errorf("opes-callout %d: %v", i, err)
			}
			cp.start(i)
			t.Logf("restart %d: opes-callout %d restarted in %v, begun after %d messages with %d SMTP sessions in flight", k+1, i,
				time.Since(began).Round(time.Millisecond), due, inFlight)
		}
	})
	delivered := cp.check(t, rep)
	t.Logf("rolling restart of 3 servers, %d restarts: %d messages sent in %v: %d delivered, %d tempfailed, %d lost; longest SMTP session %v",
		restarts, rep.Messages, rep.Elapsed.Round(time.Millisecond), delivered, rep.Temp, rep.Lost(), rep.Longest().Round(time.Millisecond))
	if rep.Temp != 0 || rep.Lost() != 0 || rep.Accepted != messages || delivered != messages {
		t.Errorf("%d accepted, %d delivered, %d tempfailed, %d lost of %d; want all accepted and delivered",
			rep.Accepted, delivered, rep.Temp, rep.Lost(), messages)
	}
	for i, p := range cp.procs {
		if !strings.Contains(p.Output(), "listening") {
			t.Errorf("opes-callout %d did not start", i)
		}
	}
}
