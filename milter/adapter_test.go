package milter

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	gomilter "github.com/d--j/go-milter"

	"github.com/opes-milter/opes-milter/bridge"
)

// TestTransaction runs one full message with modifications and checks
// what the bridge saw and what the MTA got.
func TestTransaction(t *testing.T) {
	h := &fakeHandler{req: allEvents}
	h.eom = func(_ context.Context, mod bridge.Modifier) bridge.Reply {
		for _, err := range []error{
			mod.AddHeader("X-Scanned", " yes"),
			mod.ChangeHeader(1, "Subject", " [ok] hi\r\n\tthere"),
			mod.InsertHeader(0, "X-Top", " 1"),
			mod.ReplaceBody(strings.NewReader("new\r\n")),
			mod.ChangeFrom("<b@example.org>", ""),
			mod.AddRecipient("<c@example.com>", "NOTIFY=NEVER"),
			mod.DeleteRecipient("<d@example.com>"),
			mod.Quarantine("held"),
			mod.Progress(),
		} {
			if err != nil {
				t.Errorf("modification: %v", err)
			}
		}
		if err := mod.ReplaceBody(strings.NewReader("again")); !errors.Is(err, ErrBodyReplaced) {
			t.Errorf("second ReplaceBody: %v, want ErrBodyReplaced", err)
		}
		return bridge.Reply{Kind: bridge.Accept}
	}
	_, addr := startServer(t, h, Options{})
	s := mta(t, addr)
	for _, opt := range []gomilter.OptProtocol{gomilter.OptHeaderLeadingSpace, gomilter.OptSkip, gomilter.OptNoUnknown} {
		if !s.ProtocolOption(opt) {
			t.Errorf("protocol option %v not negotiated", opt)
		}
	}
	must(t)(s.Conn("client.example", gomilter.FamilyInet, 40000, "192.0.2.10"))
	must(t)(s.Helo("client.example"))
	must(t)(s.Mail("a@example.org", "SIZE=100 BODY=8BITMIME"))
	must(t)(s.Rcpt("b@example.com", ""))
	must(t)(s.DataStart())
	must(t)(s.HeaderField("Subject", " hi\n\tthere", nil))
	must(t)(s.HeaderField("X-Tab", "\tv", nil))
	must(t)(s.HeaderEnd())
	must(t)(s.BodyChunk([]byte("line 1\r\n")))
	mods, act, err := s.End()
	if err != nil {
		t.Fatal(err)
	}
	if act.Type != gomilter.ActionAccept {
		t.Errorf("final action %v, want accept", act)
	}
	var got []string
	for _, m := range mods {
		got = append(got, m.String())
	}
	want := []string{
		`AddHeader "X-Scanned" " yes"`,
		`ChangeHeader 1 "Subject" " [ok] hi\n\tthere"`,
		`InsertHeader 0 "X-Top" " 1"`,
		`ReplaceBody len(body) = 5 sha1(body) = 7d9cd1a5bd4ca7ac4d6e7ff6e1a3b4d1e3bd4a3b`,
		`ChangeFrom "<b@example.org>" ""`,
		`AddRcpt "<c@example.com>" "NOTIFY=NEVER"`,
		`DelRcpt "<d@example.com>"`,
		`Quarantine "held"`,
	}
	// the body hash is not the point: compare it by prefix
	if len(got) != len(want) {
		t.Fatalf("modifications:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := range want {
		if strings.HasPrefix(want[i], "ReplaceBody") {
			got[i], want[i] = got[i][:len("ReplaceBody len(body) = 5")], want[i][:len("ReplaceBody len(body) = 5")]
		}
		if got[i] != want[i] {
			t.Errorf("modification %d: %s, want %s", i, got[i], want[i])
		}
	}
	_ = s.Close()
	calls := h.waitLog(t, "close")
	wantCalls := []string{
		"new",
		`connect client.example tcp4 192.0.2.10 40000 v="Postfix 3.7.11" daemon="smtpd"`,
		"helo client.example",
		`mail <a@example.org> ["SIZE=100" "BODY=8BITMIME"] auth="alice"`,
		`rcpt <b@example.com> []`,
		"data",
		`header Subject " hi\r\n\tthere"`,
		`header X-Tab "\tv"`,
		"eoh",
		`body "line 1\r\n"`,
		"eom i=QID1",
		"close",
	}
	if !slices.Equal(calls, wantCalls) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(wantCalls, "\n"))
	}
}

// TestAngleBrackets checks the null sender and recipients without args.
func TestAngleBrackets(t *testing.T) {
	h := &fakeHandler{req: allEvents}
	_, addr := startServer(t, h, Options{})
	s := mta(t, addr)
	must(t)(s.Conn("h", gomilter.FamilyInet6, 1, "IPv6:2001:db8::1"))
	must(t)(s.Helo("h"))
	must(t)(s.Mail("", ""))
	must(t)(s.Rcpt("x@example.com", "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x@example.com"))
	_ = s.Close()
	calls := h.waitLog(t, "close")
	for _, want := range []string{
		`connect h tcp6 2001:db8::1 1 v="Postfix 3.7.11" daemon="smtpd"`,
		`mail <> [] auth="alice"`,
		`rcpt <x@example.com> ["NOTIFY=SUCCESS,FAILURE" "ORCPT=rfc822;x@example.com"]`,
	} {
		if !slices.Contains(calls, want) {
			t.Errorf("no call %q in:\n%s", want, strings.Join(calls, "\n"))
		}
	}
}

