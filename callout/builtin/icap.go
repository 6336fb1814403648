package builtin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// DefaultICAPOptionsTTL is how long an OPTIONS answer without Options-TTL
// is used before it is asked again.
const DefaultICAPOptionsTTL = 60 * time.Second

// maxICAPOptionsTTL caps an Options-TTL, in seconds (a larger one would
// overflow a time.Duration): a year.
const maxICAPOptionsTTL = 365 * 24 * 3600

// icapAdaptedSlack bounds an adapted message: the original's size plus
// this much.
const icapAdaptedSlack = 16 << 20

// ICAP scans or adapts each message with an ICAP server (kind icap, RFC
// 3507), so that any ICAP antivirus or DLP server (c-icap with virus_scan,
// the commercial ones) becomes an OPES mail service. The message goes as
// the body of an encapsulated HTTP response (Content-Type message/rfc822)
// in a RESPMOD request, with Allow: 204 and, when the server asks for it in
// OPTIONS, a preview of its first bytes.
//
// What the server answers decides:
//   - 204 No Content (in preview or after the whole message): unchanged,
//     with the verdict header;
//   - 200 with X-Infection-Found or X-Violations-Found, or with an
//     encapsulated HTTP status other than 2xx (a 403 block page): a finding
//     with the on_virus outcome; the block page is never delivered;
//   - 200 with an encapsulated 2xx and a body: the adapted content, which
//     becomes the adapted message (unless it is byte for byte the original),
//     spooled as it arrives and bounded by the original's size plus
//     icapAdaptedSlack; content that is not a mail message (a Content-Type
//     other than message/rfc822, no header section) is the service's
//     failure, never delivered;
//   - anything else, or no answer within the timeout: the service's
//     failure (*callout.BackendError), never a pass.
//
// OPTIONS is asked first and again after its Options-TTL, or as soon as a
// response carries another ISTag than the OPTIONS did: Methods must
// list RESPMOD; Preview, Allow: 204 and Max-Connections are honoured (the
// connections are the smaller of max_connections and the server's
// Max-Connections). Connections are kept alive and reused; a reused
// connection that the server closed meanwhile is retried once on a fresh
// one.
type ICAP struct {
	b       *callout.Backend
	u       *url.URL
	preview bool
	policy  scanPolicy
	limit   connLimit

	mu      sync.Mutex
	opts    icapOptions
	optsExp time.Time
}

// NewICAP returns the service for opts.
func NewICAP(name string, opts *mapping.ICAP) (*ICAP, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || u.Scheme != "icap" || u.Host == "" {
		return nil, fmt.Errorf("icap: bad url %q", opts.URL)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "1344")
	}
	maxc := opts.MaxConnections
	if maxc <= 0 {
		maxc = mapping.DefaultICAPMaxConnection
	}
	b, err := callout.NewBackend(callout.BackendOptions{
		Name: name, Address: host, Timeout: opts.Timeout, MaxConns: maxc, MaxIdle: maxc,
	})
	if err != nil {
		return nil, err
	}
	sp, err := newScanPolicy(opts.ScanPolicy)
	if err != nil {
		return nil, err
	}
	return &ICAP{b: b, u: u, preview: opts.Preview, policy: sp, limit: newConnLimit(maxc)}, nil
}

// Needs implements Service.
func (s *ICAP) Needs() callout.Needs {
	return callout.Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartRAWDATA}}
}

// engine names the server in the verdict header: the Service its OPTIONS
// named, else its URL.
func (s *ICAP) engine() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.Service != "" {
		return s.opts.Service
	}
	return "ICAP " + s.u.Host + s.u.Path
}

// options returns the service's OPTIONS, asking when they expired.
func (s *ICAP) options(ctx context.Context) (icapOptions, error) {
	s.mu.Lock()
	o, exp := s.opts, s.optsExp
	s.mu.Unlock()
	if time.Now().Before(exp) {
		return o, nil
	}
	o, err := s.askOptions(ctx)
	if err != nil {
		return o, err
	}
	s.setOptions(o)
	return o, nil
}

