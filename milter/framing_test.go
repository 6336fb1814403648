package milter

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/bridge"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

func TestValidateFrame(t *testing.T) {
	tests := []struct {
		cmd  byte
		data string
		ok   bool
	}{
		{'O', "123456789012", true},
		{'O', "12345678901", false},
		{'C', "host\x004\x00\x19192.0.2.1\x00", true},
		{'C', "host\x006\x00\x19IPv6:2001:db8::1\x00", true},
		{'C', "host\x00L\x00\x00/run/x\x00", true},
		{'C', "host\x00U", true},
		{'C', "host", false},
		{'C', "host\x00", false},
		{'C', "host\x004\x00", false},
		{'C', "host\x004\x00\x19192.0.2.1", false},
		{'C', "host\x00Z", false},
		{'H', "helo\x00", true},
		{'H', "helo", false},
		{'H', "", false},
		{'M', "<a@x>\x00SIZE=1\x00", true},
		{'M', "<a@x>", false},
		{'R', "<b@y>\x00", true},
		{'R', "", false},
		{'L', "Subject\x00 hi\x00", true},
		{'L', "Subject\x00\x00", true},
		{'L', "\x00value\x00", false},
		{'L', "Subject\x00", false},
		{'L', "Subject\x00 hi", false},
		{'L', "a\x00b\x00c\x00", false},
		{'D', "C", true},
		{'D', "Cv\x00Postfix\x00", true},
		{'D', "Cv\x00Postfix", false},
		{'D', "", false},
		{'U', "XYZ\x00", true},
		{'U', "", false},
		{'B', "", true},
		{'B', "any\x00bytes", true},
		{'A', "", true}, {'E', "", true}, {'K', "", true}, {'N', "", true}, {'Q', "", true}, {'T', "", true},
		{'Z', "", false},
		{0, "", false},
	}
	for _, tt := range tests {
		if got := validateFrame(tt.cmd, []byte(tt.data)); (got == "") != tt.ok {
			t.Errorf("validateFrame(%q, %q) = %q, want ok %v", tt.cmd, tt.data, got, tt.ok)
		}
	}
}

// scriptConn is a net.Conn reading from a buffer and counting writes.
type scriptConn struct {
	net.Conn // nil: only the methods below are used
	r        io.Reader
	mu       sync.Mutex
	writes   [][]byte
}

func (c *scriptConn) Read(p []byte) (int, error) { return c.r.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}
func (c *scriptConn) Close() error         { return nil }
func (c *scriptConn) RemoteAddr() net.Addr { return nil }

func frame(cmd byte, data string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(data)+1))
	return append(append(b, cmd), data...)
}

func TestFrameConnWrites(t *testing.T) {
	sc := &scriptConn{r: bytes.NewReader(nil)}
	fc := newFrameConn(sc, DefaultMaxPacket, slog.New(slog.DiscardHandler), nil)
	// go-milter writes header and command, then the data.
	f := frame('y', "550 5.7.1 no\x00")
	for _, part := range [][]byte{f[:5], f[5:]} {
		if n, err := fc.Write(part); n != len(part) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	// a frame without data is complete at once
	fc.Write(frame('c', ""))
	// two frames in one call, then a partial one
	two := append(frame('h', "X\x00 y\x00"), frame('p', "")...)
	fc.Write(append(two, frame('b', "body")[:6]...))
	want := [][]byte{f, frame('c', ""), two}
	if len(sc.writes) != len(want) {
		t.Fatalf("%d writes, want %d: %q", len(sc.writes), len(want), sc.writes)
	}
	for i := range want {
		if !bytes.Equal(sc.writes[i], want[i]) {
			t.Errorf("write %d = %q, want %q", i, sc.writes[i], want[i])
		}
	}
	// a completed modification frame waits for the reply that follows it
	fc.Write(frame('b', "body")[6:])
	if len(sc.writes) != len(want) {
		t.Fatalf("modification frame written before its reply: %q", sc.writes[len(sc.writes)-1])
	}
	fc.Write(frame('a', ""))
	if last := sc.writes[len(sc.writes)-1]; !bytes.Equal(last, append(frame('b', "body"), frame('a', "")...)) {
		t.Errorf("modification and reply written as %q", last)
	}
}

func TestFrameConnHoldsBackAtMost64K(t *testing.T) {
	sc := &scriptConn{r: bytes.NewReader(nil)}
	fc := newFrameConn(sc, DefaultMaxPacket, slog.New(slog.DiscardHandler), nil)
	chunk := frame('b', string(bytes.Repeat([]byte("x"), 60000)))
	fc.Write(chunk)
	if len(sc.writes) != 0 {
		t.Fatal("one body chunk was not held back")
	}
	fc.Write(chunk)
	if len(sc.writes) != 1 || len(sc.writes[0]) != 2*len(chunk) {
		t.Fatalf("writes %d, want one of both chunks", len(sc.writes))
	}
}

func TestFrameConnReads(t *testing.T) {
	good := append(frame('O', "123456789012"), frame('B', "chunk")...)
	in := append(append([]byte(nil), good...), frame('C', "no-nul")...)
	fc := newFrameConn(&scriptConn{r: bytes.NewReader(in)}, DefaultMaxPacket, slog.New(slog.DiscardHandler), nil)
	got, err := readFrames(fc)
	if !bytes.Equal(got, good) {
		t.Errorf("read %q, want %q", got, good)
	}
	var fe *FrameError
	if !errors.Is(err, ErrBadFrame) || !errors.As(err, &fe) || fe.Cmd != 'C' {
		t.Errorf("error %v, want a FrameError for 'C'", err)
	}
	if _, err2 := fc.Read(make([]byte, 1)); err2 != err {
		t.Errorf("error not sticky: %v", err2)
	}
}

// readFrames reads like go-milter: a 4-byte length, then the packet.
func readFrames(r io.Reader) ([]byte, error) {
	var out []byte
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return out, err
		}
		b := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(r, b); err != nil {
			return out, err
		}
		out = append(append(out, hdr[:]...), b...)
	}
}

