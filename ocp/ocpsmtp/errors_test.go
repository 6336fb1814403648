package ocpsmtp

import (
	"errors"
	"strings"
	"testing"
)

func TestErrorTexts(t *testing.T) {
	syn := &SyntaxError{Func: "ParseReply", Reason: "empty reply"}
	tests := []struct {
		err  error
		want []string
	}{
		{&NegotiationError{Part: PartVRFY, Reason: "adaptive part not offered as adaptive"},
			[]string{"negotiation", "VRFY", "not offered"}},
		{&NegotiationError{Reason: "mutually exclusive parts selected", Err: &ExclusiveError{A: PartRAWDATA, B: PartBODY}},
			[]string{"exclusive", "RAWDATA and BODY"}},
		{&ParamError{Name: ParamSMTPError, Reason: "unusable SMTP reply", Err: syn},
			[]string{"SMTP-Error", "unusable", "ParseReply: empty reply"}},
		{syn, []string{"ocpsmtp: ParseReply: empty reply"}},
	}
	for _, tt := range tests {
		for _, w := range tt.want {
			if !strings.Contains(tt.err.Error(), w) {
				t.Errorf("%q lacks %q", tt.err.Error(), w)
			}
		}
	}
	var se *SyntaxError
	if !errors.As(tests[2].err, &se) || se != syn {
		t.Errorf("ParamError does not unwrap to its SyntaxError")
	}
	var ee *ExclusiveError
	if !errors.As(tests[1].err, &ee) {
		t.Errorf("NegotiationError does not unwrap to its ExclusiveError")
	}
}

func TestOptKeys(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range []string{OptTLSVersion, OptTLSCipher, OptTLSCipherBits, OptAuthType, OptAuthAuthen,
		OptAuthAuthor, OptQueueID, OptDaemonName, OptClientName} {
		if !isName(k) || seen[k] {
			t.Errorf("bad or repeated AM-OPT keyword %q", k)
		}
		seen[k] = true
	}
}