// setOptions keeps o for its Options-TTL and applies its Max-Connections
// (max_connections again when the server no longer says it).
func (s *ICAP) setOptions(o icapOptions) {
	ttl := DefaultICAPOptionsTTL
	if o.TTL > 0 {
		ttl = time.Duration(min(o.TTL, maxICAPOptionsTTL)) * time.Second
	}
	s.mu.Lock()
	s.opts, s.optsExp = o, time.Now().Add(ttl)
	s.mu.Unlock()
	if o.MaxConnections > 0 {
		s.limit.set(o.MaxConnections)
	} else {
		s.limit.set(cap(s.limit.slots))
	}
}

func (s *ICAP) askOptions(ctx context.Context) (icapOptions, error) {
	var o icapOptions
	err := s.exchange(ctx, func(conn *callout.BackendConn, w *bufio.Writer, r *bufio.Reader) (bool, error) {
		fmt.Fprintf(w, "OPTIONS %s ICAP/1.0\r\nHost: %s\r\nEncapsulated: null-body=0\r\n\r\n", s.u.String(), s.u.Host)
		if err := w.Flush(); err != nil {
			return false, err
		}
		resp, err := readICAPResponse(r)
		if err != nil {
			return false, err
		}
		if resp.HasBody {
			if err := readChunked(r, icapMaxHeaders, nil); err != nil {
				return false, err
			}
		}
		if resp.Status != 200 {
			return false, fmt.Errorf("%w: OPTIONS answered %d", errICAP, resp.Status)
		}
		if o, err = parseOptions(resp.Header); err != nil {
			return false, err
		}
		if !slices.Contains(o.Methods, "RESPMOD") {
			return false, fmt.Errorf("%w: service %s offers %v, not RESPMOD", errICAP, s.u.Path, o.Methods)
		}
		return keepAlive(resp), nil
	})
	return o, err
}

func keepAlive(resp *icapResponse) bool {
	for _, v := range resp.Header.Values("Connection") {
		if bytes.EqualFold([]byte(v), []byte("close")) {
			return false
		}
	}
	return true
}

// exchange runs fn on a connection within the connection limit; fn reports
// whether the connection may be reused. A reused connection found closed by
// the server (end of file or reset before anything was read) is retried
// once on a fresh one; any other failure (a timeout) is not.
func (s *ICAP) exchange(ctx context.Context, fn func(*callout.BackendConn, *bufio.Writer, *bufio.Reader) (bool, error)) error {
	if err := s.limit.acquire(ctx, s.b.Timeout()); err != nil {
		return &callout.BackendError{Backend: s.b.Name(), Err: err}
	}
	defer s.limit.release()
	for attempt := 0; ; attempt++ {
		conn, err := s.b.Conn(ctx)
		if err != nil {
			return err
		}
		cr := &readCounter{r: conn}
		r := bufio.NewReaderSize(cr, 4096)
		w := bufio.NewWriterSize(conn, 32<<10)
		keep, err := fn(conn, w, r)
		if err != nil && conn.Reused && cr.n == 0 && attempt == 0 && ctx.Err() == nil && closedByPeer(err) {
			conn.Release(false, nil)
			continue
		}
		if err != nil {
			var fe *findingError
			if errors.As(err, &fe) {
				// Not the server's failure: drop the connection only.
				conn.Release(false, nil)
				return err
			}
		}
		return conn.Release(keep && r.Buffered() == 0, err)
	}
}

// closedByPeer reports an error that says the server closed the
// connection.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

type readCounter struct {
	r io.Reader
	n int64
}

