package bridge

import (
	"errors"
	"fmt"
	"testing"

	"github.com/opes-milter/opes-milter/mapping"
)

// TestDecideFailure runs the failure cascade over every failure class ×
// on_failure action × stage × SMTP/non-SMTP path: the class picks its
// on_failure key (local and service failures take the server's), the
// action decides the reply, delivery and quarantine.
func TestDecideFailure(t *testing.T) {
	tempfail := "tempfail 451 4.3.0 Content adaptation unavailable, try again later"
	reject := "reject 554 5.7.0 Content adaptation failed"
	cont := "continue"
	wants := map[mapping.Action][4]string{
		mapping.TempFail:       {tempfail, tempfail, cont, tempfail},
		mapping.Reject:         {reject, reject, cont, reject},
		mapping.Accept:         {cont, cont, cont, cont},
		mapping.Quarantine:     {cont, cont, cont, cont},
		mapping.SkipAdaptation: {tempfail, tempfail, cont, tempfail}, // not an on_failure action: fails closed
	}
	key := map[FailureClass]func(*mapping.FailurePolicy) *mapping.Action{
		FailConnect:  func(p *mapping.FailurePolicy) *mapping.Action { return &p.Connect },
		FailTimeout:  func(p *mapping.FailurePolicy) *mapping.Action { return &p.Timeout },
		FailProtocol: func(p *mapping.FailurePolicy) *mapping.Action { return &p.Protocol },
		FailServer:   func(p *mapping.FailurePolicy) *mapping.Action { return &p.Server },
		FailLocal:    func(p *mapping.FailurePolicy) *mapping.Action { return &p.Server },
		FailService:  func(p *mapping.FailurePolicy) *mapping.Action { return &p.Server },
	}
	classes := []FailureClass{FailConnect, FailTimeout, FailProtocol, FailServer, FailLocal, FailService}
	actions := []mapping.Action{mapping.TempFail, mapping.Accept, mapping.Reject, mapping.Quarantine, mapping.SkipAdaptation}
	for _, c := range classes {
		for _, a := range actions {
			// Every other key names an action that differs from a in
			// reply and delivery, so a wrong key shows.
			other := mapping.Accept
			if a == mapping.Accept || a == mapping.Quarantine {
				other = mapping.Reject
			}
			p := mapping.FailurePolicy{Connect: other, Timeout: other, Protocol: other, Server: other}
			*key[c](&p) = a
			route := &mapping.Route{Name: "r", Chain: &mapping.Chain{OnFailure: p}}
			f := &AdaptationError{Class: c, Err: errors.New("boom")}
			for i, tc := range []struct {
				stage   failureStage
				nonSMTP bool
			}{{stagePreData, false}, {stageMessage, false}, {stagePreData, true}, {stageMessage, true}} {
				name := fmt.Sprintf("%s/%s/%s/nonSMTP=%v", c, a, tc.stage, tc.nonSMTP)
				d := decideFailure(route, f, tc.stage, tc.nonSMTP)
				if d.action != a {
					t.Errorf("%s: action %s", name, d.action)
				}
				if got := replyString(d.reply); got != wants[a][i] {
					t.Errorf("%s: reply %q, want %q", name, got, wants[a][i])
				}
				if wantDeliver := a == mapping.Accept || a == mapping.Quarantine; d.deliver != wantDeliver {
					t.Errorf("%s: deliver %v", name, d.deliver)
				}
				wantQ := ""
				if a == mapping.Quarantine {
					wantQ = "content adaptation failed (" + c.String() + ")"
				}
				if d.quarantine != wantQ {
					t.Errorf("%s: quarantine %q, want %q", name, d.quarantine, wantQ)
				}
			}
		}
	}
	// Without a route or a failure, the answer is tempfail.
	for _, d := range []failureDecision{
		decideFailure(nil, &AdaptationError{Class: FailConnect, Err: errors.New("x")}, stageMessage, false),
		decideFailure(&mapping.Route{Chain: &mapping.Chain{OnFailure: mapping.FailurePolicy{Connect: mapping.Accept}}}, nil, stageMessage, false),
	} {
		if d.action != mapping.TempFail || replyString(d.reply) != tempfail || d.deliver {
			t.Errorf("no route or failure: %+v", d)
		}
	}
}

func replyString(r Reply) string {
	switch r.Kind {
	case Continue:
		return "continue"
	case TempFail:
		return "tempfail " + r.SMTP.String()
	case Reject:
		return "reject " + r.SMTP.String()
	}
	return fmt.Sprintf("kind %d %s", r.Kind, r.SMTP.String())
}
