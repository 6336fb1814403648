package main

import (
	"bufio"
	"encoding/binary"
	"net"
	"time"
)

// packetConn makes the go-milter client behave like an MTA on the wire:
// go-milter writes each packet in two calls (length and command, then the
// data) and reads it with several small unbuffered reads; Postfix buffers
// both ways and writes a packet with one call. packetConn gathers written
// bytes until a whole milter packet is there and sends it with one write,
// and reads through a buffer. It relies on the milter framing (a 4-byte
// big-endian length, then that many bytes), which the client always
// writes completely before it waits for a reply.
type packetConn struct {
	net.Conn
	r   *bufio.Reader
	out []byte
}

func newPacketConn(c net.Conn) *packetConn {
	return &packetConn{Conn: c, r: bufio.NewReaderSize(c, 16<<10)}
}

func (c *packetConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Write buffers p and writes every complete packet now buffered in one
// call. It reports len(p) once p is buffered.
func (c *packetConn) Write(p []byte) (int, error) {
	c.out = append(c.out, p...)
	n := 0 // bytes of complete packets at the start of c.out
	for len(c.out)-n >= 4 {
		size := int(binary.BigEndian.Uint32(c.out[n:]))
		if len(c.out)-n-4 < size {
			break
		}
		n += 4 + size
	}
	if n == 0 {
		return len(p), nil
	}
	if _, err := c.Conn.Write(c.out[:n]); err != nil {
		return 0, err
	}
	rest := copy(c.out, c.out[n:])
	c.out = c.out[:rest]
	if rest == 0 && cap(c.out) > 256<<10 { // do not keep a body chunk's worth
		c.out = nil
	}
	return len(p), nil
}

// packetDialer dials TCP and wraps the connection in a packetConn; it is
// the go-milter client's Dialer.
type packetDialer struct{ timeout time.Duration }

func (d packetDialer) Dial(network, addr string) (net.Conn, error) {
	c, err := net.DialTimeout(network, addr, d.timeout)
	if err != nil {
		return nil, err
	}
	return newPacketConn(c), nil
}
