package bridge_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opes-milter/opes-milter/bridge"
	"github.com/opes-milter/opes-milter/internal/ocptest"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// breakerOpen returns the circuit_breaker_open gauge of server.
func breakerOpen(t *testing.T, reg *prometheus.Registry, server string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "opes_milter_circuit_breaker_open" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "server" && l.GetValue() == server {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}

// hangingScript never answers a RCPT (a server that stopped, SIGSTOP).
func hangingScript() func(ctx context.Context, tx *ocp.ServerTx, m *ocp.Message) error {
	return scriptServer(ocptest.Answers{RCPT: func(string) string { return "hang" }})
}

// TestTimeoutFailsOverWithinTheRcptDeadline: with the first server of a
// failover set not answering, the first RCPT is retried on the second
// within the RCPT deadline and the message is adapted there; the timeout
// counts toward the first server's breaker, so once it is open the next
// transactions go straight to the second.
func TestTimeoutFailsOverWithinTheRcptDeadline(t *testing.T) {
	hung := startCallout(t, hangingScript())
	good := startCallout(t, standardScript())
	p := testPolicy(hung.Addr, skeletonAdaptive, skeletonInformative)
	p.Routes[0].Chain.Server.Addresses = []string{hung.Addr, good.Addr}
	p.Routes[0].Chain.Server.FailureLimit = 2
	p.Timeouts.Rcpt = 2 * time.Second
	reg := prometheus.NewRegistry()
	m := startMilter(t, p, bridge.WithMetrics(bridge.NewMetrics(reg)))
	for i := range 4 {
		s := m.session(t)
		start := time.Now()
		acts, mods, final := sendMessage(t, s, "a@example.org", []string{"b@example.com"}, "x\r\n")
		took := time.Since(start)
		if acts[0].Type != ActionContinue {
			t.Fatalf("message %d: rcpt = %+v", i, acts[0])
		}
		wantFinal(t, final, ActionAccept)
		if tag := findMods(mods, ActionAddHeader, "X-Test"); len(tag) != 1 {
			t.Fatalf("message %d not adapted by the second server: %+v", i, mods)
		}
		if took > p.Timeouts.Rcpt+500*time.Millisecond {
			t.Errorf("message %d took %v, more than the RCPT deadline", i, took)
		}
		if i >= 2 && took > 500*time.Millisecond {
			t.Errorf("message %d took %v with the first server's breaker open", i, took)
		}
		t.Logf("message %d: %v", i, took.Round(time.Millisecond))
	}
	if open := breakerOpen(t, reg, hung.Addr); open != 1 {
		t.Errorf("the hung server's breaker: open = %v, want 1", open)
	}
}

// TestBreakerProbeRevives: a server whose breaker opened is probed (an OCP
// handshake, backing off from 100 ms): once it is back, the breaker closes
// within about a second with no transaction needed, the gauge says so, and
// the next message is adapted there.
func TestBreakerProbeRevives(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := testPolicy(addr, skeletonAdaptive, skeletonInformative)
	p.Routes[0].Chain.Server.FailureLimit = 1
	p.Routes[0].Chain.Server.RevivalDelay = time.Second // probes at most 1 s apart
	reg := prometheus.NewRegistry()
	m := startMilter(t, p, bridge.WithMetrics(bridge.NewMetrics(reg)))
	s := m.session(t)
	_, _, final := sendMessage(t, s, "a@example.org", []string{"b@example.com"}, "x\r\n")
	wantTempfail(t, final)
	if open := breakerOpen(t, reg, addr); open != 1 {
		t.Fatalf("breaker open = %v after the failure, want 1", open)
	}
	time.Sleep(2 * time.Second) // the probes back off meanwhile
	startCalloutAt(t, addr, standardScript())
	back := time.Now()
	for breakerOpen(t, reg, addr) != 0 {
		if time.Since(back) > 2*time.Second {
			t.Fatalf("the breaker is still open %v after the server came back", time.Since(back))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("breaker closed %v after the server came back", time.Since(back).Round(time.Millisecond))
	if d := time.Since(back); d > 1500*time.Millisecond {
		t.Errorf("breaker closed %v after the server came back, want about a second", d)
	}
	s = m.session(t)
	_, mods, final := sendMessage(t, s, "a@example.org", []string{"b@example.com"}, "x\r\n")
	wantFinal(t, final, ActionAccept)
	if tag := findMods(mods, ActionAddHeader, "X-Test"); len(tag) != 1 {
		t.Fatalf("not adapted after the revival: %+v", mods)
	}
}

// TestDrainingServerIsRetriedElsewhere: a server that answers TS with the
// profile's "go away" (TE {400 "draining"}) costs the transaction a retry
// on the next server, not a tempfail, and does not count toward its
// breaker.
func TestDrainingServerIsRetriedElsewhere(t *testing.T) {
	good := startCallout(t, standardScript())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	draining := &ocp.Server{
		Handler:   ocp.HandlerFunc(func(ctx context.Context, tx *ocp.ServerTx) { tx.End(ctx, ocpsmtp.Draining) }),
		Negotiate: func(_ *ocp.Group, offer []ocp.Feature) (ocp.Feature, bool) { return offer[0], true },
		Logger:    testLogger(t),
	}
	go draining.Serve(ln)
	t.Cleanup(func() { draining.Close() })
	p := testPolicy(ln.Addr().String(), skeletonAdaptive, skeletonInformative)
	p.Routes[0].Chain.Server.Addresses = []string{ln.Addr().String(), good.Addr}
	p.Routes[0].Chain.Server.FailureLimit = 1
	reg := prometheus.NewRegistry()
	m := startMilter(t, p, bridge.WithMetrics(bridge.NewMetrics(reg)))
	for i := range 3 {
		s := m.session(t)
		acts, mods, final := sendMessage(t, s, "a@example.org", []string{"b@example.com"}, "x\r\n")
		if acts[0].Type != ActionContinue {
			t.Fatalf("message %d: rcpt = %+v", i, acts[0])
		}
		wantFinal(t, final, ActionAccept)
		if tag := findMods(mods, ActionAddHeader, "X-Test"); len(tag) != 1 {
			t.Fatalf("message %d not adapted by the second server: %+v", i, mods)
		}
	}
	if open := breakerOpen(t, reg, ln.Addr().String()); open != 0 {
		t.Errorf("a draining server's breaker opened")
	}
	// Every series exists at 0 from the start: none may have counted.
	if got := failureClasses(t, reg); got != "" {
		t.Errorf("failures counted: %q", got)
	}
}

// startCalloutAt serves script on addr (a server coming back on its port).
func startCalloutAt(t *testing.T, addr string, script ocptest.Script) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	serveScript(t, ln, script)
}

// serveScript serves script on ln until the test ends.
func serveScript(t *testing.T, ln net.Listener, script ocptest.Script) {
	srv := &ocp.Server{
		Handler: ocp.HandlerFunc(func(ctx context.Context, tx *ocp.ServerTx) {
			for {
				m, err := tx.Recv(ctx)
				if err != nil {
					return
				}
				if err := script(ctx, tx, m); err != nil {
					tx.End(ctx, ocp.Failure(err.Error()))
					return
				}
			}
		}),
		Negotiate: func(_ *ocp.Group, offer []ocp.Feature) (ocp.Feature, bool) { return offer[0], true },
		Logger:    testLogger(t),
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// connTracker is a listener that keeps what it accepted, so that a test
// can cut every connection from the server's side while the listener
// stays open.
type connTracker struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *connTracker) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

// cut closes every connection accepted so far and returns how many.
func (l *connTracker) cut() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	n := len(l.conns)
	l.conns = nil
	return n
}

// TestLostConnectionCountsOnce: a callout server whose connection ends
// with three transactions in flight failed once, not three times. With
// failure_limit 2 its breaker stays closed, and the three messages,
// retried on a new connection to the same server, are adapted there.
func TestLostConnectionCountsOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tracker := &connTracker{Listener: ln}
	var hang atomic.Bool
	var hung atomic.Int32
	hang.Store(true)
	script := scriptServer(ocptest.Answers{
		RCPT: func(string) string {
			if hang.Load() {
				hung.Add(1)
				return "hang"
			}
			return ""
		},
		Raw: func([]byte) ocptest.RawAnswer { return ocptest.RawAnswer{AddHeaders: []string{"X-Test: yes"}} },
	})
	serveScript(t, tracker, script)

	addr := ln.Addr().String()
	p := testPolicy(addr, skeletonAdaptive, skeletonInformative)
	p.Routes[0].Chain.Server.FailureLimit = 2
	p.Timeouts.Rcpt = 20 * time.Second // the cut, not the deadline, ends the first attempts
	reg := prometheus.NewRegistry()
	m := startMilter(t, p, bridge.WithMetrics(bridge.NewMetrics(reg)))

	const n = 3
	sessions := make([]*ClientSession, n)
	replies := make(chan *Action, n)
	for i := range sessions {
		s := m.session(t)
		sessions[i] = s
		if act, err := s.Mail("a@example.org", ""); err != nil || act.Type != ActionContinue {
			t.Fatalf("mail: %v %v", act, err)
		}
		go func() {
			act, err := s.Rcpt("b@example.com", "")
			if err != nil {
				act = &Action{Type: ActionTempFail}
				t.Errorf("rcpt: %v", err)
			}
			replies <- act
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); hung.Load() < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d RCPTs reached the server", hung.Load(), n)
		}
	}
	hang.Store(false)
	if cut := tracker.cut(); cut != 1 {
		t.Fatalf("cut %d connections, want the one (connections = 1)", cut)
	}
	for range n {
		if act := <-replies; act.Type != ActionContinue {
			t.Fatalf("rcpt after the cut: %+v, want continue (retried on a new connection)", act)
		}
	}
	for i, s := range sessions {
		var h textproto.Header
		h.Add("Subject", "test")
		if act, err := s.Header(h); err != nil || act.Type != ActionContinue {
			t.Fatalf("message %d: header: %v %v", i, act, err)
		}
		mods, final, err := s.BodyReadFrom(strings.NewReader("x\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		wantFinal(t, final, ActionAccept)
		if tag := findMods(mods, ActionAddHeader, "X-Test"); len(tag) != 1 {
			t.Fatalf("message %d not adapted after the retry: %+v", i, mods)
		}
	}
	if open := breakerOpen(t, reg, addr); open != 0 {
		t.Errorf("breaker open = %v after one lost connection, want 0 (failure_limit 2)", open)
	}
}
