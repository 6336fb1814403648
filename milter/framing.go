package milter

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// DefaultMaxPacket is the default cap on one incoming milter packet,
// command byte included. Body chunks stay within milter v6's 64 KiB - 1,
// but Postfix sends each header field in one packet of up to its
// header_size_limit (102400 bytes by default), so the cap is that plus a
// margin. Raise Options.MaxPacket with header_size_limit.
const DefaultMaxPacket = 102400 + 4096

// maxMaxPacket bounds Options.MaxPacket.
const maxMaxPacket = 1 << 30

const frameHeaderLen = 4 // uint32 big-endian length

// frameConn sits between the network and go-milter. Reads are buffered and
// handed out one validated frame at a time, so go-milter never sees a
// packet that makes it panic or allocate more than the cap. Writes are
// buffered until a frame is complete, so each reply packet leaves in one
// write call (go-milter writes header and data separately).
type frameConn struct {
	net.Conn
	r      *bufio.Reader
	max    uint32
	logger *slog.Logger
	idle   time.Duration // bound on waiting inside a transaction and inside a packet; 0 none

	readMu sync.Mutex // held by Read; lets Close release idle read buffers
	inTx   bool       // a mail transaction is open (MAIL seen, no end of message or abort yet)
	timed  bool       // a read deadline of ours is set
	until  time.Time  // that deadline
	buf    []byte     // frame buffer, reused; never larger than max+4
	frame  []byte     // unread rest of the current validated frame
	rerr   error      // sticky read error

	wbuf []byte // pending outgoing bytes (at most one partial frame)
	werr error  // sticky write error

	closeOnce sync.Once
	closeErr  error
	onClose   func()

	bufs *readBufs // where r and buf go back once reading ended; may be nil
}

func newFrameConn(c net.Conn, maxPacket uint32, logger *slog.Logger, onClose func()) *frameConn {
	return newPooledFrameConn(c, maxPacket, logger, onClose, nil)
}

// newPooledFrameConn is newFrameConn with read buffers taken from bufs and
// returned to it when the read side ends (only the reading goroutine
// touches them).
func newPooledFrameConn(c net.Conn, maxPacket uint32, logger *slog.Logger, onClose func(), bufs *readBufs) *frameConn {
	return &frameConn{
		Conn:    c,
		r:       bufs.reader(c),
		buf:     bufs.frame(),
		max:     maxPacket,
		logger:  logger,
		onClose: onClose,
		bufs:    bufs,
	}
}

// Read implements io.Reader over validated frames. Any framing error is
// sticky: go-milter gives up the connection on the first read error.
func (c *frameConn) Read(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if len(c.frame) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if err := c.readFrame(); err != nil {
			c.rerr = err
			// The read side is over (go-milter stops at the first
			// error): the buffers can serve another connection.
			c.releaseReadBufs()
			if fe, ok := err.(*FrameError); ok {
				c.logger.Warn("milter: closing connection on a bad packet",
					"remote", remoteString(c.Conn), "cmd", string(rune(fe.Cmd)),
					"len", fe.Length, "reason", fe.Reason)
			}
			return 0, err
		}
	}
	n := copy(p, c.frame)
	c.frame = c.frame[n:]
	return n, nil
}

// releaseReadBufs gives the read buffers back; c.readMu is held.
func (c *frameConn) releaseReadBufs() {
	c.bufs.release(c.r, c.buf)
	c.r, c.buf, c.frame = nil, nil, nil
}

// readFrame reads and validates one whole frame into c.frame. The frame
// buffer grows with what arrives, not with what the length promised, so a
// peer that announces a long packet and stalls holds little memory.
func (c *frameConn) readFrame() error {
	var hdr [frameHeaderLen]byte
	if c.r.Buffered() < frameHeaderLen {
		c.deadline(c.inTx) // only a read that may block needs one
	}
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return c.idleErr(err) // io.EOF at a frame boundary is a clean close
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		return &FrameError{Reason: "zero length"}
	}
	if n > c.max {
		return &FrameError{Length: n, Reason: "longer than the packet limit"}
	}
	need := frameHeaderLen + int(n)
	if c.r.Buffered() < int(n) {
		c.deadline(true) // the rest of a packet comes at once
	}
	buf := append(c.buf[:0], hdr[:]...)
	for len(buf) < need {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(need, max(2*cap(buf), frameGrowMin)))
			copy(grown, buf)
			buf = grown
		}
		k, err := c.r.Read(buf[len(buf):min(need, cap(buf))])
		buf = buf[:len(buf)+k]
		if err != nil && len(buf) < need {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return c.idleErr(err)
		}
	}
	c.buf = buf
	cmd := buf[frameHeaderLen]
	if reason := validateFrame(cmd, buf[frameHeaderLen+1:]); reason != "" {
		return &FrameError{Cmd: cmd, Length: n, Reason: reason}
	}
	switch cmd {
	case 'M': // MAIL: a transaction starts
		c.inTx = true
	case 'E', 'A', 'Q', 'K', 'C', 'H': // end of message, abort, quit, a new connection or HELO
		c.inTx = false
	}
	c.frame = buf
	return nil
}

// frameGrowMin is the first size of a frame buffer growing with its frame.
const frameGrowMin = 4096

// deadline sets the read deadline for the next read: idle from now when
// bounded, none otherwise (go-milter sets its own around its reads when it
// has a read timeout; c.idle includes it). A deadline of ours that still
// lies more than 7/8 of idle ahead is kept: the wait stays bounded by
// between 7/8 of idle and idle, and the packets of a transaction set it
// about once instead of once each (every set is a timer update in the
// runtime, which showed in the CPU per message).
func (c *frameConn) deadline(bounded bool) {
	switch {
	case bounded && c.idle > 0:
		now := time.Now()
		if c.timed && c.until.Sub(now) > c.idle-c.idle/8 {
			return
		}
		c.until = now.Add(c.idle)
		_ = c.Conn.SetReadDeadline(c.until)
		c.timed = true
	case c.timed:
		_ = c.Conn.SetReadDeadline(time.Time{})
		c.timed = false
	}
}

