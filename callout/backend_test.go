package callout

import (
	"bufio"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseBackendAddress(t *testing.T) {
	for _, tt := range []struct{ in, network, addr string }{
		{"unix:/run/clamd.sock", "unix", "/run/clamd.sock"},
		{"/run/clamd.sock", "unix", "/run/clamd.sock"},
		{"tcp:127.0.0.1:3310", "tcp", "127.0.0.1:3310"},
		{"127.0.0.1:3310", "tcp", "127.0.0.1:3310"},
		{"[::1]:3310", "tcp", "[::1]:3310"},
		{"inet:3310@127.0.0.1", "tcp", "127.0.0.1:3310"},
	} {
		n, a, err := ParseBackendAddress(tt.in)
		if err != nil || n != tt.network || a != tt.addr {
			t.Errorf("%q: %q %q %v, want %q %q", tt.in, n, a, err, tt.network, tt.addr)
		}
	}
	for _, bad := range []string{"", "unix:", "localhost", ":3310", "tcp:host"} {
		if _, _, err := ParseBackendAddress(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// echoServer answers each line with the same line, keeping connections open.
func echoServer(t *testing.T, network, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					c.Write([]byte(l))
				}
			}()
		}
	}()
	return ln
}

func TestBackendReuseAndHealth(t *testing.T) {
	ln := echoServer(t, "unix", filepath.Join(t.TempDir(), "s"))
	b, err := NewBackend(BackendOptions{Name: "echo", Address: "unix:" + ln.Addr().String(), MaxIdle: 1, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := range 2 {
		c, err := b.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if c.Reused != (i == 1) {
			t.Errorf("exchange %d: reused %v", i, c.Reused)
		}
		c.Write([]byte("ping\n"))
		line, err := ReadLine(bufio.NewReader(c), 64)
		if err != nil || string(line) != "ping" {
			t.Fatalf("%q %v", line, err)
		}
		if err := c.Release(true, nil); err != nil {
			t.Fatal(err)
		}
	}
	if h := b.Health(); !h.Up || h.Name != "echo" {
		t.Errorf("health %+v", h)
	}
	// A connection in use when the backend is closed (a reload) is not
	// kept when released.
	c, err := b.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := c.Release(true, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(b.idle); n != 0 {
		t.Fatalf("%d idle connections kept after Close", n)
	}
	ln.Close()
	_, err = b.Conn(context.Background())
	var be *BackendError
	if !errors.As(err, &be) || be.Backend != "echo" {
		t.Fatalf("dial to a closed socket: %v, want a *BackendError", err)
	}
	if h := b.Health(); h.Up || h.Err == "" {
		t.Errorf("health after a failed dial %+v", h)
	}
}

func TestBackendSlotsBounded(t *testing.T) {
	ln := echoServer(t, "tcp", "127.0.0.1:0")
	b, err := NewBackend(BackendOptions{Name: "echo", Address: ln.Addr().String(), MaxConns: 1, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := b.Conn(context.Background()); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("second connection over MaxConns: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("waited %v for a slot, timeout is 100ms", d)
	}
	c.Release(false, nil)
	c2, err := b.Conn(context.Background())
	if err != nil {
		t.Fatalf("slot not given back: %v", err)
	}
	c2.Release(false, errors.New("bad answer"))
	if h := b.Health(); h.Up {
		t.Error("a failed exchange left the backend up")
	}
}

func TestReadLineBounded(t *testing.T) {
	r := bufio.NewReaderSize(strings.NewReader(strings.Repeat("x", 100)+"\r\nok\n"), 16)
	if _, err := ReadLine(r, 50); !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("long line: %v", err)
	}
	r = bufio.NewReader(strings.NewReader("stream: OK\r\n"))
	if l, err := ReadLine(r, 50); err != nil || string(l) != "stream: OK" {
		t.Fatalf("%q %v", l, err)
	}
	if _, err := ReadAtMost(strings.NewReader("12345"), 4); !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("ReadAtMost: %v", err)
	}
	if b, err := ReadAtMost(strings.NewReader("1234"), 4); err != nil || string(b) != "1234" {
		t.Fatalf("ReadAtMost: %q %v", b, err)
	}
}