func (c *readCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// findingError carries a local failure out of an exchange (reading the
// message, the spool) that is not the server's fault.
type findingError struct{ err error }

func (e *findingError) Error() string { return e.err.Error() }
func (e *findingError) Unwrap() error { return e.err }

// icapResult is the outcome of one RESPMOD.
type icapResult struct {
	istag     string // the response's ISTag
	unchanged bool
	found     string
	adapted   *callout.Message
}

// AdaptMessage implements MessageAdapter.
func (s *ICAP) AdaptMessage(ctx context.Context, tx *callout.Tx, msg *callout.Message) (callout.Decision, error) {
	o, err := s.options(ctx)
	if err != nil {
		return callout.Decision{}, err
	}
	var res icapResult
	err = s.exchange(ctx, func(conn *callout.BackendConn, w *bufio.Writer, r *bufio.Reader) (bool, error) {
		res = icapResult{}
		return s.respmod(tx, msg, o, w, r, &res)
	})
	if err != nil {
		if res.adapted != nil {
			res.adapted.Close()
		}
		var fe *findingError
		if errors.As(err, &fe) {
			return callout.Decision{}, fe.err
		}
		if ctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded) {
			return callout.Decision{}, ctx.Err()
		}
		return callout.Decision{}, err
	}
	if res.istag != "" && o.ISTag != "" && res.istag != o.ISTag {
		// The service changed (new signatures, configuration): its OPTIONS
		// are asked again before the next message (RFC 3507 4.7).
		s.mu.Lock()
		s.optsExp = time.Time{}
		s.mu.Unlock()
	}
	switch {
	case res.found != "":
		return s.policy.found(tx, s.engine(), finding{Signature: res.found}), nil
	case res.adapted != nil:
		d := callout.ReplaceMessage(res.adapted).Because("adapted by " + s.engine())
		if s.policy.p.VerdictHeader != "" {
			d = d.WithHeader(s.policy.p.VerdictHeader, "adapted ("+s.engine()+")")
		}
		return d, nil
	}
	return s.policy.clean(s.engine()), nil
}

// respmod sends one RESPMOD for msg and reads the answer into res.
func (s *ICAP) respmod(tx *callout.Tx, msg *callout.Message, o icapOptions, w *bufio.Writer, r *bufio.Reader, res *icapResult) (bool, error) {
	qid := tx.Opt(ocpsmtp.OptQueueID)
	if qid == "" {
		qid = "message"
	}
	reqHdr := "GET /" + url.PathEscape(qid) + ".eml HTTP/1.1\r\nHost: opes-callout.invalid\r\n\r\n"
	resHdr := "HTTP/1.1 200 OK\r\nContent-Type: message/rfc822\r\nContent-Length: " +
		strconv.FormatInt(msg.Size(), 10) + "\r\n\r\n"
	fmt.Fprintf(w, "RESPMOD %s ICAP/1.0\r\nHost: %s\r\n", s.u.String(), s.u.Host)
	if o.Allow204 {
		w.WriteString("Allow: 204\r\n")
	}
	preview := -1
	if s.preview && o.Preview >= 0 {
		preview = int(min(int64(o.Preview), msg.Size()))
		fmt.Fprintf(w, "Preview: %d\r\n", preview)
	}
	fmt.Fprintf(w, "Encapsulated: req-hdr=0, res-hdr=%d, res-body=%d\r\n\r\n%s%s",
		len(reqHdr), len(reqHdr)+len(resHdr), reqHdr, resHdr)
	body := msg.NewReader()
	if preview >= 0 {
		p := make([]byte, preview)
		if _, err := io.ReadFull(body, p); err != nil {
			return false, &findingError{err}
		}
		if err := writeChunk(w, p); err != nil {
			return false, err
		}
		if int64(preview) == msg.Size() {
			w.WriteString("0; ieof\r\n\r\n")
		} else {
			w.WriteString("0\r\n\r\n")
		}
		if err := w.Flush(); err != nil {
			return false, err
		}
		if int64(preview) < msg.Size() {
			resp, err := readICAPResponse(r)
			if err != nil {
				return false, err
			}
			if resp.Status != 100 {
				return s.answer(msg, o, resp, r, res, true)
			}
		} else {
			body = nil
		}
	}
	if body != nil {
		buf := make([]byte, 32<<10)
		for {
			n, err := body.Read(buf)
			if n > 0 {
				if werr := writeChunk(w, buf[:n]); werr != nil {
					return false, werr
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return false, &findingError{err}
			}
		}
		w.WriteString("0\r\n\r\n")
		if err := w.Flush(); err != nil {
			return false, err
		}
	}
	resp, err := readICAPResponse(r)
	if err != nil {
		return false, err
	}
	if resp.Status == 100 {
		return false, fmt.Errorf("%w: 100 Continue after the whole message", errICAP)
	}
	return s.answer(msg, o, resp, r, res, preview >= 0)
}

// answer reads the final response to a RESPMOD. inPreview says whether
// the request had a preview, during or after which the server may answer
// 204; otherwise only when we sent Allow: 204 (RFC 3507 4.6).
func (s *ICAP) answer(msg *callout.Message, o icapOptions, resp *icapResponse, r *bufio.Reader, res *icapResult, inPreview bool) (bool, error) {
	res.istag = resp.Header.Get("Istag")
	switch resp.Status {
	case 204:
		if !inPreview && !o.Allow204 {
			// Not asked for: a server that answers so may answer 204 to
			// anything, and "unchanged" must not come from it.
			return false, fmt.Errorf("%w: 204 without Allow: 204 or a preview", errICAP)
		}
		res.unchanged = true
		return keepAlive(resp), nil
	case 200:
	default:
		return false, fmt.Errorf("%w: RESPMOD answered %d", errICAP, resp.Status)
	}
	name := threat(resp.Header)
	if name == "" && resp.HTTPStatus != 0 && (resp.HTTPStatus < 200 || resp.HTTPStatus > 299) {
		name = "ICAP.Blocked.HTTP" + strconv.Itoa(resp.HTTPStatus)
	}
	if name != "" {
		// A finding: the block page is read and dropped, never delivered.
		res.found = name
		if resp.HasBody {
			if err := readChunked(r, msg.Size()+icapAdaptedSlack, nil); err != nil {
				return false, nil
			}
		}
		return keepAlive(resp), nil
	}
	if !resp.HasBody {
		// 200 without a body: the server changed the headers only, which
		// are HTTP headers of our own making; the message is unchanged.
		res.unchanged = true
		return keepAlive(resp), nil
	}
	if ct := resp.HTTPHeader.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "message/rfc822" {
			// A page in place of the message (a notice, a block page
			// answered 200): never delivered as the message.
			return false, fmt.Errorf("%w: adapted content is %q, not message/rfc822", errICAP, clip(ct, 60))
		}
	}
	sp := msg.NewSpool()
	same := true
	var off int64
	cmp := make([]byte, 32<<10)
	err := readChunked(r, msg.Size()+icapAdaptedSlack, func(p []byte) error {
		if same {
			if off+int64(len(p)) > msg.Size() {
				same = false
			} else {
				c := cmp[:len(p)]
				if _, err := msg.ReadAt(c, off); err != nil || !bytes.Equal(c, p) {
					same = false
				}
			}
		}
		off += int64(len(p))
		if _, err := sp.Write(p); err != nil {
			return &findingError{err}
		}
		return nil
	})
	if err != nil {
		sp.Discard()
		return false, err
	}
	if same && off == msg.Size() {
		sp.Discard()
		res.unchanged = true
		return keepAlive(resp), nil
	}
	if off == 0 {
		sp.Discard()
		return false, fmt.Errorf("%w: empty adapted message", errICAP)
	}
	m, err := sp.Message()
	if err != nil {
		return false, &findingError{err}
	}
	if h, err := m.Header(); err != nil || h.Len() == 0 {
		m.Close()
		return false, fmt.Errorf("%w: adapted content is not a mail message", errICAP)
	}
	res.adapted = m
	return keepAlive(resp), nil
}

