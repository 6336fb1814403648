package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

// load sends o through Postfix (o.Addr filled in) with during running
// meanwhile in the test's goroutine.
func (cp *calloutPool) load(t *testing.T, o LoadOptions, during func()) LoadReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	o.Addr = cp.pf.SMTPAddr
	reports := make(chan LoadReport, 1)
	go func() { reports <- RunLoad(ctx, o) }()
	if during != nil {
		during()
	}
	rep := <-reports
	t.Logf("%s: %v", o.Prefix, rep)
	return rep
}

// checkAll checks that every accepted message was delivered once and
// adapted, nothing else was delivered, every refusal was a 4xx, and
// returns the number of refusals.
func (cp *calloutPool) checkAll(t *testing.T, rep LoadReport, prefix string) int {
	t.Helper()
	got := rep.Delivered(t, cp.pf.Sink, prefix, 60*time.Second)
	refused := 0
	for _, r := range rep.Results {
		if r.Refused() {
			refused++
			if r.Code/100 != 4 {
				t.Errorf("%v: want a 4xx (tempfail)", r)
			}
		}
	}
	for id, m := range got {
		if a := adaptation(m); a != "adapted" {
			t.Errorf("%s: %s", id, a)
		}
	}
	return refused
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
	start := time.Now()
	rep := cp.load(t, LoadOptions{Prefix: "hung", Sessions: sessions, Messages: messages}, nil)
	refused := cp.checkAll(t, rep, "hung")
	var longest time.Duration
	for _, r := range rep.Results {
		longest = max(longest, r.Elapsed)
	}
	t.Logf("first server stopped: %d messages in %v, %d tempfailed, longest SMTP session %v",
		messages, time.Since(start).Round(time.Millisecond), refused, longest.Round(time.Millisecond))
	if refused > sessions {
		t.Errorf("%d messages tempfailed, want at most %d (the sessions in flight)", refused, sessions)
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
	var mu sync.Mutex
	var accepted []time.Time
	var restarted time.Time
	rep := cp.load(t, LoadOptions{Prefix: "rr", Sessions: 4, Messages: 600, Rate: 50,
		OnResult: func(r SMTPResult) {
			if r.Accepted {
				mu.Lock()
				accepted = append(accepted, time.Now())
				mu.Unlock()
			}
		}}, func() {
		time.Sleep(2 * time.Second)
		_ = syscall.Kill(cp.procs[0].Pid(), syscall.SIGKILL)
		<-cp.procs[0].Done()
		time.Sleep(5 * time.Second)
		cp.start(0)
		mu.Lock()
		restarted = time.Now()
		mu.Unlock()
	})
	refused := cp.checkAll(t, rep, "rr")
	mu.Lock()
	defer mu.Unlock()
	var flowing time.Duration = -1
	for _, at := range accepted {
		if at.After(restarted) {
			flowing = at.Sub(restarted)
			break
		}
	}
	t.Logf("killed for 5 s: %d of %d messages tempfailed; first message accepted %v after the restart",
		refused, len(rep.Results), flowing.Round(time.Millisecond))
	if flowing < 0 || flowing > 2*time.Second {
		t.Errorf("traffic flowed %v after the restart, want within 2 s", flowing)
	}
	if refused == 0 {
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
	// (OPES_SOAK set) 3,000 through six, one every 500 messages.
	messages := 500
	if os.Getenv("OPES_SOAK") != "" {
		messages = 3000
	}
	start := time.Now()
	rep := cp.load(t, LoadOptions{Prefix: "roll", Sessions: 8, Messages: messages, Rate: 80}, func() {
		for range messages / 500 {
			for i := range cp.procs {
				time.Sleep(700 * time.Millisecond)
				began := time.Now()
				if err := cp.procs[i].Stop(); err != nil {
					t.Errorf("opes-callout %d: %v", i, err)
				}
				cp.start(i)
				t.Logf("opes-callout %d restarted in %v", i, time.Since(began).Round(time.Millisecond))
			}
		}
	})
	refused := cp.checkAll(t, rep, "roll")
	a, _, unknown := rep.Counts()
	t.Logf("rolling restart of 3 servers: %d messages in %v: %d accepted, %d tempfailed, %d unknown",
		len(rep.Results), time.Since(start).Round(time.Millisecond), a, refused, unknown)
	if refused != 0 || unknown != 0 || a != messages {
		t.Errorf("%d accepted, %d tempfailed, %d unknown of %d; want all accepted", a, refused, unknown, messages)
	}
	for i, p := range cp.procs {
		if !strings.Contains(p.Output(), "listening") {
			t.Errorf("opes-callout %d did not start", i)
		}
	}
}
