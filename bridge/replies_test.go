package bridge_test

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"

	"github.com/opes-milter/opes-milter/bridge"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// scanOnlyAdaptive and scanOnlyInformative are a route that decides
// nothing before the data: what a virus or spam scan alone offers.
var (
	scanOnlyAdaptive    = []ocpsmtp.Part{ocpsmtp.PartRAWDATA}
	scanOnlyInformative = []ocpsmtp.Part{ocpsmtp.PartIP, ocpsmtp.PartHELO, ocpsmtp.PartMAIL, ocpsmtp.PartRCPT}
)

// TestRepliesFollowThePolicy: the MTA waits at RCPT only when the policy
// may refuse a recipient there, or when the session limit is reached.
func TestRepliesFollowThePolicy(t *testing.T) {
	const addr = "127.0.0.1:1"
	for _, tc := range []struct {
		name        string
		adaptive    []ocpsmtp.Part
		informative []ocpsmtp.Part
		rcptDomains []string
		want        bridge.Events
	}{
		{"adaptive RCPT", skeletonAdaptive, skeletonInformative, nil, bridge.EventRcpt | bridge.EventEndOfMessage},
		{"adaptive MAIL", []ocpsmtp.Part{ocpsmtp.PartMAIL, ocpsmtp.PartRAWDATA}, nil, nil, bridge.EventRcpt | bridge.EventEndOfMessage},
		{"adaptive IP", []ocpsmtp.Part{ocpsmtp.PartIP, ocpsmtp.PartBODY}, nil, nil, bridge.EventRcpt | bridge.EventEndOfMessage},
		{"scan only", scanOnlyAdaptive, scanOnlyInformative, nil, bridge.EventEndOfMessage},
		{"scan only, route by recipient domain", scanOnlyAdaptive, scanOnlyInformative, []string{"example.com"}, bridge.EventRcpt | bridge.EventEndOfMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPolicy(addr, tc.adaptive, tc.informative)
			p.Routes[0].Match.RcptDomains = tc.rcptDomains
			br := bridge.New(p, nil)
			defer br.Close()
			if got := br.Replies(); got != tc.want {
				t.Fatalf("Replies() = %b, want %b", got, tc.want)
			}
			// A reload brings the new policy's needs.
			br.Reload(testPolicy(addr, skeletonAdaptive, skeletonInformative))
			if got := br.Replies(); got != bridge.EventRcpt|bridge.EventEndOfMessage {
				t.Fatalf("after reload: Replies() = %b", got)
			}
		})
	}
}

// TestScanOnlyRouteRefusesAtEndOfMessage: without RCPT replies, a callout
// server that cannot be reached fails the message at end of data, with the
// failure policy's reply, and no recipient is refused on its own.
func TestScanOnlyRouteRefusesAtEndOfMessage(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	m := startMilter(t, testPolicy(dead, scanOnlyAdaptive, scanOnlyInformative))
	s := m.session(t)
	acts, _, final := sendMessage(t, s, "a@example.org", []string{"b@example.com", "c@example.com"}, "x\r\n")
	for i, a := range acts {
		if a.Type != ActionContinue {
			t.Fatalf("rcpt %d = %+v", i, a)
		}
	}
	wantTempfail(t, final)
}

// TestScanOnlySessionLimit: a session negotiated while the bridge is at
// max_sessions keeps its RCPT replies, so it is refused before its data.
func TestScanOnlySessionLimit(t *testing.T) {
	co := startCallout(t, standardScript())
	p := testPolicy(co.Addr, scanOnlyAdaptive, scanOnlyInformative)
	p.MaxSessions = 1
	m := startMilter(t, p)
	first := m.session(t)
	second, err := m.Session(NewMacroBag())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.Conn("client.example", FamilyInet, 1, "192.0.2.11")
	second.Helo("client.example")
	second.Mail("a@example.org", "")
	if act, err := second.Rcpt("b@example.com", ""); err != nil || act.SMTPCode != 451 || !strings.Contains(act.SMTPReply, "4.3.2") {
		t.Fatalf("second session, RCPT: %+v %v", act, err)
	}
	_, _, final := sendMessage(t, first, "a@example.org", []string{"b@example.com"}, "x\r\n")
	wantFinal(t, final, ActionAccept)
}