// SetReadDeadline sets the connection's read deadline for whoever reads
// through c (go-milter does around its reads when it has a read timeout):
// ours is then no longer the one set, and the next bounded read sets it
// again.
func (c *frameConn) SetReadDeadline(t time.Time) error {
	c.timed = false
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline is SetReadDeadline and the write deadline at once.
func (c *frameConn) SetDeadline(t time.Time) error {
	c.timed = false
	return c.Conn.SetDeadline(t)
}

// idleErr logs a read that ended on our idle deadline.
func (c *frameConn) idleErr(err error) error {
	if c.timed && errors.Is(err, os.ErrDeadlineExceeded) {
		c.logger.Warn("milter: closing an idle MTA connection (inside a mail transaction or a packet)",
			"remote", remoteString(c.Conn), "idle", c.idle)
	}
	return err
}

// Write buffers p and writes every complete frame in one call. Complete
// modification frames (end of message) are held back until a reply frame
// follows or 64 KiB are pending, so the modifications and the final reply
// of a message usually leave in one write.
func (c *frameConn) Write(p []byte) (int, error) {
	if c.werr != nil {
		return 0, c.werr
	}
	c.wbuf = append(c.wbuf, p...)
	done := flushPoint(c.wbuf)
	if done == 0 {
		return len(p), nil
	}
	_, err := c.Conn.Write(c.wbuf[:done])
	c.wbuf = c.wbuf[:copy(c.wbuf, c.wbuf[done:])]
	if err != nil {
		c.werr = err
		return 0, err
	}
	quickAck(c.Conn)
	return len(p), nil
}

// maxHeldBack bounds the modification frames held back by Write.
const maxHeldBack = 64 << 10

// flushPoint returns how much of b to write now: the whole frames up to the
// last one that is not a modification, or every whole frame once more than
// maxHeldBack bytes are pending.
func flushPoint(b []byte) int {
	off, flush := 0, 0
	for len(b)-off >= frameHeaderLen+1 {
		n := uint64(binary.BigEndian.Uint32(b[off:]))
		if uint64(len(b)-off) < frameHeaderLen+n {
			break
		}
		cmd := b[off+frameHeaderLen]
		off += frameHeaderLen + int(n)
		if !isModification(cmd) {
			flush = off
		}
	}
	if off > maxHeldBack {
		return off
	}
	return flush
}

// isModification reports whether cmd is an end-of-message modification
// (SMFIR_ADDRCPT, DELRCPT, ADDRCPT_PAR, REPLBODY, CHGFROM, ADDHEADER,
// INSHEADER, CHGHEADER, QUARANTINE), always followed by a final reply.
func isModification(cmd byte) bool {
	switch cmd {
	case '+', '-', '2', 'b', 'e', 'h', 'i', 'm', 'q':
		return true
	}
	return false
}

// Close closes the connection once; it is safe for concurrent use.
func (c *frameConn) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.Conn.Close()
		// go-milter closes after the MTA's QUIT without reading to the
		// end, so the read buffers go back here. A Read blocked in
		// another goroutine fails now and gives them back itself.
		if c.readMu.TryLock() {
			if c.rerr == nil {
				c.rerr = net.ErrClosed
			}
			if c.r != nil {
				c.releaseReadBufs()
			}
			c.readMu.Unlock()
		}
		if c.onClose != nil {
			c.onClose()
		}
	})
	return c.closeErr
}

func remoteString(c net.Conn) string {
	if a := c.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

// frameListener wraps accepted connections in frameConn, registers them
// with the server and retries transient accept failures (EMFILE ...) with
// a backoff instead of letting go-milter's Serve return.
type frameListener struct {
	net.Listener
	max      uint32
	logger   *slog.Logger
	conns    *tracker
	bufs     readBufs
	maxConns int           // 0: no cap
	idle     time.Duration // frameConn.idle
	refused  time.Time     // when a refusal was last logged

	once sync.Once
	done chan struct{}
}

func newFrameListener(ln net.Listener, maxPacket uint32, logger *slog.Logger, conns *tracker) *frameListener {
	return &frameListener{Listener: ln, max: maxPacket, logger: logger, conns: conns, done: make(chan struct{})}
}

// Accept returns the next connection, wrapped.
func (l *frameListener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil && l.maxConns > 0 && l.conns.count() >= l.maxConns {
			// Over the cap: closed at once, so the MTA applies its
			// default action now instead of waiting in the backlog.
			_ = c.Close()
			if time.Since(l.refused) > time.Second {
				l.refused = time.Now()
				l.logger.Warn("milter: too many MTA connections, closing new ones", "max_connections", l.maxConns)
			}
			continue
		}
		if err == nil {
			fc := newPooledFrameConn(c, l.max, l.logger, nil, &l.bufs)
			fc.idle = l.idle
			if !l.conns.add(fc) {
				_ = c.Close()
				return nil, net.ErrClosed
			}
			return fc, nil
		}
		if !transientAcceptError(err) {
			return nil, err
		}
		delay = min(max(2*delay, 5*time.Millisecond), time.Second)
		l.logger.Warn("milter: accept failed, retrying", "err", err, "delay", delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-l.done:
			t.Stop()
			return nil, net.ErrClosed
		}
	}
}

// Close stops Accept, including one waiting in its backoff.
func (l *frameListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

func transientAcceptError(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
