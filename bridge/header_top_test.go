package bridge_test

import (
	"testing"

	"github.com/opes-milter/opes-milter/internal/ocptest"
)

// TestAddHeaderTop: fields sent with Add-Header-At: top are inserted at
// index 0 in the order received (so the first ends up on top), the others
// appended.
func TestAddHeaderTop(t *testing.T) {
	co := startCallout(t, scriptServer(ocptest.Answers{Raw: func([]byte) ocptest.RawAnswer {
		return ocptest.RawAnswer{AddHeaders: []string{"top:Authentication-Results: mx.example; dkim=pass", "X-End: 1", "top:X-Second: 2"}}
	}}))
	m := startMilter(t, testPolicy(co.Addr, skeletonAdaptive, skeletonInformative))
	s := m.session(t)
	_, mods, final := sendMessage(t, s, "sender@example.org", []string{"a@example.com"}, "body\r\n")
	wantFinal(t, final, ActionAccept)
	var top []string
	for _, m := range mods {
		if m.Type == ActionInsertHeader && m.HeaderIndex == 0 {
			top = append(top, m.HeaderName+":"+m.HeaderValue)
		}
	}
	// Inserted at 0 last-first: X-Second, then Authentication-Results.
	if len(top) != 2 || top[0] != "X-Second: 2" || top[1] != "Authentication-Results: mx.example; dkim=pass" {
		t.Errorf("inserted at the top: %q (all: %+v)", top, mods)
	}
	if end := findMods(mods, ActionAddHeader, "X-End"); len(end) != 1 {
		t.Errorf("X-End: %+v", end)
	}
}
