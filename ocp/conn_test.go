package ocp

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the writes that reach the transport.
type countingConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// newCountingConn returns a conn over a pipe whose far end is read into
// the returned channel (closed at EOF).
func newCountingConn(t *testing.T) (*conn, *countingConn, <-chan []byte) {
	t.Helper()
	near, far := net.Pipe()
	cc := &countingConn{Conn: near}
	c := newConn(cc, Limits{}, nil)
	got := make(chan []byte)
	go func() {
		defer close(got)
		all, _ := io.ReadAll(far)
		got <- all
	}()
	t.Cleanup(func() { c.fail(&ConnError{Result: Failure("test over")}) })
	return c, cc, got
}

func dum(size int) *Message {
	return &Message{Name: MsgDUM, Anon: []Value{Num(1), Num(0)}, Payload: bytes.Repeat([]byte("x"), size), HasPayload: true}
}

// TestCorkOneWrite: a corked transaction's messages leave in one write
// when uncorked, not one write each, and another transaction's output is
// not held back meanwhile.
func TestCorkOneWrite(t *testing.T) {
	c, cc, got := newCountingConn(t)
	var st stage
	c.cork(&st)
	for _, m := range []*Message{dum(100), {Name: MsgAME, Anon: []Value{Num(1)}}} {
		if err := c.sendStaged(&st, m, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.sendStaged(&st, &Message{Name: MsgTE, Anon: []Value{Num(1)}}, false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if n := cc.writes.Load(); n != 0 {
		t.Fatalf("%d writes while corked", n)
	}
	// Another transaction is not held back by this one's cork.
	if err := c.send(&Message{Name: MsgDWM, Anon: []Value{Num(2)}}, false); err != nil {
		t.Fatal(err)
	}
	waitWrites(t, cc, 1)
	c.uncork(&st)
	waitWrites(t, cc, 2)
	time.Sleep(20 * time.Millisecond)
	if n := cc.writes.Load(); n != 2 {
		t.Fatalf("%d writes, want 2", n)
	}
	cc.Conn.Close()
	if b := <-got; !bytes.HasPrefix(b, []byte("DWM 2;\r\n")) || !bytes.HasSuffix(b, []byte("AME 1;\r\nTE 1;\r\n")) {
		t.Fatalf("wire %q", b)
	}
}

func waitWrites(t *testing.T, cc *countingConn, n int32) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for cc.writes.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes, want %d", cc.writes.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCorkBounded: a cork holds back at most highWater octets; a larger
// burst flows (and its sender waits for the writer as usual), so a
// corked sender can neither deadlock nor pile up a whole message.
func TestCorkBounded(t *testing.T) {
	c, cc, _ := newCountingConn(t)
	var st stage
	c.cork(&st)
	defer c.uncork(&st)
	sent := make(chan error, 1)
	go func() {
		for i := 0; i < 32; i++ { // 2 MiB
			if err := c.sendStaged(&st, dum(64<<10), true); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	select {
	case err := <-sent:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("corked sender blocked")
	}
	if cc.writes.Load() == 0 {
		t.Fatal("nothing written although the cork's bound was passed")
	}
	c.mu.Lock()
	held := len(c.out) + len(st.buf)
	c.mu.Unlock()
	if held > 3*highWater {
		t.Fatalf("%d octets held back", held)
	}
}

// TestWriteResetIsRemote: a peer that resets the connection while we write
// (a crashed server) ends it as the peer's failure (Remote), the same as
// when the reset is seen by a read.
func TestWriteResetIsRemote(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			accepted <- nc
		}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(nc, Limits{}, nil)
	defer c.fail(&ConnError{Result: Failure("test over")})
	peer := <-accepted
	// SO_LINGER 0: close sends RST, as the kernel does for a crashed
	// process with unread input.
	peer.(*net.TCPConn).SetLinger(0)
	peer.Close()
	deadline := time.Now().Add(5 * time.Second)
	for c.connErr() == nil && time.Now().Before(deadline) {
		if err := c.send(dum(64<<10), true); err != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	e := c.connErr()
	if e == nil {
		t.Fatal("the connection did not end")
	}
	if !e.Remote {
		t.Errorf("a reset seen while writing ended the connection as %v (Remote=false), want the peer's failure", e)
	}
}
