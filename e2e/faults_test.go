package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/ocp"
)

// The fault tests run real mail through Postfix, opes-milter and a callout
// server that fails in every way the issue lists, and check what the SMTP
// client and the relay see: exactly the configured outcome for each
// message (a 4xx refusal under the default tempfail policy; delivery with a
// status=unadapted trace under an accept policy), no message accepted
// half-adapted, none lost (delivered + refused = sent, and every accepted
// message is delivered once), and opes-milter serving afterwards.

// privacyParam is the parameter [trace] privacy_uri of
// contrib/opes-milter.toml adds to every OPES-System entry.
const privacyParam = `; privacy-policy="http://opes.example.net/privacy"`

// systemURI is the OPES-System entry of contrib/opes-milter.toml.
const systemURI = "http://opes.example.net/opes-milter"

// disclaimerText is what the disclaimer service of contrib/opes-milter.toml
// appends.
const disclaimerText = "This message was processed by an OPES system."

// adaptation tells how a delivered message was treated: "adapted" (every
// service of the contrib chain applied, traced without status), "unadapted"
// (none applied, traced status=unadapted), or a description of a
// half-adapted message.
func adaptation(m SinkMessage) string {
	sys := m.Header.Get("OPES-System")
	tag := m.Header.Get("X-OPES-Tag")
	disclaimer := strings.Contains(string(m.Body), disclaimerText)
	switch {
	case sys == systemURI+privacyParam && tag != "" && disclaimer:
		return "adapted"
	case strings.HasPrefix(sys, systemURI) && strings.Contains(sys, "status=unadapted") && tag == "" && !disclaimer:
		return "unadapted"
	}
	return fmt.Sprintf("half-adapted (OPES-System %q, X-OPES-Tag %q, disclaimer %v)", sys, tag, disclaimer)
}

// ---------------------------------------------------------------------------
// A TCP proxy between opes-milter and its callout servers.

// tcpProxy forwards connections to a target that the test may change, and
// can stop listening or reset every connection it carries.
type tcpProxy struct {
	Addr string

	mu       sync.Mutex
	ln       net.Listener
	target   string
	conns    map[net.Conn]struct{}
	accepted atomic.Int64
	wg       sync.WaitGroup
	// stalled stops the proxy reading from its clients (opes-milter), so
	// that their writes back up; readBuffer, when set, is the receive
	// buffer of the connections accepted from then on (small: the
	// clients' writes block sooner).
	stalled    atomic.Bool
	readBuffer atomic.Int64
}

// startProxy listens on a free loopback port and forwards to target.
func startProxy(t testing.TB, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{Addr: FreeAddr(t), target: target, conns: map[net.Conn]struct{}{}}
	p.up(t)
	t.Cleanup(func() {
		p.down()
		p.wg.Wait()
	})
	return p
}

// up listens (again) on the proxy's address.
func (p *tcpProxy) up(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp4", p.Addr)
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.forward(nc)
			}()
		}
	}()
}

// down stops listening (connections are refused) and drops every
// connection.
func (p *tcpProxy) down() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	p.mu.Unlock()
	p.drop(false)
}

// setTarget forwards new connections to addr and drops the open ones.
func (p *tcpProxy) setTarget(addr string) {
	p.mu.Lock()
	p.target = addr
	p.mu.Unlock()
	p.drop(false)
}

// reset ends every connection with a TCP RST on both sides and returns how
// many connections it cut.
func (p *tcpProxy) reset() int { return p.drop(true) / 2 }

func (p *tcpProxy) drop(rst bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok && rst {
			_ = tc.SetLinger(0)
		}
		c.Close()
		n++
	}
	return n
}

func (p *tcpProxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
}

func (p *tcpProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
		c.Close()
	}
}

