package e2e

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// floodHook answers the processor's AME with n messages that write
// produces (one each), from a goroutine, and stops as soon as the
// processor ends the transaction: a hostile callout server flooding
// opes-milter with what it may not ask of the MTA. It honours the
// processor's flow control (DWP, DWM), so what stops it is a limit on what
// it asks for, not on how fast it sends.
func floodHook(n int, write func(c *rogueConn, xid int64, i int) string) rogueHook {
	var stopped, paused atomic.Bool
	return func(c *rogueConn, m *ocp.Message) (bool, error) {
		switch m.Name {
		case ocp.MsgTE:
			stopped.Store(true)
			return false, nil
		case ocp.MsgDWP:
			paused.Store(true)
			return true, nil
		case ocp.MsgDWM:
			paused.Store(false)
			return true, nil
		case ocp.MsgAME:
			xid, _ := m.AnonUint(0)
			stopped.Store(false)
			go func() {
				for i := 0; i < n && !stopped.Load(); i++ {
					for paused.Load() && !stopped.Load() {
						time.Sleep(time.Millisecond)
					}
					if c.raw(write(c, xid, i)) != nil {
						return
					}
				}
				_ = c.raw(c.ame(xid))
			}()
			return true, nil
		}
		return false, nil
	}
}

// TestHostileAnswerFloods: a callout server that floods opes-milter with
// header additions, added recipients or a huge adapted body, through a real
// Postfix, one message of smtp-source for each flood (the rogue server's
// flood is one transaction at a time): each gets the failure policy (a 4xx
// at end of data under the default tempfail), the failure is counted as the
// server's protocol failure, nothing is delivered, and opes-milter's peak
// RSS stays under 64 MiB (before the limits: 1.11 GB RSS for the
// Add-Header flood).
func TestHostileAnswerFloods(t *testing.T) {
	r := startRogue(t)
	metrics := FreeAddr(t)
	op := startOpesEdited(t, true, calloutAt(r.Addr), metricsAt(metrics),
		configEdit{`failure_limit = 5`, `failure_limit = 1000`})
	pf := StartPostfix(t, PostfixOptions{Milter: op.PostfixSocket()})
	// 50 KB of header field value, folded into lines of 900 octets.
	header := strings.TrimSuffix(strings.Repeat(strings.Repeat("h", 900)+"\r\n ", 55), "\r\n ")
	chunk := strings.Repeat("b", 1<<20)
	cases := []struct {
		name  string
		limit string // the limit the log names
		hook  rogueHook
	}{
		{"10,000 Add-Header of 50 KB", "max_header_change_bytes", floodHook(10000, func(c *rogueConn, xid int64, i int) string {
			return c.dum(xid, ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA, AddHeader: fmt.Sprintf("X-Flood-%d: %s", i, header)}, "")
		})},
		{"200,000 added recipients", "max_added_recipients", floodHook(200000, func(c *rogueConn, xid int64, i int) string {
			return c.dum(xid, ocpsmtp.Data{Part: ocpsmtp.PartRCPT}, fmt.Sprintf("<added%d@example.com>", i))
		})},
		{"64 MiB adapted message", "max_adapted_size", floodHook(65, func(c *rogueConn, xid int64, i int) string {
			if i == 0 {
				return c.dum(xid, ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA}, "Subject: adapted\r\n\r\n")
			}
			return c.dum(xid, ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA}, chunk)
		})},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := scrape(t, metrics)
			r.setScript(serveWith(tc.hook))
			waitOCPConnections(t, metrics, 0)
			rep := RunSource(t, SourceOptions{Addr: pf.SMTPAddr, Subject: fmt.Sprintf("flood %d", i), Messages: 1})
			t.Logf("%s: %v", tc.name, rep)
			rep.Check(t)
			if rep.Temp != 1 || rep.At("end of data") != 1 {
				t.Errorf("want the tempfail policy (a 4xx) at end of data, got %v", rep.Refused)
			}
			if st, err := ReadProcStatus(op.Milter.Pid()); err == nil {
				t.Logf("opes-milter VmHWM after %s: %s (RSS %s)", tc.name, MiB(st.HWM), MiB(st.RSS))
			}
			if !Eventually(5*time.Second, func() bool { return strings.Contains(op.Milter.Output(), "(milter."+tc.limit+")") }) {
				t.Errorf("opes-milter's log does not name %s", tc.limit)
			}
			after := scrape(t, metrics)
			if d := after.Sum("opes_milter_adaptation_failures_total", `class="protocol"`) -
				before.Sum("opes_milter_adaptation_failures_total", `class="protocol"`); d != 1 {
				t.Errorf("%v protocol failures counted, want 1", d)
			}
		})
	}
	r.setScript(serveCorrectly)
	if msgs, _ := pf.Sink.Messages(); len(msgs) != 0 {
		t.Errorf("%d flooded message(s) delivered", len(msgs))
	}
	st, err := ReadProcStatus(op.Milter.Pid())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("opes-milter peak RSS (VmHWM) through the floods: %s", MiB(st.HWM))
	if st.HWM > 64<<20 {
		t.Errorf("opes-milter peak RSS %s, want under 64 MiB", MiB(st.HWM))
	}
}
