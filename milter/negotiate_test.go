package milter

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/opes-milter/opes-milter/bridge"
)

// TestPlanConnectReply: CONNECT is always asked for; its reply only when
// the bridge may answer it with something else than continue.
func TestPlanConnectReply(t *testing.T) {
	for _, tc := range []struct {
		replies bridge.Events
		noReply bool
	}{
		{0, false},
		{bridge.EventConnect | bridge.EventRcpt, false},
		{bridge.EventRcpt | bridge.EventEndOfMessage, true},
	} {
		p := newPlan(bridge.Requirements{Connect: true, Rcpt: true, Replies: tc.replies})
		if p.protocol&gomilter.OptNoConnect != 0 {
			t.Errorf("replies %v: CONNECT switched off", tc.replies)
		}
		if got := p.protocol&gomilter.OptNoConnReply != 0; got != tc.noReply {
			t.Errorf("replies %v: no CONNECT reply = %v, want %v", tc.replies, got, tc.noReply)
		}
	}
}

func TestPlan(t *testing.T) {
	p := newPlan(bridge.Requirements{
		Connect: true, Rcpt: true, Body: true,
		Actions: bridge.ActAddHeader | bridge.ActAddRcpt,
		Macros:  map[bridge.Stage][]string{bridge.StageConnect: {"v", "{if_addr}", "j"}, bridge.StageEOM: {"i", "i"}, bridge.Stage(42): {"x"}},
	})
	wantOn := []gomilter.OptProtocol{
		gomilter.OptNoHelo, gomilter.OptNoHeloReply, gomilter.OptNoMailFrom, gomilter.OptNoData,
		gomilter.OptNoHeaders, gomilter.OptNoHeaderReply, gomilter.OptNoEOH, gomilter.OptNoUnknown,
		gomilter.OptSkip, gomilter.OptHeaderLeadingSpace,
	}
	wantOff := []gomilter.OptProtocol{
		gomilter.OptNoConnect, gomilter.OptNoConnReply, gomilter.OptNoRcptTo, gomilter.OptNoRcptReply,
		gomilter.OptNoBody, gomilter.OptNoBodyReply, gomilter.OptRcptRej,
	}
	for _, o := range wantOn {
		if p.protocol&o == 0 {
			t.Errorf("protocol lacks %v", o)
		}
	}
	for _, o := range wantOff {
		if p.protocol&o != 0 {
			t.Errorf("protocol has %v", o)
		}
	}
	wantActs := gomilter.OptAddHeader | gomilter.OptAddRcpt | gomilter.OptAddRcptWithArgs | gomilter.OptSetMacros
	if p.actions != wantActs {
		t.Errorf("actions %v, want %v", p.actions, wantActs)
	}
	want := [][]gomilter.MacroName{
		gomilter.StageConnect: {"v", "j", "{daemon_name}", "{client_addr}", "{client_name}", "{if_addr}"},
		gomilter.StageHelo:    {"{tls_version}", "{cipher}"},
		gomilter.StageMail:    {"i", "{auth_authen}"},
		gomilter.StageRcpt:    nil,
		gomilter.StageData:    {"i"},
		gomilter.StageEOM:     {"i"},
		gomilter.StageEOH:     {"i"},
	}
	for st := range want {
		if !slices.Equal(p.macros[st], want[st]) {
			t.Errorf("stage %d macros %q, want %q", st, p.macros[st], want[st])
		}
	}
}

