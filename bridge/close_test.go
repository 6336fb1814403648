package bridge_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/internal/ocptest"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// bridgeGoroutines returns the stacks of goroutines running bridge code
// started by the bridge itself (receivers, pool goroutines).
func bridgeGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "bridge.(*Bridge).spawn") || strings.Contains(g, "bridge.(*pool).spawn") ||
			strings.Contains(g, "bridge.(*exchange).receive") || strings.Contains(g, "bridge.(*pool).closeWhenIdle") ||
			strings.Contains(g, "bridge.(*exchange).setFail") || strings.Contains(g, "bridge.(*exchange).abort") {
			out = append(out, g)
		}
	}
	return out
}

// TestCloseWaitsForItsGoroutines covers issue 13's "Bridge.Close waits for
// what it started": with a transaction in flight on a pool a reload retired
// (its connection draining) and the exchange's receiver running, Close
// returns only once every goroutine the bridge started has ended.
func TestCloseWaitsForItsGoroutines(t *testing.T) {
	co := startCallout(t, scriptServer(ocptest.Answers{RCPT: func(string) string { return "hang" }}))
	pol := testPolicy(co.Addr, skeletonAdaptive, skeletonInformative)
	pol.Timeouts.Rcpt = 10 * time.Second
	m := startMilter(t, pol)
	s := m.session(t)
	if _, err := s.Mail("a@example.org", ""); err != nil {
		t.Fatal(err)
	}
	rcptDone := make(chan struct{})
	go func() { // the server never answers it; Close ends the wait
		defer close(rcptDone)
		s.Rcpt("b@example.com", "")
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !sawRcpt(co.Messages()) {
		if time.Now().After(deadline) {
			t.Fatal("the RCPT did not reach the callout server")
		}
		time.Sleep(5 * time.Millisecond)
	}
	m.br.Reload(testPolicy(co.Addr, skeletonAdaptive, skeletonInformative))
	if len(bridgeGoroutines()) == 0 {
		t.Fatal("no bridge goroutine found before Close: the test cannot see them")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { m.br.Close(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("Close did not return")
	}
	// The MTA's RCPT (the test's goroutine in the session) fails now.
	select {
	case <-rcptDone:
	case <-ctx.Done():
		t.Fatal("the RCPT did not return after Close")
	}
	// A goroutine whose WaitGroup.Done let Close return may still be on
	// its way out (its closure's last line, runnable): give those a
	// moment; one that still runs bridge code after it is a leak.
	left := bridgeGoroutines()
	for end := time.Now().Add(time.Second); len(left) > 0 && time.Now().Before(end); left = bridgeGoroutines() {
		time.Sleep(10 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Fatalf("%d goroutine(s) of the bridge outlive Close:\n%s", len(left), strings.Join(left, "\n\n"))
	}
}

func sawRcpt(ms []*ocp.Message) bool {
	for _, m := range ms {
		if d, err := ocpsmtp.ParseData(m); err == nil && m.Name == ocp.MsgDUM && d.Part == ocpsmtp.PartRCPT {
			return true
		}
	}
	return false
}
