package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"

	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// teResults returns the result codes of the processor's TEs, by xid order.
func teResults(c *callout) []ocp.Result {
	var out []ocp.Result
	for _, m := range c.Messages() {
		if m.Name != ocp.MsgTE {
			continue
		}
		res := ocp.Result{Code: 200}
		if len(m.Anon) > 1 {
			res, _ = ocp.ParseResult(m.Anon[1])
		}
		out = append(out, res)
	}
	return out
}

func TestAbortMidMessageEndsTheOCPTransaction(t *testing.T) {
	co := startCallout(t, standardScript())
	m := startMilter(t, testPolicy(co.Addr, skeletonAdaptive, skeletonInformative))
	s := m.session(t)
	if _, err := s.Mail("a@example.org", ""); err != nil {
		t.Fatal(err)
	}
	if act, err := s.Rcpt("b@example.com", ""); err != nil || act.Type != ActionContinue {
		t.Fatalf("rcpt: %v %v", act, err)
	}
	var h textproto.Header
	h.Add("Subject", "x")
	if _, err := s.Header(h); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BodyChunk([]byte("partial\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.Abort(nil); err != nil {
		t.Fatal(err)
	}
	// RSET then a second HELO and a complete message on the same connection.
	if _, err := s.Helo("again.example"); err != nil {
		t.Fatal(err)
	}
	_, _, final := sendMessage(t, s, "a@example.org", []string{"b@example.com"}, "full\r\n")
	wantFinal(t, final, ActionAccept)
	ends := co.WaitEnds(t, 2)
	var te *ocp.TxError
	if len(ends) != 2 || !errors.As(ends[0], &te) || te.Xid != 1 || te.Result.Code != 400 {
		t.Fatalf("first transaction ended with %v, want the processor's TE 1 {400}", ends)
	}
	if res := teResults(co); len(res) != 1 || res[0].Code != 200 {
		t.Fatalf("TE results = %+v", res)
	}
	// The second transaction's HELO part carries the new name.
	var helos []string
	for _, msg := range co.Messages() {
		if d, err := ocpsmtp.ParseData(msg); err == nil && msg.Name == ocp.MsgDUM && d.Part == ocpsmtp.PartHELO {
			helos = append(helos, string(msg.Payload))
		}
	}
	if len(helos) != 2 || helos[1] != "again.example" {
		t.Fatalf("HELO parts = %q", helos)
	}
}

func TestRecipientOnAnotherRoute(t *testing.T) {
	co := startCallout(t, standardScript())
	p := testPolicy(co.Addr, skeletonAdaptive, skeletonInformative)
	first := p.Routes[0]
	second := &mapping.Route{Name: "other", Chain: first.Chain, Profile: first.Profile,
		Adaptive: first.Adaptive, Informative: first.Informative}
	p.Routes = append(p.Routes, second)
	p.Select = func(f mapping.Facts) *mapping.Route {
		if f.RcptDomain == "other.example" {
			return second
		}
		return first
	}
	m := startMilter(t, p)
	s := m.session(t)
	acts, _, final := sendMessage(t, s, "a@example.org", []string{"x@example.com", "y@other.example"}, "b\r\n")
	if acts[0].Type != ActionContinue {
		t.Fatalf("first = %+v", acts[0])
	}
	if acts[1].SMTPCode != 452 || !strings.Contains(acts[1].SMTPReply, "4.5.3") {
		t.Fatalf("second = %+v", acts[1])
	}
	wantFinal(t, final, ActionAccept)
}

func TestNonSMTPPathDeletesInsteadOfRefusing(t *testing.T) {
	co := startCallout(t, standardScript())
	p := testPolicy(co.Addr, skeletonAdaptive, skeletonInformative)
	p.NonSMTP = func(d string) bool { return d == "LOCAL" }
	m := startMilter(t, p)
	macros := NewMacroBag()
	macros.Set("{daemon_name}", "LOCAL")
	cl := m
	s, err := cl.Session(macros)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Conn("localhost", FamilyInet, 0, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Helo("localhost"); err != nil {
		t.Fatal(err)
	}
	acts, mods, final := sendMessage(t, s, "root@localhost", []string{"blocked@example.com", "ok@example.com"}, "x\r\n")
	if acts[0].Type != ActionContinue {
		t.Fatalf("blocked recipient refused at RCPT on the non-SMTP path: %+v", acts[0])
	}
	wantFinal(t, final, ActionAccept)
	del := findMods(mods, ActionDelRcpt, "")
	if len(del) != 1 || del[0].Rcpt != "<blocked@example.com>" {
		t.Fatalf("deleted = %+v", del)
	}
}

func TestUnreachableServerTempfailsAtRCPT(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	m := startMilter(t, testPolicy(dead, skeletonAdaptive, skeletonInformative))
	s := m.session(t)
	acts, _, final := sendMessage(t, s, "a@example.org", []string{"b@example.com"}, "x\r\n")
	if acts[0].SMTPCode != 451 {
		t.Fatalf("rcpt = %+v", acts[0])
	}
	wantTempfail(t, final)
}

func TestFailoverToTheNextServer(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	co := startCallout(t, standardScript())
	p := testPolicy(dead, skeletonAdaptive, skeletonInformative)
	p.Routes[0].Chain.Server.Addresses = []string{dead, co.Addr}
	p.Routes[0].Chain.Server.FailureLimit = 1
	m := startMilter(t, p)
	s := m.session(t)
	for i := 0; i < 2; i++ {
		acts, _, final := sendMessage(t, s, "a@example.org", []string{"b@example.com"}, "x\r\n")
		if acts[0].Type != ActionContinue {
			t.Fatalf("rcpt = %+v", acts[0])
		}
		wantFinal(t, final, ActionAccept)
	}
}

func TestSkipRuleTracesBypass(t *testing.T) {
	co := startCallout(t, standardScript())
	p := testPolicy(co.Addr, skeletonAdaptive, skeletonInformative)
	p.Skip = func(mapping.Facts) bool { return true }
	m := startMilter(t, p)
	s := m.session(t)
	acts, mods, final := sendMessage(t, s, "a@example.org", []string{"blocked@example.com"}, "x\r\n")
	if acts[0].Type != ActionContinue {
		t.Fatalf("rcpt = %+v", acts[0])
	}
	wantFinal(t, final, ActionAccept)
	sys := findMods(mods, ActionInsertHeader, "OPES-System")
	if len(sys) != 1 || !strings.Contains(sys[0].HeaderValue, "status=bypassed") {
		t.Fatalf("mods = %+v", mods)
	}
	if n := len(co.Messages()); n != 0 {
		t.Fatalf("the callout saw %d messages", n)
	}
}

func TestOPESBypassHeader(t *testing.T) {
	co := startCallout(t, standardScript())
	p := testPolicy(co.Addr, skeletonAdaptive, skeletonInformative)
	p.Bypassable = func(string) bool { return true }
	m := startMilter(t, p)
	s := m.session(t)
	if _, err := s.Mail("a@example.org", ""); err != nil {
		t.Fatal(err)
	}
	if act, _ := s.Rcpt("blocked@example.com", ""); act.SMTPCode != 550 {
		t.Fatalf("envelope adaptation must still happen: %+v", act)
	}
	if act, _ := s.Rcpt("b@example.com", ""); act.Type != ActionContinue {
		t.Fatalf("rcpt = %+v", act)
	}
	var h textproto.Header
	h.Add("OPES-Bypass", "*")
	h.Add("Subject", "x")
	if _, err := s.Header(h); err != nil {
		t.Fatal(err)
	}
	mods, final, err := s.BodyReadFrom(strings.NewReader("x\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	wantFinal(t, final, ActionAccept)
	sys := findMods(mods, ActionInsertHeader, "OPES-System")
	if len(sys) != 1 || !strings.Contains(sys[0].HeaderValue, "status=bypassed") {
		t.Fatalf("mods = %+v", mods)
	}
	if tag := findMods(mods, ActionAddHeader, "X-Test"); len(tag) != 0 {
		t.Fatal("content adapted despite the bypass")
	}
	for _, msg := range co.Messages() {
		if d, err := ocpsmtp.ParseData(msg); err == nil && msg.Name == ocp.MsgDUM && d.Part == ocpsmtp.PartRAWDATA {
			t.Fatal("RAWDATA sent despite the bypass")
		}
	}
}

func TestSessionLimit(t *testing.T) {
	co := startCallout(t, standardScript())
	p := testPolicy(co.Addr, skeletonAdaptive, skeletonInformative)
	p.MaxSessions = 1
	m := startMilter(t, p)
	first := m.session(t)
	cl := m
	second, err := cl.Session(NewMacroBag())
	if err != nil {
		t.Fatal(err)
	}
	// CONNECT has no reply (the MTA does not wait for it): the refusal
	// is the answer to the first RCPT.
	if act, err := second.Conn("client.example", FamilyInet, 1, "192.0.2.11"); err != nil || act.Type != ActionContinue {
		t.Fatalf("second session, connect: %+v %v", act, err)
	}
	if _, err := second.Helo("client.example"); err != nil {
		t.Fatal(err)
	}
	if _, err := second.Mail("a@example.org", ""); err != nil {
		t.Fatal(err)
	}
	act, err := second.Rcpt("b@example.com", "")
	if err != nil || act.SMTPCode != 451 || !strings.Contains(act.SMTPReply, "4.3.2") {
		t.Fatalf("second session, RCPT: %+v %v", act, err)
	}
	second.Close()
	// The first session still works, and a new one does once it is gone.
	_, _, final := sendMessage(t, first, "a@example.org", []string{"b@example.com"}, "x\r\n")
	wantFinal(t, final, ActionAccept)
	first.Close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		s, err := cl.Session(NewMacroBag())
		if err != nil {
			t.Fatal(err)
		}
		s.Conn("client.example", FamilyInet, 1, "192.0.2.11")
		s.Helo("client.example")
		s.Mail("a@example.org", "")
		act, err := s.Rcpt("b@example.com", "")
		s.Close()
		if err == nil && act.Type == ActionContinue {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after the load dropped: %+v %v", act, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTransactionLimit(t *testing.T) {
	co := startCallout(t, standardScript())
	p := testPolicy(co.Addr, skeletonAdaptive, skeletonInformative)
	p.MaxTransactions = 1
	m := startMilter(t, p)
	a, b := m.session(t), m.session(t)
	if _, err := a.Mail("a@example.org", ""); err != nil {
		t.Fatal(err)
	}
	if act, _ := a.Rcpt("x@example.com", ""); act.Type != ActionContinue {
		t.Fatalf("first = %+v", act)
	}
	if _, err := b.Mail("a@example.org", ""); err != nil {
		t.Fatal(err)
	}
	if act, _ := b.Rcpt("y@example.com", ""); act.SMTPCode != 451 || !strings.Contains(act.SMTPReply, "4.3.2") {
		t.Fatalf("second = %+v", act)
	}
}

// TestConnectionsBounded opens many sessions at once: no more OCP
// connections than configured are dialled.
func TestConnectionsBounded(t *testing.T) {
	co := startCallout(t, standardScript())
	p := testPolicy(co.Addr, skeletonAdaptive, skeletonInformative)
	p.Routes[0].Chain.Server.Connections = 2
	m := startMilter(t, p)
	const n = 40
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			cl := m
			s, err := cl.Session(NewMacroBag())
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			s.Conn("client.example", FamilyInet, 1, "192.0.2.1")
			s.Helo("client.example")
			s.Mail("a@example.org", "")
			act, err := s.Rcpt("b@example.com", "")
			if err == nil && act.Type != ActionContinue {
				err = fmt.Errorf("rcpt: %+v", act)
			}
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := co.Connections(); got > 2 {
		t.Fatalf("%d OCP connections, want at most 2", got)
	}
}

// TestReloadKeepsSessionsWorking: a session connected before a reload
// sends its next messages on the new configuration (finding F-h9-6).
func TestReloadKeepsSessionsWorking(t *testing.T) {
	co := startCallout(t, standardScript())
	m := startMilter(t, testPolicy(co.Addr, skeletonAdaptive, skeletonInformative))
	s := m.session(t)
	_, _, final := sendMessage(t, s, "a@example.org", []string{"b@example.com"}, "x\r\n")
	wantFinal(t, final, ActionAccept)
	for i := 0; i < 3; i++ {
		p := testPolicy(co.Addr, skeletonAdaptive, skeletonInformative)
		p.SystemURI = fmt.Sprintf("http://opes.example.net/reload%d", i)
		p.SpoolDir = t.TempDir()
		m.br.Reload(p)
		acts, mods, final := sendMessage(t, s, "a@example.org", []string{"b@example.com"}, "x\r\n")
		if acts[0].Type != ActionContinue {
			t.Fatalf("reload %d: rcpt %+v", i, acts[0])
		}
		wantFinal(t, final, ActionAccept)
		sys := findMods(mods, ActionInsertHeader, "OPES-System")
		if len(sys) != 1 || !strings.Contains(sys[0].HeaderValue, fmt.Sprintf("reload%d", i)) {
			t.Fatalf("reload %d: message not on the new configuration: %+v", i, sys)
		}
	}
}

// TestIdleConnectionsClosed: a connection unused for longer than the
// server set's idle timeout is replaced before the next transaction, so
// no transaction starts on a connection the callout server is closing.
func TestIdleConnectionsClosed(t *testing.T) {
	co := startCallout(t, standardScript())
	p := testPolicy(co.Addr, skeletonAdaptive, skeletonInformative)
	p.Routes[0].Chain.Server.IdleTimeout = 50 * time.Millisecond
	m := startMilter(t, p)
	s := m.session(t)
	for i := 0; i < 2; i++ {
		_, _, final := sendMessage(t, s, "a@example.org", []string{"b@example.com"}, "x\r\n")
		wantFinal(t, final, ActionAccept)
		time.Sleep(120 * time.Millisecond)
	}
	if got := co.Connections(); got != 2 {
		t.Fatalf("%d OCP connections, want 2 (the idle one replaced)", got)
	}
}

// TestRetryWhenTheConnectionDiesFirst: a callout connection that ends
// before the server answered anything for the transaction (a server
// restarting) costs a retry on another connection, not a tempfail.
func TestRetryWhenTheConnectionDiesFirst(t *testing.T) {
	good := startCallout(t, standardScript())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var dying *ocp.Server
	dying = &ocp.Server{
		Handler: ocp.HandlerFunc(func(ctx context.Context, tx *ocp.ServerTx) {
			go dying.Close() // the whole server goes away mid-transaction
			<-ctx.Done()
		}),
		Negotiate: func(_ *ocp.Group, offer []ocp.Feature) (ocp.Feature, bool) { return offer[0], true },
		Logger:    testLogger(t),
	}
	go dying.Serve(ln)
	t.Cleanup(func() { dying.Close() })
	p := testPolicy(ln.Addr().String(), skeletonAdaptive, skeletonInformative)
	p.Routes[0].Chain.Server.Addresses = []string{ln.Addr().String(), good.Addr}
	p.Routes[0].Chain.Server.FailureLimit = 100
	m := startMilter(t, p)
	s := m.session(t)
	acts, mods, final := sendMessage(t, s, "a@example.org", []string{"b@example.com"}, "x\r\n")
	if acts[0].Type != ActionContinue {
		t.Fatalf("rcpt = %+v", acts[0])
	}
	wantFinal(t, final, ActionAccept)
	if tag := findMods(mods, ActionAddHeader, "X-Test"); len(tag) != 1 {
		t.Fatalf("not adapted by the second server: %+v", mods)
	}
}

// TestConnectDeadline: a callout server that accepts TCP but never speaks
// is given up after the connect deadline, well inside the RCPT deadline.
func TestConnectDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	p := testPolicy(ln.Addr().String(), skeletonAdaptive, skeletonInformative)
	p.Timeouts.Connect = 200 * time.Millisecond
	p.Timeouts.Rcpt = 5 * time.Second
	p.Routes[0].Chain.Server.HandshakeTimeout = 10 * time.Second
	m := startMilter(t, p)
	s := m.session(t)
	if _, err := s.Mail("a@example.org", ""); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	act, err := s.Rcpt("b@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	wantTempfail(t, act)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("RCPT answered after %v: the connect deadline was not applied", d)
	}
}
