package builtin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/opes-milter/opes-milter/callout"
)

// clamdMaxReply bounds one clamd reply. A verdict is a short line
// ("stream: Win.Test.EICAR_HDB-1 FOUND"); a version a little longer.
const clamdMaxReply = 4 << 10

// clamdSizeLimit is clamd's answer when INSTREAM data passes its
// StreamMaxLength (clamd then closes the connection).
const clamdSizeLimit = "INSTREAM size limit exceeded"

// ClamdStreamLimit is the name of the finding made of clamd's "INSTREAM
// size limit exceeded": the message is larger than clamd's StreamMaxLength
// and was not scanned whole. It is named like clamd's own limit findings
// (Heuristics.Limits.Exceeded.MaxFileSize, ...), so that one rule
// (on_oversize) covers them all.
const ClamdStreamLimit = "Heuristics.Limits.Exceeded.StreamMaxLength"

// clampLimits is the prefix of the findings clamd reports with
// AlertExceedsMax yes, when a limit (MaxFileSize, MaxScanSize,
// MaxRecursion, MaxFiles, ...) stopped the scan.
const clampLimits = "Heuristics.Limits.Exceeded"

// errClamdReply is a clamd answer this client does not understand or that
// reports an error: a failure of the backend, never a verdict.
var errClamdReply = errors.New("clamd: unexpected reply")

// clamdVerdict is clamd's answer to one scan.
type clamdVerdict struct {
	// Signature names the finding ("" when clean).
	Signature string
	// Oversize reports a finding that says the scan was incomplete (a
	// clamd limit, or StreamMaxLength).
	Oversize bool
}

// Clean reports whether clamd found nothing.
func (v clamdVerdict) Clean() bool { return v.Signature == "" }

// parseClamdReply parses the reply to zINSTREAM (or zFILDES), without its
// NUL: "stream: OK", "stream: NAME FOUND", "INSTREAM size limit exceeded.
// ERROR", "fd[12]: OK".
// Anything else ("... ERROR", garbage) is an error wrapping errClamdReply.
func parseClamdReply(b []byte) (clamdVerdict, error) {
	s := string(bytes.TrimRight(b, "\x00\r\n"))
	if strings.HasPrefix(s, clamdSizeLimit) {
		return clamdVerdict{Signature: ClamdStreamLimit, Oversize: true}, nil
	}
	rest, ok := strings.CutPrefix(s, "stream: ")
	if !ok && strings.HasPrefix(s, "fd[") {
		// zFILDES: "fd[12]: OK"
		if i := strings.Index(s, "]: "); i > 3 && isDigits(s[3:i]) {
			rest, ok = s[i+3:], true
		}
	}
	if !ok {
		// A reply with a session number ("1: stream: OK") belongs to
		// IDSESSION, which this client does not use.
		return clamdVerdict{}, fmt.Errorf("%w: %q", errClamdReply, clip(s, 120))
	}
	switch {
	case rest == "OK":
		return clamdVerdict{}, nil
	case strings.HasSuffix(rest, " FOUND"):
		name := strings.TrimSuffix(rest, " FOUND")
		if !validSignature(name) {
			return clamdVerdict{}, fmt.Errorf("%w: bad signature name %q", errClamdReply, clip(name, 120))
		}
		return clamdVerdict{Signature: name, Oversize: strings.HasPrefix(name, clampLimits)}, nil
	}
	return clamdVerdict{}, fmt.Errorf("%w: %q", errClamdReply, clip(s, 120))
}

func isDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// validSignature accepts a signature name that can go into an SMTP reply
// and a header field as it is: 1 to 200 printable ASCII characters without
// spaces.
func validSignature(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// clip returns at most n bytes of s.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// readClamdReply reads one NUL-terminated reply of at most clamdMaxReply
// bytes. A reply cut short by the end of the connection is an error (no
// verdict comes from half a reply), except clamd's StreamMaxLength answer,
// after which clamd closes.
func readClamdReply(r *bufio.Reader) ([]byte, error) {
	var reply []byte
	for {
		frag, err := r.ReadSlice(0)
		if len(reply)+len(frag) > clamdMaxReply {
			return nil, fmt.Errorf("%w: reply over %d bytes", callout.ErrResponseTooLarge, clamdMaxReply)
		}
		reply = append(reply, frag...)
		switch {
		case err == nil:
			return reply[:len(reply)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && bytes.HasPrefix(reply, []byte(clamdSizeLimit)):
			return reply, nil
		case err == io.EOF:
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
}

// clamdClient speaks clamd's protocol over a callout.Backend: one
// connection per command, never IDSESSION (see Clamd).
type clamdClient struct {
	b     *callout.Backend
	chunk int
	// fildesMax is the size up to which a message is passed as a file
	// descriptor (zFILDES) instead of streamed (zINSTREAM); -1 for none
	// (TCP, transfer = "instream").
	fildesMax int64
	// bufs holds this client's buffers (see buf).
	bufs sync.Pool
}

// instreamCmd starts a stream; it shares the first write with the first
// chunk.
const instreamCmd = "zINSTREAM\x00"

// buf returns a buffer from the pool, room for the zINSTREAM command, a
// chunk's length, a chunk and the end chunk; putBuf gives it back.
func (c *clamdClient) buf() *[]byte {
	if b, ok := c.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, len(instreamCmd)+4+c.chunk+4)
	return &b
}

func (c *clamdClient) putBuf(b *[]byte) { c.bufs.Put(b) }

// command sends a z-command without data and returns its reply; check,
// when not nil, judges the reply (an error marks clamd down).
func (c *clamdClient) command(ctx context.Context, cmd string, check func([]byte) error) ([]byte, error) {
	conn, err := c.b.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(conn, "z"+cmd+"\x00"); err != nil {
		return nil, conn.Release(false, err)
	}
	reply, err := readClamdReply(bufio.NewReaderSize(conn, 256))
	if err == nil && check != nil {
		err = check(reply)
	}
	if err != nil {
		return nil, conn.Release(false, err)
	}
	return reply, conn.Release(false, nil)
}

// ping sends zPING and wants PONG.
func (c *clamdClient) ping(ctx context.Context) error {
	_, err := c.command(ctx, "PING", func(reply []byte) error {
		if string(reply) != "PONG" {
			return fmt.Errorf("%w to PING: %q", errClamdReply, clip(string(reply), 80))
		}
		return nil
	})
	return err
}

// version sends zVERSION: "ClamAV 1.4.6/27000/Mon Dec  7 08:00:00 2026".
func (c *clamdClient) version(ctx context.Context) (string, error) {
	reply, err := c.command(ctx, "VERSION", func(reply []byte) error {
		if !strings.HasPrefix(string(reply), "ClamAV ") {
			return fmt.Errorf("%w to VERSION: %q", errClamdReply, clip(string(reply), 80))
		}
		return nil
	})
	return string(reply), err
}

// scan streams r to clamd with zINSTREAM, in chunks, and returns the
// verdict. A failure (unreachable, too slow, an error reply) is a
// *callout.BackendError.
func (c *clamdClient) scan(ctx context.Context, r io.Reader) (clamdVerdict, error) {
	conn, err := c.b.Conn(ctx)
	if err != nil {
		return clamdVerdict{}, err
	}
	buf := c.buf()
	defer c.putBuf(buf)
	werr := c.stream(conn, r, *buf)
	if werr != nil && !isWriteError(werr) {
		// Reading the message failed: not clamd's fault.
		conn.Release(false, nil)
		return clamdVerdict{}, werr
	}
	// Even when a write failed, clamd may have answered before closing
	// (StreamMaxLength): its reply decides.
	reply, err := readClamdReply(bufio.NewReaderSize(conn, 256))
	if err != nil {
		if werr != nil {
			err = werr
		}
		return clamdVerdict{}, conn.Release(false, err)
	}
	v, err := parseClamdReply(reply)
	if err != nil {
		return clamdVerdict{}, conn.Release(false, err)
	}
	return v, conn.Release(false, nil)
}

// writeError marks a failed write to clamd.
type writeError struct{ err error }

func (e *writeError) Error() string { return "write to clamd: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

func isWriteError(err error) bool {
	var we *writeError
	return errors.As(err, &we)
}

// stream writes the zINSTREAM command, r in chunks of c.chunk bytes and
// the zero-length end chunk. buf holds the command, a chunk's length, the
// chunk and the end chunk, so that a message of one chunk goes to clamd
// in one write (each write is a wake-up of clamd's receiving thread).
func (c *clamdClient) stream(w io.Writer, r io.Reader, buf []byte) error {
	head := copy(buf, instreamCmd)
	for {
		n, err := io.ReadFull(r, buf[head+4:head+4+c.chunk])
		end := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !end {
			return fmt.Errorf("clamd: read message: %w", err)
		}
		out := buf[:head]
		if n > 0 {
			binary.BigEndian.PutUint32(buf[head:], uint32(n))
			out = buf[:head+4+n]
		}
		if end {
			out = append(out, 0, 0, 0, 0) // within buf: its last 4 bytes are for this
		}
		if len(out) > 0 {
			if _, err := w.Write(out); err != nil {
				return &writeError{err}
			}
		}
		if end {
			return nil
		}
		head = 0
	}
}
