package milter

import (
	"errors"
	"strings"
	"testing"

	gomilter "github.com/d--j/go-milter"

	"github.com/opes-milter/opes-milter/bridge"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// TestReplyMapping drives each event to a bridge reply and checks what the
// MTA receives.
func TestReplyMapping(t *testing.T) {
	tests := []struct {
		name  string
		event string // the event answered with reply
		reply bridge.Reply
		want  gomilter.ActionType
		code  uint16
		text  string // wire text for ActionRejectWithCode
		skip  bool   // the client saw SKIP
	}{
		{"rcpt reject with code", "rcpt", bridge.Reply{Kind: bridge.Reject, SMTP: ocpsmtp.Reply{Code: 550, Text: "5.1.1 no such user"}},
			gomilter.ActionRejectWithCode, 550, "550 5.1.1 no such user", false},
		{"rcpt plain tempfail", "rcpt", bridge.Reply{Kind: bridge.TempFail},
			gomilter.ActionTempFail, 451, "", false},
		{"rcpt skip", "rcpt", bridge.Reply{Kind: bridge.Skip}, gomilter.ActionContinue, 0, "", true},
		{"helo skip is continue", "helo", bridge.Reply{Kind: bridge.Skip}, gomilter.ActionContinue, 0, "", false},
		{"mail accept is continue", "mail", bridge.Reply{Kind: bridge.Accept}, gomilter.ActionContinue, 0, "", false},
		{"data discard is continue", "data", bridge.Reply{Kind: bridge.Discard}, gomilter.ActionContinue, 0, "", false},
		{"421 falls back (it would close the session)", "connect", bridge.Reply{Kind: bridge.TempFail, SMTP: ocpsmtp.Reply{Code: 421, Text: "4.3.2 shutting down"}},
			gomilter.ActionTempFail, 451, "", false},
		{"percent escaped once", "mail", bridge.Reply{Kind: bridge.Reject, SMTP: ocpsmtp.Reply{Code: 554, Text: "5.7.1 100% bad"}},
			gomilter.ActionRejectWithCode, 554, "554 5.7.1 100%% bad", false},
		{"multi-line", "rcpt", bridge.Reply{Kind: bridge.Reject, SMTP: ocpsmtp.Reply{Code: 550, Text: "5.7.1 line one\r\n5.7.1 line two"}},
			gomilter.ActionRejectWithCode, 550, "550-5.7.1 line one\r\n550 5.7.1 line two", false},
		{"text only gets a default code", "rcpt", bridge.Reply{Kind: bridge.TempFail, SMTP: ocpsmtp.Reply{Text: "4.2.0 later"}},
			gomilter.ActionRejectWithCode, 451, "451 4.2.0 later", false},
		{"class mismatch falls back", "rcpt", bridge.Reply{Kind: bridge.Reject, SMTP: ocpsmtp.Reply{Code: 554, Text: "4.7.1 x"}},
			gomilter.ActionReject, 550, "", false},
		{"code of the wrong kind falls back", "rcpt", bridge.Reply{Kind: bridge.TempFail, SMTP: ocpsmtp.Reply{Code: 550, Text: "5.0.0 x"}},
			gomilter.ActionTempFail, 451, "", false},
		{"bare LF falls back", "rcpt", bridge.Reply{Kind: bridge.Reject, SMTP: ocpsmtp.Reply{Code: 550, Text: "a\nb"}},
			gomilter.ActionReject, 550, "", false},
		{"eom continue is accept", "eom", bridge.Reply{}, gomilter.ActionAccept, 250, "", false},
		{"eom skip is accept", "eom", bridge.Reply{Kind: bridge.Skip}, gomilter.ActionAccept, 250, "", false},
		{"eom discard", "eom", bridge.Reply{Kind: bridge.Discard}, gomilter.ActionDiscard, 250, "", false},
		{"eom reject", "eom", bridge.Reply{Kind: bridge.Reject, SMTP: ocpsmtp.Reply{Code: 554, Text: "5.7.1 virus"}},
			gomilter.ActionRejectWithCode, 554, "554 5.7.1 virus", false},
		{"unknown kind is tempfail", "header", bridge.Reply{Kind: bridge.ReplyKind(99)}, gomilter.ActionTempFail, 451, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &fakeHandler{req: allEvents, reply: func(ev, _ string) bridge.Reply {
				if ev == tt.event {
					return tt.reply
				}
				return bridge.Reply{}
			}}
			_, addr := startServer(t, h, Options{})
			s := mta(t, addr)
			got := runTo(t, s, tt.event)
			if got.Type != tt.want || (tt.code != 0 && got.SMTPCode != tt.code) ||
				(tt.text != "" && got.SMTPReply != tt.text) {
				t.Errorf("got %v (code %d, %q), want type %d code %d %q", got, got.SMTPCode, got.SMTPReply,
					tt.want, tt.code, tt.text)
			}
			if s.Skip() != tt.skip {
				t.Errorf("skip = %v, want %v", s.Skip(), tt.skip)
			}
		})
	}
}