func (p *tcpProxy) forward(client net.Conn) {
	p.mu.Lock()
	target := p.target
	p.mu.Unlock()
	server, err := net.DialTimeout("tcp", target, 3*time.Second)
	if err != nil {
		client.Close()
		return
	}
	if n := p.readBuffer.Load(); n > 0 {
		if tc, ok := client.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(int(n))
		}
	}
	p.track(client, server)
	defer p.untrack(client, server)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go func() { // from the client: pauses while stalled
		buf := make([]byte, 32<<10)
		for {
			for p.stalled.Load() {
				time.Sleep(5 * time.Millisecond)
			}
			n, err := client.Read(buf)
			if n > 0 {
				if _, werr := server.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}()
	go pipe(client, server)
	<-done // one direction ended: end both
}

// clientConns returns the connections the proxy accepted from its
// clients that are open.
func (p *tcpProxy) clientConns() []net.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []net.Conn
	for c := range p.conns {
		if c.LocalAddr().String() == p.Addr {
			out = append(out, c)
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// The rig: Postfix, opes-milter behind it, a callout server chosen per case.

// faultRig is Postfix relaying to a sink through opes-milter, whose only
// callout server address is a proxy. The proxy leads to the real
// opes-callout or to a rogue server; the callout chain includes a command
// service that sleeps as long as the slow file says.
type faultRig struct {
	t       *testing.T // the test that owns the daemons; restarts belong to it
	op      *Opes
	pf      *Postfix
	proxy   *tcpProxy
	rogue   *rogue
	metrics string
	slow    string // the file whose content (seconds) slows the callout
	config  string // opes-milter's configuration as started
}

// faultTimeouts are the stage deadlines of the rig: short, so that cases
// that wait them out stay fast.
const (
	faultRcptDeadline = 2 * time.Second
	faultEOMDeadline  = 4 * time.Second
)

func startFaultRig(t *testing.T) *faultRig {
	t.Helper()
	rg := &faultRig{t: t, rogue: startRogue(t), metrics: FreeAddr(t)}
	rg.slow = filepath.Join(t.TempDir(), "slow")
	rg.proxy = startProxy(t, "")
	rg.op = startOpesEdited(t, false, append(slowService(rg.slow),
		calloutAt(rg.proxy.Addr), metricsAt(rg.metrics),
		configEdit{`rcpt = "8s"`, fmt.Sprintf("rcpt = %q", faultRcptDeadline.String())},
		configEdit{`end_of_message = "240s"`, fmt.Sprintf("end_of_message = %q", faultEOMDeadline.String())},
		configEdit{`progress_interval = "5s"`, `progress_interval = "1s"`},
		configEdit{`failure_limit = 5`, `failure_limit = 1000`},
	)...)
	rg.proxy.setTarget(rg.op.CalloutAddr)
	b, err := os.ReadFile(rg.op.Config)
	if err != nil {
		t.Fatal(err)
	}
	rg.config = string(b)
	rg.pf = StartPostfix(t, PostfixOptions{Milter: rg.op.PostfixSocket()})
	return rg
}

// slowService adds a service "slow" to the end of the default chain: a
// command service of opes-callout that sleeps as many seconds as the file
// flag says (not at all when it is empty or missing) and passes the
// message unchanged.
func slowService(flag string) []configEdit {
	script := fmt.Sprintf(`if [ -s %[1]s ]; then sleep "$(cat %[1]s)"; fi; exec cat >/dev/null`, flag)
	return []configEdit{
		{`services = ["recipient-policy", "header-tag", "disclaimer", "attachment-filter"]`,
			`services = ["recipient-policy", "header-tag", "disclaimer", "attachment-filter", "slow"]`},
		{"params = {}\n", "params = {}\n\n[services.slow]\nuri = \"http://opes-milter.example/services/slow\"\n"},
		{"", fmt.Sprintf("\n[callout.services.slow]\nuri = \"http://opes-milter.example/services/slow\"\n"+
			"kind = \"command\"\nargv = [\"/bin/sh\", \"-c\", %q]\nexit_codes = { 0 = \"pass\" }\ntimeout = \"30s\"\n", script)},
	}
}

// setSlow makes the slow service of slowService sleep d (0: not at all).
func setSlow(t testing.TB, flag string, d time.Duration) {
	t.Helper()
	content := ""
	if d > 0 {
		content = fmt.Sprintf("%.2f", d.Seconds())
	}
	if err := os.WriteFile(flag, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// setSlow makes the callout sleep d in every transaction (0: not at all).
func (rg *faultRig) setSlow(t testing.TB, d time.Duration) { setSlow(t, rg.slow, d) }

// send sends n messages at once through Postfix and returns what the
// client saw. during, if set, runs in the test's goroutine while the
// messages are on their way.
func (rg *faultRig) send(t *testing.T, prefix string, n int, during func()) LoadReport {
	t.Helper()
	return rg.load(t, LoadOptions{Prefix: prefix, Sessions: n, Messages: n}, during)
}

// load runs a load through Postfix (o.Addr is filled in), with during in
// the test's goroutine meanwhile.
func (rg *faultRig) load(t *testing.T, o LoadOptions, during func()) LoadReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o.Addr = rg.pf.SMTPAddr
	reports := make(chan LoadReport, 1)
	go func() { reports <- RunLoad(ctx, o) }()
	if during != nil {
		during()
	}
	rep := <-reports
	t.Logf("%s: %v", o.Prefix, rep)
	return rep
}

// policy is the failure policy a check expects.
type policy int

const (
	tempfailPolicy policy = iota
	acceptPolicy
)

// check verifies the outcome of a load under policy: no unknown outcome,
// every accepted message delivered once and nothing else, no message
// half-adapted, refusals 4xx (tempfail) or none at all (accept), and at
// least minFailed messages that met the fault (refused, or delivered
// unadapted under accept). It returns the delivered copies.
func (rg *faultRig) check(t *testing.T, rep LoadReport, prefix string, pol policy, minFailed int) map[string]SinkMessage {
	t.Helper()
	got := rep.Delivered(t, rg.pf.Sink, prefix, 30*time.Second)
	failed := 0
	for _, r := range rep.Results {
		if !r.Refused() {
			continue
		}
		failed++
		if pol == acceptPolicy {
			t.Errorf("%v: refused under the accept policy", r)
		} else if r.Code/100 != 4 {
			t.Errorf("%v: want a 4xx (tempfail) refusal", r)
		}
	}
	for id, m := range got {
		switch a := adaptation(m); {
		case a == "unadapted" && pol == acceptPolicy:
			failed++
		case a == "unadapted":
			t.Errorf("%s delivered unadapted without an accept policy:\n%s", id, m.Raw)
		case a != "adapted":
			t.Errorf("%s: %s:\n%s", id, a, m.Raw)
		}
	}
	if failed < minFailed {
		t.Errorf("only %d message(s) met the fault, want at least %d: %v", failed, minFailed, rep)
	}
	return got
}

// healthy checks that opes-milter still runs and adapts a message through
// the real callout server.
func (rg *faultRig) healthy(t *testing.T, prefix string) {
	t.Helper()
	select {
	case <-rg.op.Milter.Done():
		t.Fatalf("opes-milter exited:\n%s", rg.op.Milter.Output())
	default:
	}
	rg.setSlow(t, 0)
	rg.proxy.setTarget(rg.op.CalloutAddr)
	waitOCPConnections(t, rg.metrics, 0)
	rep := rg.send(t, prefix+"-after", 1, nil)
	if a, _, _ := rep.Counts(); a != 1 {
		t.Fatalf("opes-milter does not serve after the fault: %v\nopes-milter log:\n%s", rep, rg.op.Milter.Output())
	}
	for id, m := range rg.check(t, rep, prefix+"-after", tempfailPolicy, 0) {
		if a := adaptation(m); a != "adapted" {
			t.Errorf("%s after the fault: %s", id, a)
		}
	}
}

// waitOCPConnections waits until opes-milter counts n OCP connections: a
// transaction started on a connection that the server closed a moment ago
// fails, so the cases let the pool notice first.
func waitOCPConnections(t testing.TB, metrics string, n float64) {
	t.Helper()
	if !Eventually(10*time.Second, func() bool { return scrape(t, metrics).Sum("opes_milter_ocp_connections") == n }) {
		t.Fatalf("opes-milter counts %v OCP connections, want %v", scrape(t, metrics).Sum("opes_milter_ocp_connections"), n)
	}
}

// waitInFlight waits until opes-milter has at least n OCP transactions in
// flight.
func waitInFlight(t testing.TB, metrics string, n float64) bool {
	t.Helper()
	return Eventually(20*time.Second, func() bool {
		return scrape(t, metrics).Sum("opes_milter_ocp_transactions_in_flight") >= n
	})
}

// setPolicy rewrites the chain's on_failure table and reloads opes-milter
// with SIGHUP.
func (rg *faultRig) setPolicy(t *testing.T, action string) {
	t.Helper()
	rg.setActions(t, map[string]string{"connect": action, "timeout": action, "protocol": action, "server": action})
}

// setActions sets the chain's failure action of each class named in
// actions (the others stay "tempfail") and reloads opes-milter.
func (rg *faultRig) setActions(t *testing.T, actions map[string]string) {
	t.Helper()
	cfg := rg.config
	for _, class := range []string{"connect", "timeout", "protocol", "server"} {
		if action := actions[class]; action != "" {
			cfg = applyEdits(t, cfg, []configEdit{{class + ` = "tempfail"`, class + ` = "` + action + `"`}})
		}
	}
	if err := os.WriteFile(rg.op.Config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	before := strings.Count(rg.op.Milter.Output(), "configuration reloaded")
	if err := syscall.Kill(rg.op.Milter.Pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !Eventually(10*time.Second, func() bool {
		return strings.Count(rg.op.Milter.Output(), "configuration reloaded") > before
	}) {
		t.Fatalf("opes-milter did not reload:\n%s", rg.op.Milter.Output())
	}
}

// restartMilter stops opes-milter (SIGTERM, or SIGKILL when crash) and
// starts it again on the same socket with the configuration file as it is.
func restartMilter(t *testing.T, op *Opes, crash bool) {
	t.Helper()
	if crash {
		_ = syscall.Kill(op.Milter.Pid(), syscall.SIGKILL)
		<-op.Milter.Done()
	}
	_ = op.Milter.Stop()
	milterBin, _ := BuildBinaries(t)
	op.Milter = StartProcess(t, "opes-milter", []string{milterBin, "run", "-config", op.Config},
		func() bool { return Listening(op.MilterAddr) })
}

// ---------------------------------------------------------------------------
// The tests.

// TestFaults runs each callout failure under the default tempfail policy,
// then the ones that let mail through under an accept policy (loaded with
// SIGHUP), and checks every message's fate.
func TestFaults(t *testing.T) {
	rg := startFaultRig(t)
	const n = 4 // messages per case, sent at once
	type faultCase struct {
		name    string
		n       int
		arrange func(t *testing.T) (during func()) // sets up the fault
		cleanup func(t *testing.T)
	}
	rogueScript := func(script func(*rogueConn)) func(t *testing.T) func() {
		return func(t *testing.T) func() {
			rg.rogue.setScript(script)
			rg.proxy.setTarget(rg.rogue.Addr)
			waitOCPConnections(t, rg.metrics, 0)
			return nil
		}
	}
	cases := []faultCase{
		{name: "callout server down", n: n, arrange: func(t *testing.T) func() {
			rg.proxy.down()
			waitOCPConnections(t, rg.metrics, 0)
			return nil
		}, cleanup: func(t *testing.T) { rg.proxy.up(t) }},
		{name: "killed before CS", n: n, arrange: rogueScript(func(c *rogueConn) {})},
		{name: "killed mid-negotiation", n: n, arrange: rogueScript(func(c *rogueConn) {
			if c.handshake() != nil {
				return
			}
			for {
				m, err := c.dec.Decode()
				if err != nil || m.Name == ocp.MsgSGC || m.Name == ocp.MsgNO {
					return
				}
			}
		})},
		{name: "killed mid-body", n: n, arrange: rogueScript(serveWith(func(c *rogueConn, m *ocp.Message) (bool, error) {
			if dumPart(m).Data() {
				return true, io.EOF
			}
			return false, nil
		}))},
		{name: "never answers", n: n, arrange: rogueScript(serveWith(func(c *rogueConn, m *ocp.Message) (bool, error) {
			return m.Name != ocp.MsgNO, nil
		}))},
		{name: "opes-callout killed mid-transaction", n: n, arrange: func(t *testing.T) func() {
			rg.setSlow(t, 10*time.Second)
			return func() {
				if !waitInFlight(t, rg.metrics, n) {
					t.Errorf("the transactions never got in flight")
				}
				_ = syscall.Kill(rg.op.Callout.Pid(), syscall.SIGKILL)
			}
		}, cleanup: func(*testing.T) {
			rg.setSlow(t, 0)
			rg.op.StartCallout(rg.t, "") // outlives the case
		}},
		{name: "slower than the end-of-message deadline", n: n, arrange: func(t *testing.T) func() {
			rg.setSlow(t, faultEOMDeadline+3*time.Second)
			return nil
		}},
		{name: "OCP connections reset during 50 transactions", n: 50, arrange: func(t *testing.T) func() {
			rg.setSlow(t, 2*time.Second)
			return func() {
				// Past their RCPT reply, at end of message: the slow
				// service runs for them (a transaction reset before its
				// RCPT reply is retried, rightly, and meets no fault).
				if !waitInFlight(t, rg.metrics, 40) || !Eventually(20*time.Second, func() bool { return children(rg.op.Callout.Pid()) >= 40 }) {
					t.Errorf("50 transactions never got to end of message")
				}
				if cut := rg.proxy.reset(); cut == 0 {
					t.Errorf("no OCP connection to reset")
				}
			}
		}},
	}
	run := func(t *testing.T, pol policy, c faultCase, prefix string) {
		during := c.arrange(t)
		if c.cleanup != nil {
			defer c.cleanup(t)
		}
		start := time.Now()
		rep := rg.send(t, prefix, c.n, during)
		// Every message meets the fault, except in the reset case:
		// transactions that had not started, and those whose connection
		// ended before the callout server answered anything for them
		// (the bridge retries those once on a new connection), may pass
		// adapted. At least one in flight at end of message meets it.
		minFailed := c.n
		if c.n == 50 {
			minFailed = 1
		}
		rg.check(t, rep, prefix, pol, minFailed)
		t.Logf("%s: %v for %d messages", prefix, time.Since(start).Round(time.Millisecond), c.n)
	}
	for i, c := range cases {
		t.Run("tempfail/"+c.name, func(t *testing.T) {
			prefix := fmt.Sprintf("tf%d", i)
			run(t, tempfailPolicy, c, prefix)
			rg.healthy(t, prefix)
		})
	}
	rg.setPolicy(t, "accept")
	for i, c := range cases {
		switch c.name {
		case "callout server down", "killed mid-body", "never answers", "OCP connections reset during 50 transactions":
		default:
			continue
		}
		t.Run("accept/"+c.name, func(t *testing.T) {
			prefix := fmt.Sprintf("ac%d", i)
			run(t, acceptPolicy, c, prefix)
			rg.healthy(t, prefix)
		})
	}
	// A reset is the server's failure: with protocol = "reject", a reset
	// classed as a protocol failure would refuse a legitimate message with
	// 5xx. Here the transactions wait for answers, so the reset is seen
	// on reads; TestResetWhileWriting makes opes-milter see it on a write.
	rg.setActions(t, map[string]string{"protocol": "reject"})
	for i, c := range cases {
		if c.name != "OCP connections reset during 50 transactions" {
			continue
		}
		t.Run("protocol-reject/"+c.name, func(t *testing.T) {
			prefix := fmt.Sprintf("pr%d", i)
			run(t, tempfailPolicy, c, prefix)
			rg.healthy(t, prefix)
		})
	}
	rg.setPolicy(t, "tempfail")
	t.Run("opes-milter restarted while Postfix is sending", func(t *testing.T) {
		rg.restartUnderLoad(t)
		rg.healthy(t, "rs")
	})
	t.Run("one of two servers down: failover, breaker opens and revives", func(t *testing.T) {
		rg.failover(t)
		rg.healthy(t, "fo")
	})
}

// TestFaults continued: opes-milter restarted under load, and failover with
// the circuit breaker. They share TestFaults' rig through these helpers.

// restartUnderLoad restarts opes-milter twice, gracefully and by a crash,
// while Postfix is sending, and checks every message's fate.
func (rg *faultRig) restartUnderLoad(t *testing.T) {
	pids := []int{rg.op.Milter.Pid()}
	rep := rg.load(t, LoadOptions{Prefix: "rs", Sessions: 3, Messages: 60, Rate: 20}, func() {
		time.Sleep(800 * time.Millisecond)
		restartMilter(rg.t, rg.op, false)
		pids = append(pids, rg.op.Milter.Pid())
		time.Sleep(time.Second)
		restartMilter(rg.t, rg.op, true)
		pids = append(pids, rg.op.Milter.Pid())
	})
	if pids[0] == pids[1] || pids[1] == pids[2] {
		t.Fatalf("opes-milter was not restarted: pids %v", pids)
	}
	rg.check(t, rep, "rs", tempfailPolicy, 0)
	a, r, _ := rep.Counts()
	t.Logf("across a graceful restart and a crash: %d accepted and delivered adapted, %d refused with 4xx", a, r)
}

// failover points opes-milter at two servers, the first down: mail flows
// through the second, the first one's breaker opens after failure_limit
// failures, and when the first comes back the breaker closes after the
// revival delay and the first takes the traffic again.
func (rg *faultRig) failover(t *testing.T) {
	const revival = 2 * time.Second
	first := rg.proxy
	first.down()
	first.setTarget(rg.op.CalloutAddr)
	cfg := applyEdits(t, rg.config, []configEdit{
		calloutAt(first.Addr, rg.op.CalloutAddr),
		{`failure_limit = 1000`, `failure_limit = 2`},
		{`revival_delay = "1s"`, fmt.Sprintf("revival_delay = %q", revival.String())},
	})
	if err := os.WriteFile(rg.op.Config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	restartMilter(rg.t, rg.op, false)
	defer func() {
		if err := os.WriteFile(rg.op.Config, []byte(rg.config), 0o644); err != nil {
			t.Fatal(err)
		}
		restartMilter(rg.t, rg.op, false)
	}()
	open := func() float64 {
		return scrape(t, rg.metrics).Sum("opes_milter_circuit_breaker_open", `server="`+first.Addr+`"`)
	}

	rep := rg.load(t, LoadOptions{Prefix: "fo", Sessions: 1, Messages: 4}, nil)
	if a, _, _ := rep.Counts(); a != 4 {
		t.Errorf("with the first server down: %v", rep)
	}
	rg.check(t, rep, "fo", tempfailPolicy, 0)
	m := scrape(t, rg.metrics)
	if open() != 1 || m.Sum("opes_milter_circuit_breaker_trips_total", `server="`+first.Addr+`"`) < 1 {
		t.Errorf("the first server's breaker is not open: open %v, trips %v", open(),
			m.Sum("opes_milter_circuit_breaker_trips_total", `server="`+first.Addr+`"`))
	}

	first.up(t)
	reached := first.accepted.Load()
	var reps []LoadReport
	deadline := time.Now().Add(revival + 8*time.Second)
	for n := 0; first.accepted.Load() == reached; n++ {
		if time.Now().After(deadline) {
			t.Fatalf("the first server got no connection within %v of its return", revival+8*time.Second)
		}
		reps = append(reps, rg.load(t, LoadOptions{Prefix: fmt.Sprintf("fr%d", n), Sessions: 1, Messages: 1}, nil))
		time.Sleep(200 * time.Millisecond)
	}
	for n, rep := range reps {
		if a, _, _ := rep.Counts(); a != 1 {
			t.Errorf("while the first server revives: %v", rep)
		}
		rg.check(t, rep, fmt.Sprintf("fr%d", n), tempfailPolicy, 0)
	}
	if open() != 0 {
		t.Errorf("the breaker of the revived server is still open")
	}
	rep = rg.load(t, LoadOptions{Prefix: "fv", Sessions: 1, Messages: 2}, nil)
	rg.check(t, rep, "fv", tempfailPolicy, 0)
	if a, _, _ := rep.Counts(); a != 2 {
		t.Errorf("after the revival: %v", rep)
	}
}

// children returns how many processes have pid as their parent (the slow
// service's commands under opes-callout).
func children(pid int) int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	n := 0
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, not ")".
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			n++
		}
	}
	return n
}
