package bridge_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/internal/ocptest"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// The wire tests play a callout server byte by byte against the bridge and
// compare the whole conversation, the bridge's exact bytes included, with
// a golden transcript in testdata/wire (the format of testdata/profile,
// docs/profile.md 16). Run with -update to rewrite the files after a
// deliberate change, and read the diff.

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata/wire")

// wirePeer is a scripted OCP callout server at the byte level: it accepts
// one connection, runs the script on it, then records what the bridge still
// sends until it closes the connection.
type wirePeer struct {
	t    *testing.T
	addr string
	done chan struct{}

	mu   sync.Mutex
	wire *ocptest.Wire // the connection, recorded
	errs []string
}

// wireConn is the accepted connection as the script sees it.
type wireConn struct {
	p *wirePeer
	w *ocptest.Wire
}

// startWire serves script on a loopback port.
func startWire(t *testing.T, script func(c *wireConn)) *wirePeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &wirePeer{t: t, addr: ln.Addr().String(), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer ln.Close()
		nc, err := ln.Accept()
		if err != nil {
			p.fail("accept: %v", err)
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(20 * time.Second))
		c := &wireConn{p: p, w: ocptest.NewWire(nc, false)}
		p.mu.Lock()
		p.wire = c.w
		p.mu.Unlock()
		if c.run(script) {
			// Whatever the bridge still sends, up to its end of the
			// connection, is part of the transcript.
			for c.recv() != nil {
			}
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return p
}

// errStop ends a script early; the failure is recorded already.
var errStop = errors.New("script stopped")

// run runs the script and reports whether it finished normally.
func (c *wireConn) run(script func(c *wireConn)) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			if r != errStop {
				panic(r)
			}
			ok = false
		}
	}()
	script(c)
	return true
}

func (p *wirePeer) fail(format string, args ...any) {
	p.mu.Lock()
	p.errs = append(p.errs, fmt.Sprintf(format, args...))
	p.mu.Unlock()
}

// recv decodes the bridge's next message and records its exact octets; nil
// at the end of the connection.
func (c *wireConn) recv() *ocp.Message {
	m, err := c.w.Recv()
	if err != nil {
		if !errors.Is(err, io.EOF) {
			c.p.fail("reading the bridge: %v", err)
		}
		return nil
	}
	if enc, wire := ocp.AppendMessage(nil, m), c.w.Received(); !bytes.Equal(enc, wire) {
		c.p.fail("the bridge sent a message not in canonical form:\n%q\n%q", wire, enc)
	}
	return m
}

// expect receives the next message, which must be called name.
func (c *wireConn) expect(name string) *ocp.Message {
	m := c.recv()
	if m == nil || m.Name != name {
		got := "end of connection"
		if m != nil {
			got = m.Name
		}
		c.p.fail("want %s from the bridge, got %s", name, got)
		panic(errStop)
	}
	return m
}

// dums receives the bridge's messages up to its AME and returns the DUMs
// of data parts.
func (c *wireConn) dums() []*ocp.Message {
	var out []*ocp.Message
	for {
		m := c.recv()
		switch {
		case m == nil:
			c.p.fail("connection ended before the bridge's AME")
			panic(errStop)
		case m.Name == ocp.MsgAME:
			return out
		case m.Name == ocp.MsgDUM:
			if d, _ := ocpsmtp.ParseData(m); d.Part.Data() {
				out = append(out, m)
			}
		}
	}
}

// send writes one message of the server, recorded as it goes out.
func (c *wireConn) send(m *ocp.Message) {
	c.sendRaw(string(ocp.AppendMessage(nil, m)))
}

// sendRaw writes octets as they are.
func (c *wireConn) sendRaw(wire string) {
	if err := c.w.SendRaw(wire); err != nil {
		c.p.fail("writing to the bridge: %v", err)
		panic(errStop)
	}
}

// note adds a comment line to the transcript.
func (c *wireConn) note(format string, args ...any) { c.w.Note(format, args...) }

// handshake plays the server's side of the connection setup: CS, the
// empty connection-scope NR, and for each service group the NR that answer
// returns for the bridge's offer (nil: the offer itself).
func (c *wireConn) handshake(groups int, answer func(sg int64, offer ocpsmtp.Profile) *ocp.Message) {
	c.expect(ocp.MsgCS)
	c.expect(ocp.MsgNO)
	c.send(&ocp.Message{Name: ocp.MsgCS})
	c.send(&ocp.Message{Name: ocp.MsgNR})
	for i := 0; i < groups; i++ {
		sgc := c.expect(ocp.MsgSGC)
		sg, _ := sgc.AnonUint(0)
		no := c.expect(ocp.MsgNO)
		f, err := ocp.ParseFeature(no.Anon[0].(ocp.List)[0])
		if err != nil {
			c.p.fail("offer: %v", err)
			panic(errStop)
		}
		offer, err := ocpsmtp.ParseProfile(f)
		if err != nil {
			c.p.fail("offer: %v", err)
			panic(errStop)
		}
		var nr *ocp.Message
		if answer != nil {
			nr = answer(sg, offer)
		}
		if nr == nil {
			nr = nrFor(sg, offer)
		}
		c.send(nr)
	}
}

// nrFor is the NR selecting profile p for service group sg.
func nrFor(sg int64, p ocpsmtp.Profile) *ocp.Message {
	return &ocp.Message{Name: ocp.MsgNR, Anon: []ocp.Value{p.Feature().Value()},
		Named: []ocp.Param{ocp.NewParam(ocp.ParamSG, ocp.Num(sg))}}
}

// duy is the server's DUY of a whole processor DUM.
func duy(m *ocp.Message, named ...ocp.Param) *ocp.Message {
	off, _ := m.AnonUint(1)
	return &ocp.Message{Name: ocp.MsgDUY, Anon: []ocp.Value{m.Anon[0], ocp.Num(off), ocp.Num(int64(len(m.Payload)))}, Named: named}
}

// dum is a server DUM at adapted offset off.
func dum(xid, off int64, d ocpsmtp.Data, payload string) *ocp.Message {
	return &ocp.Message{Name: ocp.MsgDUM, Anon: []ocp.Value{ocp.Num(xid), ocp.Num(off)}, Named: d.Params(),
		Payload: []byte(payload), HasPayload: true}
}

// simple builds a server message with anonymous values.
func simple(name string, anon ...ocp.Value) *ocp.Message {
	return &ocp.Message{Name: name, Anon: anon}
}

// wait waits for the connection to end and compares the transcript with
// testdata/wire/name (comment heads the file).
func (p *wirePeer) wait(t *testing.T, name, comment string) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the scripted connection did not end")
	}
	p.mu.Lock()
	errs := p.errs
	var got []byte
	if p.wire != nil {
		got = p.wire.Log()
	}
	p.mu.Unlock()
	for _, e := range errs {
		t.Error(e)
	}
	ocptest.CompareGolden(t, filepath.Join("testdata", "wire", name), comment, got, *update)
}