// runTo plays a message up to event and returns the MTA's action there.
func runTo(t *testing.T, s *gomilter.ClientSession, event string) *gomilter.Action {
	t.Helper()
	steps := []struct {
		ev string
		do func() (*gomilter.Action, error)
	}{
		{"connect", func() (*gomilter.Action, error) { return s.Conn("h", gomilter.FamilyInet, 25, "192.0.2.1") }},
		{"helo", func() (*gomilter.Action, error) { return s.Helo("h") }},
		{"mail", func() (*gomilter.Action, error) { return s.Mail("a@x", "") }},
		{"rcpt", func() (*gomilter.Action, error) { return s.Rcpt("b@y", "") }},
		{"data", s.DataStart},
		{"header", func() (*gomilter.Action, error) { return s.HeaderField("Subject", " x", nil) }},
		{"eoh", s.HeaderEnd},
		{"body", func() (*gomilter.Action, error) { return s.BodyChunk([]byte("b")) }},
		{"eom", func() (*gomilter.Action, error) { _, a, err := s.End(); return a, err }},
	}
	for _, st := range steps {
		a := must(t)(st.do())
		if st.ev == event {
			return a
		}
	}
	t.Fatalf("no event %q", event)
	return nil
}

func TestReplyReason(t *testing.T) {
	tests := []struct {
		code    int
		text    string
		want    string
		wantErr bool
	}{
		{550, "5.1.1 no such user", "5.1.1 no such user", false},
		{550, "no code here", "no code here", false},
		{550, "", "", false},
		{550, "5.7.1 one\r\n5.7.1 two\r\nthree", "5.7.1 one\ntwo\nthree", false},
		{451, "4.7.1", "4.7.1", false},
		{550, "4.7.1 wrong class", "", true},
		{451, "5.7.1 wrong class", "", true},
		{550, "5.7.1 one\r\n5.7.2 two", "", true},
		{550, "one\r\n4.7.2 two", "", true},
		{550, "lone\rCR", "", true},
		{550, "lone\nLF", "", true},
		{550, "nul\x00", "", true},
		{550, strings.Repeat("x\r\n", 32) + "x", "", true},
		// Text starting with a digit must start with an enhanced code
		// (the profile's rule, ocpsmtp.ParseReply).
		{550, "1.2.3 not an enhanced code class", "", true},
		{550, "5.1234.1 too long subject", "", true},
		{550, "5.1.1x not a code", "", true},
		{421, "4.3.2 closing", "", true},
	}
	for _, tt := range tests {
		got, err := replyReason(ocpsmtp.Reply{Code: tt.code, Text: tt.text})
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("replyReason(%d, %q) = %q, %v; want %q, err %v", tt.code, tt.text, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, errBadReply) {
			t.Errorf("error %v does not wrap errBadReply", err)
		}
	}
}