// TestReloadBetweenNegotiationAndSession: a session negotiated without RCPT
// replies that starts under a policy refusing recipients at RCPT cannot
// refuse one recipient alone: the message is tempfailed at end of data,
// never rejected for every recipient.
func TestReloadBetweenNegotiationAndSession(t *testing.T) {
	co := startCallout(t, standardScript())
	m := startMilter(t, testPolicy(co.Addr, scanOnlyAdaptive, scanOnlyInformative))
	s, err := m.Session(NewMacroBag()) // negotiated now: no RCPT replies
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := testPolicy(co.Addr, skeletonAdaptive, skeletonInformative)
	p.SpoolDir = t.TempDir()
	m.br.Reload(p)
	s.Conn("client.example", FamilyInet, 1, "192.0.2.11") // the session starts under p
	s.Helo("client.example")
	acts, _, final := sendMessage(t, s, "a@example.org", []string{"ok@example.com", "blocked@example.com"}, "x\r\n")
	for i, a := range acts {
		if a.Type != ActionContinue {
			t.Fatalf("rcpt %d = %+v", i, a)
		}
	}
	if final.SMTPCode != 451 || !strings.Contains(final.SMTPReply, "4.3.0") {
		t.Fatalf("end of message = %+v, want 451 4.3.0", final)
	}
	// A new session negotiates RCPT replies and refuses the recipient alone.
	s2 := m.session(t)
	acts, _, final = sendMessage(t, s2, "a@example.org", []string{"ok@example.com", "blocked@example.com"}, "x\r\n")
	if acts[0].Type != ActionContinue || acts[1].SMTPCode != 550 {
		t.Fatalf("new session: rcpts %+v", acts)
	}
	wantFinal(t, final, ActionAccept)
}

// readRecorder forwards TCP connections to target and records what each
// read from the processor's side returned.
type readRecorder struct {
	ln     net.Listener
	mu     sync.Mutex
	chunks []string
}

func startReadRecorder(t *testing.T, target string) *readRecorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &readRecorder{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(c, up); c.Close() }()
			go func() {
				defer up.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						r.mu.Lock()
						r.chunks = append(r.chunks, string(buf[:n]))
						r.mu.Unlock()
						up.Write(buf[:n])
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return r
}

// seen returns the index of the first read containing s, -1 if none.
func (r *readRecorder) seen(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, c := range r.chunks {
		if strings.Contains(c, s) {
			return i
		}
	}
	return -1
}

// TestInformativeRecipientsLeaveWithTheData: a route that decides nothing
// at RCPT starts its OCP transaction with the message data: the callout
// server reads nothing of it while the MTA sends the envelope; then, after
// the TS, the envelope parts, the data and the AME in one read.
func TestInformativeRecipientsLeaveWithTheData(t *testing.T) {
	co := startCallout(t, standardScript())
	rec := startReadRecorder(t, co.Addr)
	m := startMilter(t, testPolicy(rec.ln.Addr().String(), scanOnlyAdaptive, scanOnlyInformative))
	s := m.session(t)
	if _, err := s.Mail("a@example.org", ""); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"first@example.com", "second@example.com", "third@example.com"} {
		if act, err := s.Rcpt(r, ""); err != nil || act.Type != ActionContinue {
			t.Fatalf("rcpt %s: %+v %v", r, act, err)
		}
	}
	time.Sleep(100 * time.Millisecond) // a part sent at once would be read by now
	if i := rec.seen("first@example.com"); i >= 0 {
		t.Fatalf("the first RCPT went before the data (read %d)", i)
	}
	if i := rec.seen("a@example.org"); i >= 0 {
		t.Fatalf("MAIL went before the data (read %d)", i)
	}
	var h textproto.Header
	h.Add("Subject", "test")
	if act, err := s.Header(h); err != nil || act.Type != ActionContinue {
		t.Fatalf("header: %v %v", act, err)
	}
	_, final, err := s.BodyReadFrom(strings.NewReader("body\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	wantFinal(t, final, ActionAccept)
	mail, first, third, ame := rec.seen("a@example.org"), rec.seen("first@example.com"), rec.seen("third@example.com"), rec.seen("AME ")
	if mail < 0 || mail != first || first != third || third != ame {
		t.Fatalf("MAIL in read %d, first RCPT in %d, third in %d, AME in %d: want one read", mail, first, third, ame)
	}
}

// TestStartAtEndOfMessageWithoutEndOfHeader: when the MTA sends no end of
// header, the transaction of a route that decides nothing at RCPT starts
// at end of message, and the message is adapted all the same.
func TestStartAtEndOfMessageWithoutEndOfHeader(t *testing.T) {
	co := startCallout(t, standardScript())
	m := startMilter(t, testPolicy(co.Addr, scanOnlyAdaptive, scanOnlyInformative))
	s := m.session(t)
	if _, err := s.Mail("a@example.org", ""); err != nil {
		t.Fatal(err)
	}
	if act, err := s.Rcpt("b@example.com", ""); err != nil || act.Type != ActionContinue {
		t.Fatalf("rcpt: %+v %v", act, err)
	}
	if act, err := s.DataStart(); err != nil || act.Type != ActionContinue {
		t.Fatalf("data: %+v %v", act, err)
	}
	if act, err := s.HeaderField("Subject", " test", nil); err != nil || act.Type != ActionContinue {
		t.Fatalf("header: %+v %v", act, err)
	}
	mods, final, err := s.End()
	if err != nil {
		t.Fatal(err)
	}
	wantFinal(t, final, ActionAccept)
	if tag := findMods(mods, ActionAddHeader, "X-Test"); len(tag) != 1 {
		t.Fatalf("not adapted: %+v", mods)
	}
}
