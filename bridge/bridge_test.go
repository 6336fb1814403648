package bridge_test

import (
	"strings"
	"testing"

	"github.com/emersion/go-message/textproto"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

var (
	skeletonAdaptive    = []ocpsmtp.Part{ocpsmtp.PartRCPT, ocpsmtp.PartRAWDATA}
	skeletonInformative = []ocpsmtp.Part{ocpsmtp.PartIP, ocpsmtp.PartHELO, ocpsmtp.PartMAIL}
)

// sendMessage runs MAIL, the RCPTs, a small header and body and end of
// message, returning the RCPT actions, the modifications and the final action.
func sendMessage(t *testing.T, s *ClientSession, from string, rcpts []string, body string) ([]*Action, []ModifyAction, *Action) {
	t.Helper()
	if act, err := s.Mail(from, ""); err != nil || act.Type != ActionContinue {
		t.Fatalf("mail: %v %v", act, err)
	}
	var acts []*Action
	for _, r := range rcpts {
		act, err := s.Rcpt(r, "")
		if err != nil {
			t.Fatalf("rcpt %s: %v", r, err)
		}
		acts = append(acts, act)
	}
	var h textproto.Header
	h.Add("Subject", "test")
	h.Add("From", from)
	if act, err := s.Header(h); err != nil || act.Type != ActionContinue {
		t.Fatalf("header: %v %v", act, err)
	}
	mods, act, err := s.BodyReadFrom(strings.NewReader(body))
	if err != nil {
		t.Fatalf("body/eom: %v", err)
	}
	return acts, mods, act
}

func findMods(mods []ModifyAction, typ ModifyActionType, name string) []ModifyAction {
	var out []ModifyAction
	for _, m := range mods {
		if m.Type == typ && (name == "" || strings.EqualFold(m.HeaderName, name)) {
			out = append(out, m)
		}
	}
	return out
}

func TestSkeletonPath(t *testing.T) {
	co := startCallout(t, standardScript())
	m := startMilter(t, testPolicy(co.Addr, skeletonAdaptive, skeletonInformative))
	s := m.session(t)
	for n := 0; n < 3; n++ { // three transactions on one milter connection
		acts, mods, act := sendMessage(t, s, "sender@example.org", []string{"blocked@example.com", "friend@example.com"}, "hello\r\n")
		if acts[0].Type != ActionRejectWithCode || acts[0].SMTPCode != 550 || !strings.Contains(acts[0].SMTPReply, "5.1.1") {
			t.Fatalf("message %d: blocked recipient: %+v", n, acts[0])
		}
		if acts[1].Type != ActionContinue {
			t.Fatalf("message %d: friend: %+v", n, acts[1])
		}
		if act.Type != ActionAccept {
			t.Fatalf("message %d: final action %+v", n, act)
		}
		sys := findMods(mods, ActionInsertHeader, "OPES-System")
		if len(sys) != 1 || strings.TrimSpace(sys[0].HeaderValue) != "http://opes.example.net/opes-milter" {
			t.Fatalf("message %d: OPES-System: %+v (all: %+v)", n, sys, mods)
		}
		if via := findMods(mods, ActionInsertHeader, "OPES-Via"); len(via) != 1 || !strings.Contains(via[0].HeaderValue, "urn:test:header-tag") {
			t.Fatalf("message %d: OPES-Via: %+v", n, via)
		}
		if tag := findMods(mods, ActionAddHeader, "X-Test"); len(tag) != 1 || strings.TrimSpace(tag[0].HeaderValue) != "yes" {
			t.Fatalf("message %d: X-Test: %+v", n, tag)
		}
		if body := findMods(mods, ActionReplaceBody, ""); len(body) != 0 {
			t.Fatalf("message %d: body replaced although unchanged", n)
		}
	}
}
