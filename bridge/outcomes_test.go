package bridge_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"

	"github.com/opes-milter/opes-milter/bridge"
	"github.com/opes-milter/opes-milter/internal/ocptest"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// TestOutcomes drives one message per case through the bridge, in process
// (mta_test.go), against a scripted callout server, and checks the exact
// answers and modifications the MTA gets.
func TestOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		a       ocptest.Answers
		policy  func(p *bridge.Policy)
		rcpts   []string
		body    string
		check   func(t *testing.T, acts []*Action, mods []ModifyAction, final *Action)
		adapted []ocpsmtp.Part
		inform  []ocpsmtp.Part
	}{
		{
			name:  "unchanged message keeps the body and gets the trace",
			rcpts: []string{"a@example.com"},
			check: func(t *testing.T, acts []*Action, mods []ModifyAction, final *Action) {
				wantFinal(t, final, ActionAccept)
				if len(mods) != 2 || mods[1].Type != ActionInsertHeader || mods[1].HeaderName != "OPES-System" || mods[1].HeaderIndex != 1 {
					t.Fatalf("mods = %+v", mods)
				}
			},
		},
		{
			name: "SMTP-Error on RAWDATA refuses the message with that reply",
			a: ocptest.Answers{Raw: func([]byte) ocptest.RawAnswer {
				return ocptest.RawAnswer{SMTPError: "554 5.7.1 Message rejected as spam"}
			}},
			rcpts: []string{"a@example.com"},
			check: func(t *testing.T, acts []*Action, mods []ModifyAction, final *Action) {
				if final.Type != ActionRejectWithCode || final.SMTPCode != 554 || !strings.Contains(final.SMTPReply, "5.7.1 Message rejected as spam") {
					t.Fatalf("final = %+v", final)
				}
				if len(mods) != 0 {
					t.Fatalf("modifications with a refusal: %+v", mods)
				}
			},
		},
		{
			name:  "multi-line SMTP-Error at RCPT",
			a:     ocptest.Answers{RCPT: func(string) string { return "error:550-5.1.1 first line\r\n550 5.1.1 100% second" }},
			rcpts: []string{"a@example.com"},
			check: func(t *testing.T, acts []*Action, mods []ModifyAction, final *Action) {
				if acts[0].SMTPCode != 550 || !strings.Contains(acts[0].SMTPReply, "550-5.1.1 first line\r\n550 5.1.1 100% second") {
					t.Fatalf("rcpt = %+v", acts[0])
				}
			},
		},
		{
			name: "recipient replaced and deleted, one added",
			a: ocptest.Answers{RCPT: func(p string) string {
				switch {
				case strings.Contains(p, "alias"):
					return "replace:<real@example.com>"
				case strings.Contains(p, "gone"):
					return "delete"
				}
				return ""
			}},
			rcpts: []string{"alias@example.com", "gone@example.com", "stay@example.com"},
			check: func(t *testing.T, acts []*Action, mods []ModifyAction, final *Action) {
				wantFinal(t, final, ActionAccept)
				del := findMods(mods, ActionDelRcpt, "")
				add := findMods(mods, ActionAddRcpt, "")
				if len(del) != 2 || del[0].Rcpt != "<alias@example.com>" || del[1].Rcpt != "<gone@example.com>" {
					t.Fatalf("deleted = %+v", del)
				}
				if len(add) != 1 || add[0].Rcpt != "<real@example.com>" {
					t.Fatalf("added = %+v", add)
				}
			},
		},
		{
			name:  "every recipient deleted discards the message",
			a:     ocptest.Answers{RCPT: func(string) string { return "delete" }},
			rcpts: []string{"a@example.com"},
			check: func(t *testing.T, acts []*Action, mods []ModifyAction, final *Action) {
				wantFinal(t, final, ActionDiscard)
			},
		},
		{
			name: "adapted RAWDATA: header change, added field and new body in one run",
			a: ocptest.Answers{Raw: func(orig []byte) ocptest.RawAnswer {
				out := bytes.Replace(orig, []byte("Subject:"), []byte("Subject: [tagged]"), 1)
				out = append(out, []byte("-- \r\nfooter\r\n")...)
				return ocptest.RawAnswer{Data: out, AddHeaders: []string{"X-Scanned: yes", "X-Second: 2"}}
			}},
			rcpts: []string{"a@example.com"},
			body:  "hello\r\n",
			check: func(t *testing.T, acts []*Action, mods []ModifyAction, final *Action) {
				wantFinal(t, final, ActionAccept)
				ch := findMods(mods, ActionChangeHeader, "Subject")
				if len(ch) != 1 || !strings.HasPrefix(ch[0].HeaderValue, " [tagged]") || ch[0].HeaderIndex != 1 {
					t.Fatalf("change = %+v", ch)
				}
				var body []byte
				for _, m := range findMods(mods, ActionReplaceBody, "") {
					body = append(body, m.Body...)
				}
				if string(body) != "hello\r\n-- \r\nfooter\r\n" {
					t.Fatalf("body = %q", body)
				}
				if n := len(findMods(mods, ActionAddHeader, "")); n != 2 {
					t.Fatalf("added headers = %d", n)
				}
				last := mods[len(mods)-1]
				if last.Type != ActionReplaceBody {
					t.Fatalf("body replacement is not the last run: %+v", last)
				}
			},
		},
		{
			name:  "Advice Discard",
			a:     ocptest.Answers{Raw: func([]byte) ocptest.RawAnswer { return ocptest.RawAnswer{Advice: ocpsmtp.AdviceDiscard} }},
			rcpts: []string{"a@example.com"},
			check: func(t *testing.T, acts []*Action, mods []ModifyAction, final *Action) {
				wantFinal(t, final, ActionDiscard)
			},
		},
		{
			name:  "Advice Quarantine",
			a:     ocptest.Answers{Raw: func([]byte) ocptest.RawAnswer { return ocptest.RawAnswer{Advice: ocpsmtp.AdviceQuarantine} }},
			rcpts: []string{"a@example.com"},
			check: func(t *testing.T, acts []*Action, mods []ModifyAction, final *Action) {
				wantFinal(t, final, ActionAccept)
				if q := findMods(mods, ActionQuarantine, ""); len(q) != 1 {
					t.Fatalf("quarantine = %+v", mods)
				}
			},
		},
		{
			name:  "SMTP-Error with a 2xx code is a protocol error: tempfail",
			a:     ocptest.Answers{RCPT: func(string) string { return "error:250 2.0.0 ok" }},
			rcpts: []string{"a@example.com"},
			check: func(t *testing.T, acts []*Action, mods []ModifyAction, final *Action) {
				wantTempfail(t, acts[0])
			},
		},
		{
			name: "Add-Header of OPES-System is refused: tempfail, nothing applied",
			a: ocptest.Answers{Raw: func([]byte) ocptest.RawAnswer {
				return ocptest.RawAnswer{AddHeaders: []string{"OPES-System: http://evil.example/"}}
			}},
			rcpts: []string{"a@example.com"},
			check: func(t *testing.T, acts []*Action, mods []ModifyAction, final *Action) {
				wantTempfail(t, final)
				if len(mods) != 0 {
					t.Fatalf("modifications = %+v", mods)
				}
			},
		},
		{
			name:  "Add-Header with CR/LF inside is refused",
			a:     ocptest.Answers{Raw: func([]byte) ocptest.RawAnswer { return ocptest.RawAnswer{AddHeaders: []string{"X-A: 1\r\nX-B: 2"}} }},
			rcpts: []string{"a@example.com"},
			check: func(t *testing.T, acts []*Action, mods []ModifyAction, final *Action) {
				wantTempfail(t, final)
			},
		},
		{
			name:  "RAWDATA left unanswered is a protocol error",
			a:     ocptest.Answers{Raw: func([]byte) ocptest.RawAnswer { return ocptest.RawAnswer{None: true} }},
			rcpts: []string{"a@example.com"},
			check: func(t *testing.T, acts []*Action, mods []ModifyAction, final *Action) {
				wantTempfail(t, final)
			},
		},
		{
			name:  "the server ends the transaction mid-body: tempfail at end of message",
			a:     ocptest.Answers{OnDUM: failOn(ocpsmtp.PartRAWDATA)},
			rcpts: []string{"a@example.com"},
			check: func(t *testing.T, acts []*Action, mods []ModifyAction, final *Action) {
				wantTempfail(t, final)
				if len(mods) != 0 {
					t.Fatalf("modifications = %+v", mods)
				}
			},
		},
		{
			name:   "accept policy: a failed adaptation passes unadapted and says so",
			a:      ocptest.Answers{OnDUM: failOn(ocpsmtp.PartRAWDATA)},
			policy: onFailure(mapping.Accept),
			rcpts:  []string{"a@example.com"},
			check: func(t *testing.T, acts []*Action, mods []ModifyAction, final *Action) {
				wantFinal(t, final, ActionAccept)
				sys := findMods(mods, ActionInsertHeader, "OPES-System")
				if len(sys) != 1 || !strings.Contains(sys[0].HeaderValue, "status=unadapted") {
					t.Fatalf("trace = %+v", mods)
				}
			},
		},
		{
			name:   "quarantine policy",
			a:      ocptest.Answers{OnDUM: failOn(ocpsmtp.PartRAWDATA)},
			policy: onFailure(mapping.Quarantine),
			rcpts:  []string{"a@example.com"},
			check: func(t *testing.T, acts []*Action, mods []ModifyAction, final *Action) {
				wantFinal(t, final, ActionAccept)
				if q := findMods(mods, ActionQuarantine, ""); len(q) != 1 {
					t.Fatalf("mods = %+v", mods)
				}
			},
		},
		{
			name:   "reject policy",
			a:      ocptest.Answers{OnDUM: failOn(ocpsmtp.PartRAWDATA)},
			policy: onFailure(mapping.Reject),
			rcpts:  []string{"a@example.com"},
			check: func(t *testing.T, acts []*Action, mods []ModifyAction, final *Action) {
				if final.Type != ActionRejectWithCode || final.SMTPCode/100 != 5 {
					t.Fatalf("final = %+v", final)
				}
			},
		},
		{
			name:   "a server that never answers RCPT: tempfail within the RCPT deadline",
			a:      ocptest.Answers{RCPT: func(string) string { return "hang" }},
			policy: func(p *bridge.Policy) { p.Timeouts.Rcpt = 300 * time.Millisecond },
			rcpts:  []string{"a@example.com"},
			check: func(t *testing.T, acts []*Action, mods []ModifyAction, final *Action) {
				wantTempfail(t, acts[0])
				wantTempfail(t, final)
			},
		},
		{
			name:    "adaptive MAIL rewritten: change-from",
			a:       ocptest.Answers{MAIL: func(string) string { return "replace:<canonical@example.org> RET=HDRS SIZE=10" }},
			adapted: []ocpsmtp.Part{ocpsmtp.PartMAIL, ocpsmtp.PartRCPT, ocpsmtp.PartRAWDATA},
			inform:  []ocpsmtp.Part{ocpsmtp.PartIP, ocpsmtp.PartHELO},
			rcpts:   []string{"a@example.com"},
			check: func(t *testing.T, acts []*Action, mods []ModifyAction, final *Action) {
				ch := findMods(mods, ActionChangeFrom, "")
				if len(ch) != 1 || ch[0].From != "<canonical@example.org>" || ch[0].FromArgs != "" {
					t.Fatalf("change-from = %+v", ch)
				}
			},
		},
		{
			name:    "adaptive MAIL refused: every RCPT gets the sender's refusal",
			a:       ocptest.Answers{MAIL: func(string) string { return "error:553 5.7.1 sender refused" }},
			adapted: []ocpsmtp.Part{ocpsmtp.PartMAIL, ocpsmtp.PartRCPT, ocpsmtp.PartRAWDATA},
			rcpts:   []string{"a@example.com"},
			check: func(t *testing.T, acts []*Action, mods []ModifyAction, final *Action) {
				if acts[0].SMTPCode != 553 {
					t.Fatalf("rcpt = %+v", acts[0])
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			co := startCallout(t, scriptServer(tt.a))
			adapted, inform := tt.adapted, tt.inform
			if adapted == nil {
				adapted, inform = skeletonAdaptive, skeletonInformative
			}
			p := testPolicy(co.Addr, adapted, inform)
			if tt.policy != nil {
				tt.policy(p)
			}
			m := startMilter(t, p)
			s := m.session(t)
			body := tt.body
			if body == "" {
				body = "body\r\n"
			}
			acts, mods, final := sendMessage(t, s, "sender@example.org", tt.rcpts, body)
			tt.check(t, acts, mods, final)
		})
	}
}

