package peerprobe

import (
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"
)

func TestParseProcAddr(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"0100007F:1F90", "127.0.0.1:8080", true},
		{"00000000:0019", "0.0.0.0:25", true},
		{"00000000000000000000000001000000:0050", "[::1]:80", true},
		{"0000000000000000FFFF00000100007F:0050", "127.0.0.1:80", true},
		{"0100007F", "", false},
		{"XYZ:0050", "", false},
	}
	for _, tt := range tests {
		got, ok := ParseProcAddr(tt.in)
		if ok != tt.ok || (ok && got != netip.MustParseAddrPort(tt.want)) {
			t.Errorf("ParseProcAddr(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestListening(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if !Listening(addr) {
		t.Fatalf("%s not seen listening", addr)
	}
	ln.Close()
	if Listening(addr) || Listening("nonsense") {
		t.Error("a closed or bad address seen listening")
	}
}

// TestProbesDown: every probe says no, quickly, for a peer that is not
// there.
func TestProbesDown(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if Clamd("tcp", addr) || Clamd("unix", filepath.Join(t.TempDir(), "none")) || Spamd(addr) || Rspamd(addr) || ICAP(addr, "avscan") {
		t.Error("a probe answered yes for a peer that is not there")
	}
}

// TestProbesUp: each probe recognises its peer's answer (a fake that
// answers as the real one does) and not another's.
func TestProbesUp(t *testing.T) {
	serve := func(reply string) string {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
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
				buf := make([]byte, 512)
				c.Read(buf)
				c.Write([]byte(reply))
				c.Close()
			}
		}()
		return ln.Addr().String()
	}
	clamd := serve("PONG\x00")
	spamd := serve("SPAMD/1.5 0 PONG\r\n")
	rspamd := serve("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\npong\n")
	icap := serve("ICAP/1.0 200 OK\r\n\r\n")
	if !Clamd("tcp", clamd) || !Spamd(spamd) || !Rspamd(rspamd) || !ICAP(icap, "avscan") {
		t.Error("a probe did not recognise its peer")
	}
	if Clamd("tcp", spamd) || Spamd(clamd) || Rspamd(icap) || ICAP(rspamd, "avscan") {
		t.Error("a probe took another peer's answer for its own")
	}
}

// TestTxQueue: what a writer could not hand to a peer that does not read
// shows in its socket's tx_queue.
func TestTxQueue(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	local, remote := netip.MustParseAddrPort(c.LocalAddr().String()), netip.MustParseAddrPort(c.RemoteAddr().String())
	if n := TxQueue(local, remote); n != 0 {
		t.Fatalf("tx_queue %d before any write", n)
	}
	go c.Write(make([]byte, 32<<20)) // far more than the buffers take; s never reads
	deadline := time.Now().Add(5 * time.Second)
	for TxQueue(local, remote) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("tx_queue stayed 0 while the peer did not read")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