// TestNegotiationDegrades: an MTA offering fewer actions and protocol bits
// is served; what is missing is reported, compensated or refused per call.
func TestNegotiationDegrades(t *testing.T) {
	logs := &logBuf{}
	req := allEvents
	req.Helo, req.Rcpt = false, false
	h := &fakeHandler{req: req}
	var eomErrs []error
	h.eom = func(_ context.Context, mod bridge.Modifier) bridge.Reply {
		eomErrs = []error{
			mod.AddHeader("X-Scanned", " yes"),
			mod.ChangeHeader(1, "Subject", " new"),
			mod.InsertHeader(0, "X-Top", " 1"),
			mod.Quarantine("q"),
			mod.Progress(),
		}
		return bridge.Reply{}
	}
	_, addr := startServer(t, h, Options{Logger: logs.logger()})
	// An MTA offering only ADDHDRS and the old NO* bits: no SKIP, no
	// HDR_LEADSPC, no SMFIP_NORCPT.
	s := mta(t, addr,
		gomilter.WithActions(gomilter.OptAddHeader),
		gomilter.WithProtocols(gomilter.OptNoConnect|gomilter.OptNoHelo|gomilter.OptNoMailFrom|
			gomilter.OptNoBody|gomilter.OptNoHeaders|gomilter.OptNoEOH|gomilter.OptNoUnknown|gomilter.OptNoData))
	if s.ActionOption(gomilter.OptChangeHeader) || !s.ActionOption(gomilter.OptAddHeader) {
		t.Errorf("actions: change header %v, add header %v", s.ActionOption(gomilter.OptChangeHeader),
			s.ActionOption(gomilter.OptAddHeader))
	}
	if s.ProtocolOption(gomilter.OptHeaderLeadingSpace) || s.ProtocolOption(gomilter.OptSkip) {
		t.Error("LEADSPC or SKIP negotiated though not offered")
	}
	if !s.ProtocolOption(gomilter.OptNoHelo) || s.ProtocolOption(gomilter.OptNoConnect) {
		t.Error("want HELO off and CONNECT on")
	}
	must(t)(s.Conn("h", gomilter.FamilyInet, 25, "192.0.2.1"))
	must(t)(s.Helo("h"))
	must(t)(s.Mail("a@x", ""))
	if a := must(t)(s.Rcpt("b@y", "")); a.Type != gomilter.ActionContinue {
		t.Errorf("unwanted rcpt answered %v", a)
	}
	must(t)(s.DataStart())
	must(t)(s.HeaderField("Subject", "hi", nil))
	must(t)(s.HeaderEnd())
	must(t)(s.BodyChunk([]byte("b")))
	mods, act, err := s.End()
	if err != nil || act.Type != gomilter.ActionAccept {
		t.Fatalf("end: %v %v", act, err)
	}
	if len(mods) != 2 || mods[0].Type != gomilter.ActionAddHeader || mods[0].HeaderValue != "yes" ||
		mods[1].Type != gomilter.ActionInsertHeader || mods[1].HeaderValue != "1" {
		t.Errorf("modifications %v, want AddHeader and InsertHeader without the leading space", mods)
	}
	if eomErrs[0] != nil || eomErrs[4] != nil {
		t.Errorf("add header / progress: %v / %v", eomErrs[0], eomErrs[4])
	}
	for _, i := range []int{1, 3} {
		if !errors.Is(eomErrs[i], ErrNotNegotiated) {
			t.Errorf("modification %d: %v, want ErrNotNegotiated", i, eomErrs[i])
		}
	}
	if eomErrs[2] != nil { // ADDHDRS allows INSHEADER
		t.Errorf("insert header: %v", eomErrs[2])
	}
	_ = s.Close()
	calls := h.waitLog(t, "close")
	if !slices.Contains(calls, `header Subject " hi"`) {
		t.Errorf("header without LEADSPC not compensated: %q", calls)
	}
	for _, c := range calls {
		if strings.HasPrefix(c, "rcpt") || strings.HasPrefix(c, "helo") {
			t.Errorf("unwanted event reached the bridge: %q", c)
		}
	}
	for _, w := range []string{"does not offer actions", "does not offer protocol options", "HeaderLeadingSpace"} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, logs.String())
		}
	}
}

