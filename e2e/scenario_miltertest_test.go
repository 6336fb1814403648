package e2e

import (
	"strings"
	"testing"
)

// TestScenarioMiltertestScripts runs the make-run-*.lua scripts that take a
// MILTER define against opes-milter and opes-callout with the shipped
// configuration on fresh ports, as .ci/miltertest.sh runs them against
// `make run`: header, body and recipient changes, checked with
// mt.eom_check.
func TestScenarioMiltertestScripts(t *testing.T) {
	op := StartOpes(t, OpesOptions{})
	for _, script := range []string{
		"make-run-headers.lua", "make-run-body.lua", "make-run-recipients.lua", "make-run-services.lua",
	} {
		t.Run(strings.TrimSuffix(script, ".lua"), func(t *testing.T) {
			out, err := Miltertest(t, script, map[string]string{"MILTER": op.SendmailSocket()})
			if err != nil {
				t.Fatalf("miltertest %s: %v\n%s", script, err, out)
			}
			if want := script + ": ok"; script != "make-run-services.lua" && !strings.Contains(out, want) {
				t.Errorf("%s did not finish:\n%s", script, out)
			}
		})
	}
}
