package e2e

import (
	"strings"
	"testing"
)

// TestSpamdHarness proves the spamd harness: spamc -c and -R flag GTUBE as spam and
// pass an ordinary message, and a stopped spamd is reported by spamc.
func TestSpamdHarness(t *testing.T) {
	s := StartSpamd(t)
	spam := []byte("From: a@example.org\nTo: b@example.com\nSubject: gtube\n\n" + GTUBE + "\n")
	ham := []byte("From: a@example.org\nTo: b@example.com\nSubject: lunch\n\nSee you at noon.\n")

	tests := []struct {
		name     string
		msg      []byte
		args     []string
		wantCode int
		wantOut  string
	}{
		{"gtube score", spam, []string{"-c"}, 1, "/5.0"},
		{"gtube report", spam, []string{"-R", "-E"}, 1, "1000 GTUBE"},
		{"ham score", ham, []string{"-c"}, 0, "/5.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code, err := s.Spamc(t, tt.msg, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode || !strings.Contains(out, tt.wantOut) {
				t.Errorf("spamc %v: exit %d, output %q; want exit %d and %q\n--- spamd ---\n%s",
					tt.args, code, out, tt.wantCode, tt.wantOut, s.Output())
			}
		})
	}

	s.Stop()
	// -x turns off spamc's safe fallback, so an unreachable spamd is an error
	// (EX_UNAVAILABLE 69) rather than "0/0".
	if _, code, err := s.Spamc(t, spam, "-c", "-x", "--connect-retries=1"); err != nil || code == 0 || code == 1 {
		t.Errorf("spamc against a stopped spamd: exit %d, err %v; want an error exit", code, err)
	}
}
