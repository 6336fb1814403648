package main

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// recConn records each Write call.
type recConn struct {
	net.Conn
	writes [][]byte
}

func (c *recConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func packet(cmd byte, data string) []byte {
	p := binary.BigEndian.AppendUint32(nil, uint32(len(data)+1))
	return append(append(p, cmd), data...)
}

func TestPacketConnCoalesces(t *testing.T) {
	a, b := packet('H', "Subject\x00hi\x00"), packet('E', "")
	tests := []struct {
		name   string
		writes [][]byte // what go-milter writes
		want   [][]byte // what reaches the socket
	}{
		{"header then data", [][]byte{a[:5], a[5:]}, [][]byte{a}},
		{"no data", [][]byte{b}, [][]byte{b}},
		{"length split", [][]byte{a[:2], a[2:5], a[5:9], a[9:]}, [][]byte{a}},
		{"two packets, one write", [][]byte{append(bytes.Clone(a), b...)}, [][]byte{append(bytes.Clone(a), b...)}},
		{"packet and a half", [][]byte{append(bytes.Clone(a), b[:3]...), b[3:]}, [][]byte{a, b}},
		{"incomplete", [][]byte{a[:7]}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recConn{}
			c := newPacketConn(rec)
			for _, w := range tt.writes {
				if n, err := c.Write(w); err != nil || n != len(w) {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if len(rec.writes) != len(tt.want) {
				t.Fatalf("%d socket writes %q; want %d", len(rec.writes), rec.writes, len(tt.want))
			}
			for i := range tt.want {
				if !bytes.Equal(rec.writes[i], tt.want[i]) {
					t.Errorf("write %d = %q; want %q", i, rec.writes[i], tt.want[i])
				}
			}
		})
	}
}

func TestPacketDialerReads(t *testing.T) {
	ln := listen(t)
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		_, _ = c.Write(buf[:n])
	}()
	c, err := packetDialer{timeout: time.Second}.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := packet('c', "")
	if _, err := c.Write(p); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(p))
	for n := 0; n < len(p); {
		m, err := c.Read(got[n:])
		if err != nil {
			t.Fatal(err)
		}
		n += m
	}
	if !bytes.Equal(got, p) {
		t.Errorf("echo %q; want %q", got, p)
	}
}
