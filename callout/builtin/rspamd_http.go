package builtin

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/opes-milter/opes-milter/callout"
)

// The HTTP/1.1 client of the rspamd service. rspamd's workers (3.4 and
// later alike) answer every request with "Connection: close", so each
// scan dials a new connection; net/http's Transport spends two goroutines,
// a write buffer and channel handoffs on every such connection, more than
// the exchange itself. This client runs the exchange on the caller's
// goroutine over a callout.Backend connection: the request's header and
// the message go out in one writev when the message is in memory, the
// answer is read through a small buffer, and a connection the server
// keeps open (an HTTP server in front of rspamd) is kept for reuse.

// rspamdField is one field of a request's header.
type rspamdField struct{ name, value string }

// validFieldValue reports whether v can be sent as an HTTP field value:
// no control characters but HTAB (RFC 9110 5.5). A value from the SMTP
// transaction that is not (a HELO with a control character) is left out
// rather than failing the scan.
func validFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// rspamdHead returns the request line and header of a request.
func rspamdHead(method, path string, fields []rspamdField, length int64) []byte {
	n := len(method) + len(path) + 64
	for _, f := range fields {
		n += len(f.name) + len(f.value) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: rspamd\r\n"...)
	if length >= 0 {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, length, 10)
		b = append(b, "\r\n"...)
	}
	for _, f := range fields {
		b = append(b, f.name...)
		b = append(b, ": "...)
		b = append(b, f.value...)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

// headWriter writes head before the first bytes written to it, in the same
// writev when the connection supports it.
type headWriter struct {
	conn net.Conn
	head []byte
}

func (w *headWriter) Write(p []byte) (int, error) {
	if w.head == nil {
		return w.conn.Write(p)
	}
	bufs := net.Buffers{w.head, p}
	n, err := bufs.WriteTo(w.conn)
	sent := int(n) - len(w.head)
	w.head = nil
	if sent < 0 {
		sent = 0
	}
	if err == nil && sent < len(p) {
		err = io.ErrShortWrite
	}
	return sent, err
}

// flush writes the head if nothing was written yet (a request without a
// body).
func (w *headWriter) flush() error {
	if w.head == nil {
		return nil
	}
	_, err := w.conn.Write(w.head)
	w.head = nil
	return err
}

// headerLimit is the reader under a response's bufio.Reader: it fails once
// more than n bytes were read, so that the response header cannot make
// the service hold more than that; the body is bounded by its reader.
type headerLimit struct {
	r    io.Reader
	n    int64 // bytes left
	read int64 // bytes read in all
}

func (l *headerLimit) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("%w: answer header over %d bytes", callout.ErrResponseTooLarge, maxRspamdHeader)
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	l.read += int64(n)
	return n, err
}

// rspamdAnswer is an HTTP answer: the status and the body.
type rspamdAnswer struct {
	status string
	code   int
	body   []byte
}

// do sends one request (with msg as its body when not nil) and reads the
// answer, whose body may hold at most max bytes. A connection reused from
// an earlier exchange that the server closed before answering is given up
// and the request sent again, on a fresh connection in the end: a POST
// with a body is not retried by anything else. A failure is a
// *callout.BackendError and marks the backend down; so does an answer
// that judge (when not nil) refuses, so that the backend's health changes
// once per exchange, as judged.
func (r *Rspamd) do(ctx context.Context, method, path string, fields []rspamdField, msg *callout.Message, max int64, judge func(rspamdAnswer) error) (rspamdAnswer, error) {
	length := int64(-1)
	if msg != nil {
		length = msg.Size()
	}
	head := rspamdHead(method, path, fields, length)
	for attempt := 0; ; attempt++ {
		conn, err := r.backend.Conn(ctx)
		if err != nil {
			return rspamdAnswer{}, err
		}
		lim := &headerLimit{r: conn, n: maxRspamdHeader}
		ans, keep, err := r.exchange(ctx, conn, lim, head, msg, max)
		// One retry at most: a message that makes the server drop the
		// connection unanswered is not sent to it again and again.
		if err != nil && attempt == 0 && conn.Reused && lim.read == 0 && ctx.Err() == nil && closedByPeer(err) {
			conn.Release(false, nil)
			continue
		}
		if err == nil && judge != nil {
			if err = judge(ans); err != nil {
				keep = false
			}
		}
		return ans, conn.Release(keep, err)
	}
}

// exchange writes the request on conn and reads the answer through lim;
// keep reports whether the connection may serve another request.
func (r *Rspamd) exchange(ctx context.Context, conn *callout.BackendConn, lim *headerLimit, head []byte, msg *callout.Message, max int64) (_ rspamdAnswer, keep bool, _ error) {
	// The connection's deadline is the exchange's; a transaction ended
	// meanwhile ends it at once. A connection whose deadline the ending
	// may still set is not kept for another exchange.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if !stop() {
			keep = false
		}
	}()
	w := &headWriter{conn: conn.Conn, head: head}
	if msg != nil {
		if _, err := msg.WriteTo(w); err != nil {
			return rspamdAnswer{}, false, err
		}
	}
	if err := w.flush(); err != nil {
		return rspamdAnswer{}, false, err
	}
	br, _ := r.readers.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReaderSize(lim, 4096)
	} else {
		br.Reset(lim)
	}
	defer func() {
		br.Reset(nil)
		r.readers.Put(br)
	}()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return rspamdAnswer{}, false, err
	}
	lim.n = math.MaxInt64 // the header is read; max bounds the body
	defer resp.Body.Close()
	var body []byte
	if cl := resp.ContentLength; cl >= 0 && cl <= max {
		body = make([]byte, cl)
		_, err = io.ReadFull(resp.Body, body)
	} else if cl > max {
		err = fmt.Errorf("%w: answer of %d bytes, over %d", callout.ErrResponseTooLarge, cl, max)
	} else {
		body, err = callout.ReadAtMost(resp.Body, max)
	}
	if err != nil {
		return rspamdAnswer{}, false, err
	}
	keep = !resp.Close && br.Buffered() == 0
	return rspamdAnswer{status: resp.Status, code: resp.StatusCode, body: body}, keep, nil
}
