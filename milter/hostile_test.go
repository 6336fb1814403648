package milter

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/opes-milter/opes-milter/bridge"
)

var connectV4 = []byte("client\x004\x00\x19192.0.2.1\x00")

// TestHostileInput sends packets that crash or bloat go-milter v0.10.1:
// each ends its own connection, the server keeps serving.
func TestHostileInput(t *testing.T) {
	tests := []struct {
		name      string
		negotiate bool
		send      func(r *rawMTA)
	}{
		{"zero length before negotiation", false, func(r *rawMTA) { r.sendLen(0, nil) }},
		{"zero length", true, func(r *rawMTA) { r.sendLen(0, nil) }},
		{"connect without NUL", true, func(r *rawMTA) { r.send('C', []byte("hostname")...) }},
		{"connect without family", true, func(r *rawMTA) { r.send('C', []byte("hostname\x00")...) }},
		{"connect without port", true, func(r *rawMTA) { r.send('C', []byte("h\x004\x00")...) }},
		{"connect bad family", true, func(r *rawMTA) { r.send('C', []byte("h\x00X")...) }},
		{"mail without NUL", true, func(r *rawMTA) { r.send('M', []byte("<a@x>")...) }},
		{"rcpt empty", true, func(r *rawMTA) { r.send('R') }},
		{"header with one string", true, func(r *rawMTA) { r.send('L', []byte("Subject\x00")...) }},
		{"macro without NUL", true, func(r *rawMTA) { r.send('D', []byte("Cv\x00Postfix")...) }},
		{"unknown command", true, func(r *rawMTA) { r.send('Z') }},
		{"2 GB length", true, func(r *rawMTA) { r.sendLen(2<<30, []byte{'B'}) }},
		{"496 MiB length", true, func(r *rawMTA) { r.sendLen(496<<20, []byte{'B'}) }},
		{"just over the cap", true, func(r *rawMTA) { r.sendLen(DefaultMaxPacket+1, []byte{'B'}) }},
		{"second negotiation", true, func(r *rawMTA) { r.send('O', make([]byte, 12)...) }},
	}
	logs := &logBuf{}
	h := &fakeHandler{req: allEvents}
	srv, addr := startServer(t, h, Options{Logger: logs.logger()})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := dialRaw(t, addr)
			if tt.negotiate {
				r.negotiate()
			}
			tt.send(r)
			r.expectClosed()
			// the server still serves
			s := mta(t, addr)
			if a := must(t)(s.Conn("h", gomilter.FamilyInet, 25, "192.0.2.1")); a.Type != gomilter.ActionContinue {
				t.Errorf("fresh connection answered %v", a)
			}
			_ = s.Close()
		})
	}
	if !strings.Contains(logs.String(), "bad packet") {
		t.Errorf("bad packets not logged:\n%s", logs.String())
	}
	_ = srv.Close()
	assertBalanced(t, h)
}

// assertBalanced checks that every session was closed exactly once.
func assertBalanced(t *testing.T, h *fakeHandler) {
	t.Helper()
	calls := h.log()
	if n, c := count(calls, "new"), count(calls, "close"); n != c {
		t.Errorf("%d sessions, %d closes", n, c)
	}
}

func count(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// TestHostileMemory announces huge packets on many connections; the heap
// must not grow with the announced sizes.
func TestHostileMemory(t *testing.T) {
	h := &fakeHandler{req: allEvents}
	_, addr := startServer(t, h, Options{})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 20 {
		r := dialRaw(t, addr)
		r.negotiate()
		r.sendLen(496<<20, []byte{'B', 'x'})
		r.expectClosed()
		_ = r.c.Close()
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Errorf("allocated %d MiB for 20 hostile connections", grew>>20)
	}
}

// TestOutOfOrder sends commands in an order no MTA uses; the server
// answers them and the bridge sessions stay balanced.
func TestOutOfOrder(t *testing.T) {
	h := &fakeHandler{req: allEvents}
	srv, addr := startServer(t, h, Options{})
	r := dialRaw(t, addr)
	r.negotiate()
	steps := []struct {
		cmd   byte
		data  string
		reply byte // 0: none expected
	}{
		{'B', "body first", 'c'},
		{'E', "", 'a'},
		{'M', "<a@x>\x00", 'c'},
		{'R', "<b@y>\x00", 'c'},
		{'C', string(connectV4), 'c'},
		{'H', "h\x00", 'c'},
		{'N', "", 'c'},
		{'T', "", 'c'},
		{'A', "", 0},
		{'A', "", 0},
		{'K', "", 0},
		{'L', "Subject\x00 x\x00", 'c'},
		{'E', "", 'a'},
		{'U', "XYZZY\x00", 0}, // SMFIP_NR_UNKN: no reply
		{'H', "again\x00", 'c'},
	}
	for _, st := range steps {
		r.send(st.cmd, []byte(st.data)...)
		if st.reply == 0 {
			continue
		}
		cmd, _, err := r.recv()
		if err != nil || cmd != st.reply {
			t.Fatalf("after %q: reply %q, %v; want %q", st.cmd, cmd, err, st.reply)
		}
	}
	r.send('Q')
	r.expectClosed()
	s := mta(t, addr)
	must(t)(s.Conn("h", gomilter.FamilyInet, 25, "192.0.2.1"))
	_ = s.Close()
	_ = srv.Close()
	assertBalanced(t, h)
}

// TestKeepAlive: with ProgressInterval, PROGRESS packets precede a slow
// reply: at every event for Postfix, only at end of message for Sendmail.
func TestKeepAlive(t *testing.T) {
	for _, tt := range []struct {
		mta          string
		rcptProgress bool
	}{{"Postfix 3.7.11", true}, {"8.17.1", false}} {
		t.Run(tt.mta, func(t *testing.T) {
			h := &fakeHandler{req: allEvents}
			h.reply = func(ev, _ string) bridge.Reply {
				if ev == "rcpt" {
					time.Sleep(60 * time.Millisecond)
				}
				return bridge.Reply{}
			}
			h.eom = func(ctx context.Context, _ bridge.Modifier) bridge.Reply {
				time.Sleep(60 * time.Millisecond)
				return bridge.Reply{}
			}
			_, addr := startServer(t, h, Options{ProgressInterval: 10 * time.Millisecond})
			r := dialRaw(t, addr)
			r.negotiate()
			r.send('D', []byte("Cv\x00"+tt.mta+"\x00")...)
			replies := func() []byte {
				var got []byte
				for {
					cmd, _, err := r.recv()
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, cmd)
					if cmd != 'p' {
						return got
					}
				}
			}
			for _, st := range []struct {
				cmd  byte
				data string
			}{{'C', string(connectV4)}, {'H', "h\x00"}, {'M', "<a@x>\x00"}} {
				r.send(st.cmd, []byte(st.data)...)
				if got := replies(); string(got) != "c" {
					t.Fatalf("reply to %q: %q", st.cmd, got)
				}
			}
			r.send('R', []byte("<b@y>\x00")...)
			got := replies()
			if hasP := slices.Contains(got, 'p'); hasP != tt.rcptProgress || got[len(got)-1] != 'c' {
				t.Errorf("rcpt replies %q, progress wanted: %v", got, tt.rcptProgress)
			}
			r.send('E')
			got = replies()
			if !slices.Contains(got, 'p') || got[len(got)-1] != 'a' {
				t.Errorf("eom replies %q, want progress then accept", got)
			}
			r.send('Q')
		})
	}
}