func wantFinal(t *testing.T, a *Action, typ ActionType) {
	t.Helper()
	if a.Type != typ {
		t.Fatalf("action = %+v, want type %v", a, typ)
	}
}

func wantTempfail(t *testing.T, a *Action) {
	t.Helper()
	if !(a.Type == ActionTempFail || a.Type == ActionRejectWithCode && a.SMTPCode/100 == 4) {
		t.Fatalf("action = %+v, want a tempfail", a)
	}
}

// failOn makes the server end the transaction with TE 400 at the first DUM
// of part.
func failOn(part ocpsmtp.Part) func(tx *ocp.ServerTx, p ocpsmtp.Part) error {
	return func(tx *ocp.ServerTx, p ocpsmtp.Part) error {
		if p == part {
			return errors.New("scanner crashed")
		}
		return nil
	}
}

// onFailure sets every failure class to a.
func onFailure(a mapping.Action) func(p *bridge.Policy) {
	return func(p *bridge.Policy) {
		for _, r := range p.Routes {
			r.Chain.OnFailure = mapping.FailurePolicy{Connect: a, Timeout: a, Protocol: a, Server: a}
		}
	}
}

func TestOversize(t *testing.T) {
	for _, tc := range []struct {
		action mapping.Action
		check  func(t *testing.T, mods []ModifyAction, final *Action)
	}{
		{mapping.Reject, func(t *testing.T, mods []ModifyAction, final *Action) {
			if final.SMTPCode != 552 {
				t.Fatalf("final = %+v", final)
			}
		}},
		{mapping.TempFail, func(t *testing.T, mods []ModifyAction, final *Action) {
			if final.SMTPCode != 452 {
				t.Fatalf("final = %+v", final)
			}
		}},
		{mapping.SkipAdaptation, func(t *testing.T, mods []ModifyAction, final *Action) {
			wantFinal(t, final, ActionAccept)
			sys := findMods(mods, ActionInsertHeader, "OPES-System")
			if len(sys) != 1 || !strings.Contains(sys[0].HeaderValue, "status=skipped") {
				t.Fatalf("mods = %+v", mods)
			}
		}},
	} {
		co := startCallout(t, standardScript())
		p := testPolicy(co.Addr, skeletonAdaptive, skeletonInformative)
		p.MaxMessageSize = 1000
		p.Oversize = tc.action
		m := startMilter(t, p)
		s := m.session(t)
		if _, err := s.Mail("a@example.org", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Rcpt("b@example.com", ""); err != nil {
			t.Fatal(err)
		}
		var h textproto.Header
		h.Add("Subject", "big")
		if _, err := s.Header(h); err != nil {
			t.Fatal(err)
		}
		act, err := s.BodyChunk(bytes.Repeat([]byte("x"), 2000))
		if err != nil {
			t.Fatal(err)
		}
		if act.StopProcessing() {
			tc.check(t, nil, act)
			continue
		}
		mods, final, err := s.End()
		if err != nil {
			t.Fatal(err)
		}
		tc.check(t, mods, final)
	}
}

func TestHostileEnvelopeAnswers(t *testing.T) {
	for _, payload := range []string{
		"replace:<a@example.com>\r\nRCPT TO:<b@example.com>",
		"replace:<a@example.com>\x00NOTIFY=NEVER",
		"replace:<" + strings.Repeat("a", 1<<20) + "@example.com>",
		"replace:not-an-address",
	} {
		co := startCallout(t, scriptServer(ocptest.Answers{RCPT: func(string) string { return payload }}))
		m := startMilter(t, testPolicy(co.Addr, skeletonAdaptive, skeletonInformative))
		s := m.session(t)
		acts, mods, final := sendMessage(t, s, "a@example.org", []string{"b@example.com"}, "x\r\n")
		wantTempfail(t, acts[0])
		wantTempfail(t, final)
		if len(mods) != 0 {
			t.Fatalf("%q: modifications sent: %+v", truncateTest(payload), mods)
		}
	}
}

func truncateTest(s string) string {
	if len(s) > 60 {
		return s[:60]
	}
	return s
}