// CheckHealth implements callout.HealthReporter: OPTIONS.
func (s *ICAP) CheckHealth(ctx context.Context) []callout.BackendHealth {
	if o, err := s.askOptions(ctx); err == nil {
		s.setOptions(o)
	}
	return []callout.BackendHealth{s.b.Health()}
}

// Close closes the idle connections.
func (s *ICAP) Close() error { return s.b.Close() }

// connLimit bounds concurrent exchanges to a limit that the server may
// lower (Max-Connections): the slots above the limit are held reserved.
type connLimit struct {
	slots    chan struct{}
	mu       sync.Mutex
	reserved int
}

func newConnLimit(n int) connLimit { return connLimit{slots: make(chan struct{}, n)} }

// set makes n the limit (at most the configured one, at least 1).
// Reserving waits for no exchange: slots in use are reserved later.
func (l *connLimit) set(n int) {
	want := cap(l.slots) - max(1, min(n, cap(l.slots)))
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.reserved < want {
		select {
		case l.slots <- struct{}{}:
			l.reserved++
		default:
			return
		}
	}
	for l.reserved > want {
		<-l.slots
		l.reserved--
	}
}

func (l *connLimit) acquire(ctx context.Context, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("all %d ICAP connections busy", cap(l.slots)-l.reservedNow())
	}
}

func (l *connLimit) reservedNow() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reserved
}

func (l *connLimit) release() { <-l.slots }