// TestConnectionReuse runs three transactions, an abort mid-message and a
// second HELO on one milter connection.
func TestConnectionReuse(t *testing.T) {
	h := &fakeHandler{req: allEvents}
	_, addr := startServer(t, h, Options{})
	s := mta(t, addr)
	must(t)(s.Conn("h", gomilter.FamilyInet, 25, "192.0.2.1"))
	must(t)(s.Helo("one"))
	for i, msg := range []string{"m1", "m2", "m3"} {
		must(t)(s.Mail("a@x", ""))
		must(t)(s.Rcpt("b@y", ""))
		must(t)(s.DataStart())
		must(t)(s.HeaderEnd())
		must(t)(s.BodyChunk([]byte(msg)))
		if i == 1 { // RSET mid-message, then a second HELO (STARTTLS)
			if err := s.Abort(nil); err != nil {
				t.Fatal(err)
			}
			must(t)(s.Helo("two"))
			continue
		}
		_, act, err := s.End()
		if err != nil || act.Type != gomilter.ActionAccept {
			t.Fatalf("message %d: %v %v", i, act, err)
		}
	}
	_ = s.Close()
	calls := h.waitLog(t, "close")
	var evs []string
	for _, c := range calls {
		evs = append(evs, strings.Fields(c)[0])
	}
	// go-milter synthesises the abort after eom that Postfix would send
	want := strings.Fields("new connect helo " +
		"mail rcpt data eoh body eom abort " +
		"mail rcpt data eoh body abort helo " +
		"mail rcpt data eoh body eom close")
	if !slices.Equal(evs, want) {
		t.Errorf("events:\n%v\nwant:\n%v", evs, want)
	}
	if !slices.Contains(calls, "helo two") || !slices.Contains(calls, `body "m3"`) {
		t.Errorf("missing second HELO or third body: %q", calls)
	}
}

// TestRefusedSession: NewSession's error becomes 451 4.3.2 at connect.
func TestRefusedSession(t *testing.T) {
	h := &fakeHandler{req: allEvents, newErr: errors.New("overloaded")}
	_, addr := startServer(t, h, Options{})
	s := mta(t, addr)
	act := must(t)(s.Conn("h", gomilter.FamilyInet, 25, "192.0.2.1"))
	if act.Type != gomilter.ActionRejectWithCode || act.SMTPCode != 451 ||
		!strings.HasPrefix(act.SMTPReply, "451 4.3.2 ") {
		t.Errorf("connect answer %v, want 451 4.3.2", act)
	}
}

// TestPanicInSession: a panicking session answers tempfail and the
// connection and the server go on.
func TestPanicInSession(t *testing.T) {
	logs := &logBuf{}
	h := &fakeHandler{req: allEvents}
	h.reply = func(ev, arg string) bridge.Reply {
		if ev == "rcpt" && strings.Contains(arg, "boom") {
			panic("test panic")
		}
		return bridge.Reply{}
	}
	h.eom = func(context.Context, bridge.Modifier) bridge.Reply { panic("eom panic") }
	_, addr := startServer(t, h, Options{Logger: logs.logger()})
	for range 2 {
		s := mta(t, addr)
		must(t)(s.Conn("h", gomilter.FamilyInet, 25, "192.0.2.1"))
		must(t)(s.Helo("h"))
		must(t)(s.Mail("a@x", ""))
		if act := must(t)(s.Rcpt("boom@y", "")); act.Type != gomilter.ActionTempFail {
			t.Errorf("panicking rcpt: %v, want tempfail", act)
		}
		if act := must(t)(s.Rcpt("ok@y", "")); act.Type != gomilter.ActionContinue {
			t.Errorf("next rcpt: %v, want continue", act)
		}
		must(t)(s.DataStart())
		must(t)(s.HeaderEnd())
		must(t)(s.BodyChunk([]byte("x")))
		if _, act, err := s.End(); err != nil || act.Type != gomilter.ActionTempFail {
			t.Errorf("panicking eom: %v %v, want tempfail", act, err)
		}
		_ = s.Close()
	}
	if !strings.Contains(logs.String(), "test panic") || !strings.Contains(logs.String(), "goroutine") {
		t.Errorf("panic and stack not logged:\n%s", logs.String())
	}
}

// TestLongHeader: Postfix sends a header field up to header_size_limit
// (100 KiB) in one packet; it must pass the frame cap.
func TestLongHeader(t *testing.T) {
	h := &fakeHandler{req: allEvents}
	_, addr := startServer(t, h, Options{})
	s := mta(t, addr)
	long := " " + strings.Repeat("x", 102400-len("X-Long:")-1)
	runTo(t, s, "data")
	if a := must(t)(s.HeaderField("X-Long", long, nil)); a.Type != gomilter.ActionContinue {
		t.Errorf("long header answered %v", a)
	}
	_ = s.Close()
	calls := h.waitLog(t, "close")
	if !slices.Contains(calls, "header X-Long "+strconv.Quote(long)) {
		t.Error("long header not passed to the bridge")
	}
}

// TestModifierAfterEOM: the Modifier refuses use once the reply is out.
func TestModifierAfterEOM(t *testing.T) {
	h := &fakeHandler{req: allEvents}
	var kept bridge.Modifier
	h.eom = func(_ context.Context, mod bridge.Modifier) bridge.Reply {
		kept = mod
		return bridge.Reply{}
	}
	_, addr := startServer(t, h, Options{})
	s := mta(t, addr)
	runTo(t, s, "eom")
	for _, err := range []error{kept.AddHeader("X", " y"), kept.Progress(), kept.Quarantine("q")} {
		if !errors.Is(err, ErrModifierDone) {
			t.Errorf("after eom: %v, want ErrModifierDone", err)
		}
	}
}