// TestOldMTA negotiates protocol version 2: no PROGRESS, no SETSYMLIST.
func TestOldMTA(t *testing.T) {
	h := &fakeHandler{req: allEvents}
	var progressErr error
	h.eom = func(_ context.Context, mod bridge.Modifier) bridge.Reply {
		progressErr = mod.Progress()
		return bridge.Reply{}
	}
	_, addr := startServer(t, h, Options{})
	s := mta(t, addr, gomilter.WithMaximumVersion(2),
		gomilter.WithActions(gomilter.OptAddHeader|gomilter.OptChangeHeader),
		gomilter.WithProtocols(gomilter.OptNoConnect|gomilter.OptNoHelo|gomilter.OptNoMailFrom|
			gomilter.OptNoRcptTo|gomilter.OptNoBody|gomilter.OptNoHeaders|gomilter.OptNoEOH))
	must(t)(s.Conn("h", gomilter.FamilyInet, 25, "192.0.2.1"))
	must(t)(s.Helo("h"))
	must(t)(s.Mail("a@x", ""))
	must(t)(s.Rcpt("b@y", ""))
	must(t)(s.DataStart())
	must(t)(s.HeaderEnd())
	must(t)(s.BodyChunk([]byte("b")))
	if _, act, err := s.End(); err != nil || act.Type != gomilter.ActionAccept {
		t.Fatalf("end: %v %v", act, err)
	}
	if progressErr != nil {
		t.Errorf("Progress at version 2: %v, want nil", progressErr)
	}
}

// TestRepliesPerConnection: each connection asks the handler which replies
// it needs now; the others are negotiated away for that connection only,
// and the session learns what the MTA waits for.
func TestRepliesPerConnection(t *testing.T) {
	req := allEvents
	req.Replies = bridge.EventRcpt | bridge.EventEndOfMessage
	var mu sync.Mutex
	now := bridge.EventEndOfMessage
	h := &fakeHandler{req: req, now: func() bridge.Events {
		mu.Lock()
		defer mu.Unlock()
		return now
	}}
	_, addr := startServer(t, h, Options{})
	for i, tc := range []struct {
		now         bridge.Events
		noRcptReply bool
	}{
		{bridge.EventEndOfMessage, true},
		{bridge.EventRcpt | bridge.EventEndOfMessage, false},
		{bridge.EventEndOfMessage, true},
	} {
		mu.Lock()
		now = tc.now
		mu.Unlock()
		s := mta(t, addr)
		if got := s.ProtocolOption(gomilter.OptNoRcptReply); got != tc.noRcptReply {
			t.Errorf("connection %d: SMFIP_NR_RCPT = %v, want %v", i, got, tc.noRcptReply)
		}
		if !s.ProtocolOption(gomilter.OptNoHeaderReply) || s.ProtocolOption(gomilter.OptNoRcptTo) {
			t.Errorf("connection %d: the plan's other bits changed", i)
		}
		must(t)(s.Conn("h", gomilter.FamilyInet, 25, "192.0.2.1"))
		_ = s.Close()
		var got bridge.Events
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			h.mu.Lock()
			n := len(h.replies)
			if n > i {
				got = h.replies[i]
			}
			h.mu.Unlock()
			if n > i {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("connection %d: no session", i)
			}
		}
		if got != tc.now {
			t.Errorf("connection %d: session told %b, want %b", i, got, tc.now)
		}
	}
}

func TestRepliesOfProtocol(t *testing.T) {
	p := newPlan(bridge.Requirements{Connect: true, Mail: true, Rcpt: true, Body: true,
		Replies: bridge.EventRcpt | bridge.EventEndOfMessage})
	if got := replies(p.protocol); got != bridge.EventRcpt|bridge.EventEndOfMessage {
		t.Errorf("replies(plan) = %b", got)
	}
	narrowed := p.narrow(p.protocol, bridge.EventEndOfMessage)
	if narrowed&gomilter.OptNoRcptReply == 0 || narrowed&^gomilter.OptNoRcptReply != p.protocol {
		t.Errorf("narrow: %v from %v", narrowed, p.protocol)
	}
	if got := replies(narrowed); got != bridge.EventEndOfMessage {
		t.Errorf("replies(narrowed) = %b", got)
	}
	// A handler cannot add replies the plan does not have.
	if got := p.narrow(p.protocol, ^bridge.Events(0)); got != p.protocol {
		t.Errorf("narrow to everything = %v, want %v", got, p.protocol)
	}
	// Replies zero: every wanted event keeps its reply, whatever now says.
	all := newPlan(bridge.Requirements{Connect: true, Rcpt: true})
	if got := all.narrow(all.protocol, bridge.EventEndOfMessage); got != all.protocol {
		t.Errorf("narrow with Replies zero = %v, want %v", got, all.protocol)
	}
}