// oneConnListener hands out one connection, then blocks until closed.
type oneConnListener struct {
	c    chan net.Conn
	done chan struct{}
	once sync.Once
}

func newOneConnListener(c net.Conn) *oneConnListener {
	l := &oneConnListener{c: make(chan net.Conn, 1), done: make(chan struct{})}
	l.c <- c
	return l
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.c:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *oneConnListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *oneConnListener) Addr() net.Addr { return &net.TCPAddr{} }

var optneg = frame('O', "\x00\x00\x00\x06\x00\x00\x01\xff\x00\x1f\xff\xff")

// FuzzFrameReader feeds arbitrary bytes (1) to the frame reader, checking
// that it only hands out valid frames of bounded size, and (2) after a
// valid negotiation, to a real go-milter server session: a panic there
// would crash the fuzzer.
func FuzzFrameReader(f *testing.F) {
	f.Add(append(frame('C', "h\x004\x00\x19192.0.2.1\x00"), frame('Q', "")...))
	f.Fuzz(func(t *testing.T, in []byte) {
		const maxPacket = 4096
		fc := newFrameConn(&scriptConn{r: bytes.NewReader(in)}, maxPacket, slog.New(slog.DiscardHandler), nil)
		got, _ := readFrames(fc)
		if !bytes.HasPrefix(in, got) {
			t.Fatalf("reader changed the bytes")
		}
		for len(got) > 0 {
			n := binary.BigEndian.Uint32(got)
			if n == 0 || n > maxPacket {
				t.Fatalf("frame of length %d passed", n)
			}
			if r := validateFrame(got[4], got[5:4+n]); r != "" {
				t.Fatalf("invalid frame passed: %s", r)
			}
			got = got[4+n:]
		}

		h := &fakeHandler{req: allEvents}
		srv := NewServer(h, Options{Logger: slog.New(slog.DiscardHandler), MaxPacket: maxPacket,
			ReadTimeout: time.Second, WriteTimeout: time.Second})
		mtaEnd, milterEnd := net.Pipe()
		served := make(chan error, 1)
		go func() { served <- srv.Serve(newOneConnListener(milterEnd)) }()
		drained := make(chan struct{})
		go func() { _, _ = io.Copy(io.Discard, mtaEnd); close(drained) }()
		_ = mtaEnd.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, _ = mtaEnd.Write(append(append([]byte(nil), optneg...), in...))
		_ = mtaEnd.Close()
		<-drained
		_ = srv.Close()
		<-served
	})
}

// countingListener counts the Write calls on its connections.
type countingListener struct {
	net.Listener
	mu     sync.Mutex
	writes int
}

type countingConn struct {
	net.Conn
	l *countingListener
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, l: l}, nil
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.l.mu.Lock()
	c.l.writes++
	c.l.mu.Unlock()
	return c.Conn.Write(p)
}

// TestOneWritePerPacket: every packet to the MTA leaves in one write call
// (go-milter alone makes two for a packet with data).
func TestOneWritePerPacket(t *testing.T) {
	h := &fakeHandler{req: allEvents}
	h.eom = func(_ context.Context, mod bridge.Modifier) bridge.Reply {
		_ = mod.AddHeader("X-A", " 1")
		_ = mod.AddHeader("X-B", " 2")
		return bridge.Reply{Kind: bridge.Reject, SMTP: ocpsmtp.Reply{Code: 554, Text: "5.7.1 no"}}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	srv := NewServer(h, Options{Logger: slog.New(slog.DiscardHandler)})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(cl) }()
	s := mta(t, ln.Addr().String())
	runTo(t, s, "eom") // 8 replies before EOM
	_ = s.Close()
	h.waitLog(t, "close")
	_ = srv.Close()
	<-served
	// OPTNEG answer + 8 replies + (2 ADDHEADER + REPLYCODE in one write)
	if cl.writes != 10 {
		t.Errorf("%d write calls for 12 packets, want 10", cl.writes)
	}
}

// TestFrameConnCloseReleasesReadBuffers: go-milter closes after QUIT
// without reading to the end; the read buffers must still go back to the
// pool (with Postfix, one connection per SMTP session, they were never
// reused before), and a later Read must fail instead of touching them.
func TestFrameConnCloseReleasesReadBuffers(t *testing.T) {
	var bufs readBufs
	in := append(frame('O', "123456789012"), frame('Q', "")...)
	fc := newPooledFrameConn(&scriptConn{r: bytes.NewReader(in)}, DefaultMaxPacket, slog.New(slog.DiscardHandler), nil, &bufs)
	if _, err := io.ReadFull(fc, make([]byte, 4+13)); err != nil {
		t.Fatal(err)
	}
	if err := fc.Close(); err != nil {
		t.Fatal(err)
	}
	if fc.r != nil || fc.buf != nil {
		t.Fatal("read buffers kept after Close")
	}
	if _, err := fc.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v, want net.ErrClosed", err)
	}
}
