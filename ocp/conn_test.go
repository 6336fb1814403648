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

// TestCorkOneWrite: messages sent while corked leave in one write when
// uncorked, not one write each.
func TestCorkOneWrite(t *testing.T) {
	c, cc, got := newCountingConn(t)
	c.cork()
	if err := c.send(dum(100), true); err != nil {
		t.Fatal(err)
	}
	if err := c.send(&Message{Name: MsgAME, Anon: []Value{Num(1)}}, true); err != nil {
		t.Fatal(err)
	}
	if err := c.send(&Message{Name: MsgTE, Anon: []Value{Num(1)}}, false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if n := cc.writes.Load(); n != 0 {
		t.Fatalf("%d writes while corked", n)
	}
	c.uncork()
	deadline := time.Now().Add(5 * time.Second)
	for cc.writes.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if n := cc.writes.Load(); n != 1 {
		t.Fatalf("%d writes after uncork, want 1", n)
	}
	cc.Conn.Close()
	if b := <-got; !bytes.HasSuffix(b, []byte("AME 1;\r\nTE 1;\r\n")) {
		t.Fatalf("wire %q", b)
	}
}

// TestCorkBounded: a cork holds back at most highWater octets; a larger
// burst flows (and its sender waits for the writer as usual), so a
// corked sender can neither deadlock nor pile up a whole message.
func TestCorkBounded(t *testing.T) {
	c, cc, _ := newCountingConn(t)
	c.cork()
	defer c.uncork()
	sent := make(chan error, 1)
	go func() {
		for i := 0; i < 32; i++ { // 2 MiB
			if err := c.send(dum(64<<10), true); err != nil {
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
	pending := len(c.out)
	c.mu.Unlock()
	if pending > 2*highWater {
		t.Fatalf("%d octets held back", pending)
	}
}
