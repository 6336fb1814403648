package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/internal/peerprobe"
)

// TestResetWhileWriting (issue 17, item 6): a callout server that resets
// the OCP connection while opes-milter is writing to it (a crash with
// unread data) has failed; opes-milter must class that as the server's
// failure, not a protocol failure, whichever system call saw the reset.
// The chain's policy here is protocol = "reject", server = "tempfail": a
// reset classed by the write that saw it would refuse legitimate mail with
// 554. Large messages through real Postfix (smtp-source) meet a proxy in
// front of opes-callout that stops reading, so that opes-milter's writes
// back up and block; once they do, the proxy resets the connection. Every
// message must be tempfailed (4xx), none refused with 5xx, none lost; and
// mail flows again afterwards.
func TestResetWhileWriting(t *testing.T) {
	proxy := startProxy(t, "")
	proxy.readBuffer.Store(8 << 10)
	// No part waits for an answer before the message streams (RCPT only
	// informative, the chain without recipient-policy): the stalled proxy
	// holds back what opes-milter writes, not a RCPT it waits for. Each
	// reset fails every transaction on the connection, but counts toward
	// the breaker once per connection: with contrib's failure_limit = 5 it
	// stays closed and the next round flows at once (before, four messages
	// in flight opened it and the next round got 451).
	op := startOpesEdited(t, false, calloutAt(proxy.Addr),
		configEdit{`protocol = "tempfail"`, `protocol = "reject"`},
		configEdit{`services = ["recipient-policy", "header-tag", "disclaimer", "attachment-filter"]`,
			`services = ["header-tag", "disclaimer", "attachment-filter"]`},
		configEdit{`adaptive = ["RCPT", "RAWDATA"]`, `adaptive = ["RAWDATA"]`},
		configEdit{`informative = ["IP", "HELO", "MAIL"]`, `informative = ["IP", "HELO", "MAIL", "RCPT"]`})
	proxy.setTarget(op.CalloutAddr)
	pf := StartPostfix(t, PostfixOptions{Milter: op.PostfixSocket()})
	cp := &calloutPool{t: t, op: op, pf: pf}
	defer proxy.stalled.Store(false)

	const rounds, sessions = 3, 4
	for round := range rounds {
		// Mail flows, and the OCP connections and their service groups
		// are set up (again) while the proxy forwards everything.
		if rep := RunSource(t, SourceOptions{Addr: pf.SMTPAddr, Subject: fmt.Sprintf("before reset %d", round),
			Sessions: sessions, Messages: sessions}); cp.check(t, rep) != sessions {
			t.Fatalf("before round %d: %v", round, rep)
		}
		proxy.stalled.Store(true)
		run := StartSource(t, SourceOptions{Addr: pf.SMTPAddr, Subject: fmt.Sprintf("reset while writing %d", round),
			Sessions: sessions, Messages: sessions, Size: 3 << 20, Timeout: 2 * time.Minute})
		queued := waitWritesBlocked(t, proxy)
		if cut := proxy.reset(); cut == 0 {
			t.Fatal("no OCP connection to reset")
		}
		proxy.stalled.Store(false)
		rep := run.Wait()
		t.Logf("round %d: reset with %d bytes queued in opes-milter's socket: %v", round, queued, rep)
		cp.check(t, rep)
		if rep.Temp == 0 {
			t.Errorf("round %d: no message met the reset", round)
		}
	}
	// Mail flows again through a new OCP connection.
	rep := RunSource(t, SourceOptions{Addr: pf.SMTPAddr, Subject: "after the resets", Sessions: 2, Messages: 4})
	if delivered := cp.check(t, rep); delivered != 4 {
		t.Errorf("after the resets: %d of 4 delivered: %v", delivered, rep)
	}
}

// waitWritesBlocked waits until opes-milter's writes to the stalled proxy
// are blocked: the socket of an OCP connection holds more than 256 KiB it
// could not send, the same for half a second. It returns that amount.
func waitWritesBlocked(t *testing.T, proxy *tcpProxy) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	last, since := -1, time.Now()
	for time.Now().Before(deadline) {
		most := 0
		for _, c := range proxy.clientConns() {
			// The client's end of this connection: local = its remote.
			most = max(most, txQueue(c.RemoteAddr(), c.LocalAddr()))
		}
		if most != last {
			last, since = most, time.Now()
		} else if most > 256<<10 && time.Since(since) > 500*time.Millisecond {
			return most
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("opes-milter's writes to the stalled callout server never backed up (queued %d bytes)", last)
	return 0
}

// txQueue is peerprobe.TxQueue for net.Addrs.
func txQueue(local, remote net.Addr) int {
	l, err1 := netip.ParseAddrPort(local.String())
	r, err2 := netip.ParseAddrPort(remote.String())
	if err1 != nil || err2 != nil {
		return 0
	}
	return peerprobe.TxQueue(l, r)
}
