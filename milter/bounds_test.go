package milter

import (
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"
)

// TestPartialFrameMemory: connections that announce a long packet (just
// under the cap) and send only its first bytes hold memory for what
// arrived, not for what the length promised.
func TestPartialFrameMemory(t *testing.T) {
	h := &fakeHandler{req: allEvents}
	_, addr := startServer(t, h, Options{})
	const conns = 200
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range conns {
		r := dialRaw(t, addr)
		r.negotiate()
		r.sendLen(DefaultMaxPacket-10, []byte{'L', 'X', '-', 'A', 0})
	}
	time.Sleep(200 * time.Millisecond) // the server reads what arrived
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("heap grew %d KiB for %d partial packets of %d bytes", grew>>10, conns, DefaultMaxPacket-10)
	if per := grew / conns; per > 24<<10 {
		t.Errorf("%d KiB held per partial packet, want what arrived (a few KiB)", per>>10)
	}
}

// TestMaxConnections: beyond MaxConnections a new MTA connection is closed
// at once; when one ends, a new one is served again.
func TestMaxConnections(t *testing.T) {
	h := &fakeHandler{req: allEvents}
	_, addr := startServer(t, h, Options{MaxConnections: 2})
	a, b := dialRaw(t, addr), dialRaw(t, addr)
	a.negotiate()
	b.negotiate()
	c := dialRaw(t, addr)
	c.expectClosed()
	a.c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		d := dialRaw(t, addr)
		if d.tryNegotiate() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no connection served after one of the two ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIdleInsideTransaction: a connection idle after MAIL longer than
// IdleTimeout is closed (its session ends and frees its slot); one idle
// between transactions is not.
func TestIdleInsideTransaction(t *testing.T) {
	h := &fakeHandler{req: allEvents}
	_, addr := startServer(t, h, Options{IdleTimeout: 300 * time.Millisecond})
	between := dialRaw(t, addr)
	between.negotiate()
	between.send('H', []byte("client.example\x00")...)
	inTx := dialRaw(t, addr)
	inTx.negotiate()
	inTx.send('M', []byte("<a@example.org>\x00")...)
	start := time.Now()
	inTx.expectClosed()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed after %v", d)
	}
	if !between.open() {
		t.Fatal("a connection idle between transactions was closed")
	}
}

// tryNegotiate is negotiate that reports failure instead of failing.
func (r *rawMTA) tryNegotiate() bool {
	var d []byte
	d = binary.BigEndian.AppendUint32(d, 6)
	d = binary.BigEndian.AppendUint32(d, 0x1ff)
	d = binary.BigEndian.AppendUint32(d, 0x1fffff)
	if _, err := r.c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(d)+1)), append([]byte{'O'}, d...)...)); err != nil {
		return false
	}
	cmd, _, err := r.recv()
	return err == nil && cmd == 'O'
}

// open reports whether the server keeps the connection open: after any
// replies, nothing arrives for a moment and it is not closed.
func (r *rawMTA) open() bool {
	_ = r.c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	defer r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := r.recv()
		if err == nil {
			continue // a reply
		}
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout()
	}
}

// deadlineConn hands out one frame per Read, as a socket does when each
// packet arrives on its own, and records the read deadlines set.
type deadlineConn struct {
	net.Conn // nil: only the methods below are used
	frames   [][]byte
	sets     []time.Time
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	if len(c.frames) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.frames[0])
	if c.frames[0] = c.frames[0][n:]; len(c.frames[0]) == 0 {
		c.frames = c.frames[1:]
	}
	return n, nil
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.sets = append(c.sets, t)
	return nil
}

// TestIdleDeadlineOncePerTransaction: the packets of a transaction that
// arrive one by one set the idle deadline once (it is kept while it lies
// more than 7/8 of the idle time ahead), and leaving the transaction
// clears it once.
func TestIdleDeadlineOncePerTransaction(t *testing.T) {
	dc := &deadlineConn{frames: [][]byte{
		frame('M', "<a@example.org>\x00"),
		frame('R', "<b@example.org>\x00"), frame('R', "<c@example.org>\x00"),
		frame('L', "Subject\x00x\x00"), frame('N', ""), frame('B', "body\r\n"),
		frame('E', ""), frame('Q', ""),
	}}
	fc := newFrameConn(dc, DefaultMaxPacket, slog.New(slog.DiscardHandler), nil)
	fc.idle = time.Minute
	if _, err := io.Copy(io.Discard, fc); err != nil {
		t.Fatal(err)
	}
	if len(dc.sets) != 2 || dc.sets[0].IsZero() || !dc.sets[1].IsZero() {
		t.Fatalf("read deadlines set %v, want one idle deadline and one clear", dc.sets)
	}
	if d := time.Until(dc.sets[0]); d < 50*time.Second || d > time.Minute {
		t.Errorf("idle deadline %v ahead, want about a minute", d)
	}
}

// TestIdleDeadlineAfterAnotherSet: a read deadline set by someone else
// through the connection (go-milter's read timeout, which clears it again
// after each packet) makes the next read of the transaction set the idle
// deadline again, so the wait stays bounded.
func TestIdleDeadlineAfterAnotherSet(t *testing.T) {
	dc := &deadlineConn{frames: [][]byte{
		frame('M', "<a@example.org>\x00"), frame('R', "<b@example.org>\x00"), frame('R', "<c@example.org>\x00"),
	}}
	fc := newFrameConn(dc, DefaultMaxPacket, slog.New(slog.DiscardHandler), nil)
	fc.idle = time.Minute
	buf := make([]byte, 64)
	for range 3 {
		if _, err := fc.Read(buf); err != nil {
			t.Fatal(err)
		}
		if err := fc.SetReadDeadline(time.Time{}); err != nil { // go-milter's clear after a packet
			t.Fatal(err)
		}
	}
	// MAIL's read is outside the transaction; each RCPT read follows a
	// clear and sets the idle deadline again.
	var idle int
	for _, d := range dc.sets {
		if !d.IsZero() {
			idle++
		}
	}
	if idle != 2 {
		t.Fatalf("read deadlines set %v, want the idle deadline set again after each clear (2)", dc.sets)
	}
}
