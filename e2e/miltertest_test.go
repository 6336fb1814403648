package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestMiltertestHarness proves the miltertest harness: testdata/miltertest/harness.lua
// drives the harness milter through two messages on one connection, and a failing
// script is reported as an error. It also keeps make-run-smoke.lua honest.
func TestMiltertestHarness(t *testing.T) {
	milterAddr, stats := startHarnessMilter(t)
	socket := fmt.Sprintf("inet:%d@%s", milterAddr.Port, milterAddr.IP)

	out, err := Miltertest(t, "harness.lua", map[string]string{"MILTER": socket})
	if err != nil {
		t.Fatalf("miltertest: %v\n%s", err, out)
	}
	if !strings.Contains(out, "harness.lua: ok") {
		t.Errorf("script did not finish:\n%s", out)
	}
	if got := stats.connections.Load(); got != 1 {
		t.Errorf("milter saw %d connections, want 1", got)
	}
	if got, want := stats.messages.Load(), int64(2); got != want {
		t.Errorf("milter saw %d messages, want %d", got, want)
	}
	if got := stats.rejected.Load(); got != 1 {
		t.Errorf("milter rejected %d recipients, want 1", got)
	}

	// make-run-smoke.lua (run by .ci/miltertest.sh against make run) passes against
	// any milter that accepts ordinary mail, such as the harness milter.
	if out, err := Miltertest(t, "make-run-smoke.lua", map[string]string{"MILTER": socket}); err != nil {
		t.Errorf("make-run-smoke.lua: %v\n%s", err, out)
	}

	// Without the MILTER define the script's first assert fails.
	if out, err := Miltertest(t, "harness.lua", nil); err == nil {
		t.Errorf("miltertest without MILTER succeeded:\n%s", out)
	}
}
