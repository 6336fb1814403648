package builtin

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// fakeICAP is an ICAP server for the client's tests: OPTIONS with the
// configured Preview and Max-Connections, and RESPMOD answered per mode.
type fakeICAP struct {
	mode     string // "204", "virus", "violation", "block", "adapt", "echo", "500", "preview204"
	preview  int    // -1: none
	no204    bool   // OPTIONS does not list Allow: 204 (and RESPMOD answers 204 all the same)
	maxConns atomic.Int32
	delay    time.Duration
	// closeAfter closes each connection after one answer, without saying
	// so (as a server's idle timeout does).
	closeAfter atomic.Bool
	// istag is the service's ISTag ("x" when nil); options counts the
	// OPTIONS requests.
	istag   atomic.Pointer[string]
	options atomic.Int32

	addr     string
	conns    atomic.Int32 // connections accepted
	active   atomic.Int32
	peak     atomic.Int32
	requests atomic.Int32
	mu       sync.Mutex
	bodies   [][]byte // the bodies RESPMOD received (after preview and the rest)
}

func (f *fakeICAP) tag() string {
	if p := f.istag.Load(); p != nil {
		return *p
	}
	return "x"
}

func startFakeICAP(t *testing.T, f *fakeICAP) *fakeICAP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.conns.Add(1)
			go f.serve(c)
		}
	}()
	return f
}

func (f *fakeICAP) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		method := strings.Fields(line)[0]
		budget := icapMaxHeaders
		h, err := readHeaderSection(r, &budget)
		if err != nil {
			return
		}
		f.requests.Add(1)
		if method == "OPTIONS" {
			f.options.Add(1)
			fmt.Fprintf(c, "ICAP/1.0 200 OK\r\nMethods: RESPMOD\r\nService: Fake ICAP AV\r\nISTag: %s\r\nOptions-TTL: 3600\r\n", f.tag())
			if !f.no204 {
				io.WriteString(c, "Allow: 204\r\n")
			}
			if f.preview >= 0 {
				fmt.Fprintf(c, "Preview: %d\r\n", f.preview)
			}
			if n := f.maxConns.Load(); n > 0 {
				fmt.Fprintf(c, "Max-Connections: %d\r\n", n)
			}
			io.WriteString(c, "Encapsulated: null-body=0\r\n\r\n")
			if f.closeAfter.Load() {
				return
			}
			continue
		}
		n := f.active.Add(1)
		for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
		}
		names, offs, err := parseEncapsulated(h.Get("Encapsulated"))
		if err != nil {
			return
		}
		hdrs := make([]byte, offs[len(offs)-1])
		if _, err := io.ReadFull(r, hdrs); err != nil || names[len(names)-1] != "res-body" {
			return
		}
		var body bytes.Buffer
		collect := func(p []byte) error { body.Write(p); return nil }
		ieof, err := fakeReadChunked(r, 1<<30, collect)
		if err != nil {
			return
		}
		if h.Get("Preview") != "" && !ieof {
			if f.mode == "preview204" {
				io.WriteString(c, "ICAP/1.0 204 No Content\r\n\r\n")
				f.active.Add(-1)
				continue
			}
			io.WriteString(c, "ICAP/1.0 100 Continue\r\n\r\n")
			if _, err := fakeReadChunked(r, 1<<30, collect); err != nil {
				return
			}
		}
		f.mu.Lock()
		f.bodies = append(f.bodies, body.Bytes())
		f.mu.Unlock()
		if f.mode == "hang" {
			io.Copy(io.Discard, r) // no answer, until the client gives up
			return
		}
		time.Sleep(f.delay)
		f.active.Add(-1)
		resHdr := func(status string, n int) string {
			return "HTTP/1.1 " + status + "\r\nContent-Length: " + strconv.Itoa(n) + "\r\n\r\n"
		}
		chunked := func(b []byte) string { return fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(b), b) }
		switch f.mode {
		case "204", "preview204":
			io.WriteString(c, "ICAP/1.0 204 No Content\r\nISTag: "+f.tag()+"\r\n\r\n")
		case "virus", "block", "violation":
			page := []byte("<html>blocked</html>")
			hd := resHdr("403 Forbidden", len(page))
			io.WriteString(c, "ICAP/1.0 200 OK\r\nISTag: "+f.tag()+"\r\n")
			switch f.mode {
			case "virus":
				io.WriteString(c, "X-Infection-Found: Type=0; Resolution=2; Threat=Opes.Test.Signature.UNOFFICIAL;\r\nX-Violations-Found: 1\r\n")
			case "violation":
				hd = resHdr("200 OK", len(page))
				io.WriteString(c, "X-Violations-Found: 1\r\n\ta.bin\r\n\tDLP.Card.Number\r\n\t0\r\n\t2\r\n")
			}
			fmt.Fprintf(c, "Encapsulated: res-hdr=0, res-body=%d\r\n\r\n%s%s", len(hd), hd, chunked(page))
		case "adapt", "echo":
			out := body.Bytes()
			if f.mode == "adapt" {
				out = bytes.ReplaceAll(out, []byte("secret"), []byte("[redacted]"))
			}
			hd := resHdr("200 OK", len(out))
			fmt.Fprintf(c, "ICAP/1.0 200 OK\r\nISTag: "+f.tag()+"\r\nEncapsulated: res-hdr=0, res-body=%d\r\n\r\n%s%s", len(hd), hd, chunked(out))
		case "page", "garbage":
			out := []byte("<html>The message was removed</html>\r\n")
			hd := "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n"
			if f.mode == "garbage" {
				hd = resHdr("200 OK", len(out))
			}
			fmt.Fprintf(c, "ICAP/1.0 200 OK\r\nISTag: "+f.tag()+"\r\nEncapsulated: res-hdr=0, res-body=%d\r\n\r\n%s%s", len(hd), hd, chunked(out))
		default:
			io.WriteString(c, "ICAP/1.0 500 Server Error\r\nEncapsulated: null-body=0\r\n\r\n")
		}
	}
}

func newTestICAP(t *testing.T, addr string, edit func(*mapping.ICAP)) *ICAP {
	t.Helper()
	o := &mapping.ICAP{URL: "icap://" + addr + "/avscan", Timeout: 2 * time.Second, MaxConnections: 4, Preview: true,
		ScanPolicy: clamdOpts("", nil).ScanPolicy}
	if edit != nil {
		edit(o)
	}
	s, err := NewICAP("icap", o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestICAPVerdicts(t *testing.T) {
	big := callout.NewMessage([]byte("Subject: x\r\n\r\n" + strings.Repeat("a secret line\r\n", 1000)))
	small := callout.NewMessage([]byte("Subject: x\r\n\r\nshort secret\r\n"))
	for _, tc := range []struct {
		name, mode string
		preview    int
		msg        *callout.Message
		want       callout.Decision
		adapted    string // the adapted message, for ActionReplace
	}{
		{"204 after the whole message", "204", -1, big, callout.Keep().WithHeader("X-Virus-Scanned", "clean (Fake ICAP AV)"), ""},
		{"204 in preview", "preview204", 1024, big, callout.Keep().WithHeader("X-Virus-Scanned", "clean (Fake ICAP AV)"), ""},
		{"204 after 100 Continue", "204", 1024, big, callout.Keep().WithHeader("X-Virus-Scanned", "clean (Fake ICAP AV)"), ""},
		{"whole message in preview", "204", 1024, small, callout.Keep().WithHeader("X-Virus-Scanned", "clean (Fake ICAP AV)"), ""},
		{"infection", "virus", 1024, big, callout.Refuse(554, "5.7.1 Message refused: Opes.Test.Signature.UNOFFICIAL found"), ""},
		{"violation", "violation", -1, big, callout.Refuse(554, "5.7.1 Message refused: DLP.Card.Number found"), ""},
		{"block page", "block", -1, small, callout.Refuse(554, "5.7.1 Message refused: ICAP.Blocked.HTTP403 found"), ""},
		{"echo is unchanged", "echo", 10, big, callout.Keep().WithHeader("X-Virus-Scanned", "clean (Fake ICAP AV)"), ""},
		{"adapted", "adapt", 10, small, callout.Decision{Action: callout.ActionReplace}.WithHeader("X-Virus-Scanned", "adapted (Fake ICAP AV)"),
			"Subject: x\r\n\r\nshort [redacted]\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFakeICAP(t, &fakeICAP{mode: tc.mode, preview: tc.preview})
			s := newTestICAP(t, f.addr, nil)
			d, err := s.AdaptMessage(t.Context(), scanTx(), tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			checkDecision(t, d, tc.want)
			if tc.adapted != "" {
				mustEqualBytes(t, "adapted message", all(t, d.Message), []byte(tc.adapted))
				d.Message.Close()
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if tc.mode != "preview204" && (len(f.bodies) != 1 || !bytes.Equal(f.bodies[0], all(t, tc.msg))) {
				t.Errorf("the server got %d bodies, want the message once", len(f.bodies))
			}
		})
	}
}

// TestICAPConnections: connections are kept alive and reused, and the
// server's Max-Connections bounds the concurrent exchanges below
// max_connections.
func TestICAPConnections(t *testing.T) {
	f := &fakeICAP{mode: "204", preview: -1, delay: 50 * time.Millisecond}
	f.maxConns.Store(2)
	startFakeICAP(t, f)
	s := newTestICAP(t, f.addr, func(o *mapping.ICAP) { o.MaxConnections = 8 })
	msg := cleanMessage()
	for range 3 {
		if _, err := s.AdaptMessage(t.Context(), scanTx(), msg); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.conns.Load(); n != 1 {
		t.Errorf("%d connections for OPTIONS and 3 sequential RESPMODs, want 1 kept alive", n)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.AdaptMessage(t.Context(), scanTx(), msg); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if p := f.peak.Load(); p > 2 {
		t.Errorf("%d concurrent exchanges, want at most the server's Max-Connections 2", p)
	}
	if n := f.conns.Load(); n > 2 {
		t.Errorf("%d connections, want at most 2", n)
	}
}

// TestICAPMaxConnectionsLifted: a server that stops saying Max-Connections
// in its OPTIONS gets max_connections again.
func TestICAPMaxConnectionsLifted(t *testing.T) {
	f := &fakeICAP{mode: "204", preview: -1}
	f.maxConns.Store(1)
	startFakeICAP(t, f)
	s := newTestICAP(t, f.addr, func(o *mapping.ICAP) { o.MaxConnections = 4 })
	s.CheckHealth(t.Context())
	if n := s.limit.reservedNow(); n != 3 {
		t.Fatalf("%d of 4 connections reserved under Max-Connections 1, want 3", n)
	}
	f.maxConns.Store(0)
	s.CheckHealth(t.Context())
	if n := s.limit.reservedNow(); n != 0 {
		t.Errorf("%d of 4 connections reserved once Max-Connections is gone, want 0", n)
	}
}

// TestICAPOptionsTTLHuge: an Options-TTL too large for a time.Duration
// keeps the OPTIONS (it did not wrap into the past, which asked OPTIONS
// before every message).
func TestICAPOptionsTTLHuge(t *testing.T) {
	s := newTestICAP(t, "127.0.0.1:1", nil)
	s.setOptions(icapOptions{Methods: []string{"RESPMOD"}, TTL: 1 << 62})
	if !time.Now().Before(s.optsExp) {
		t.Errorf("OPTIONS expire at %v, want later than now", s.optsExp)
	}
}

// TestICAPFailures: a server that is down, errs or is too slow is the
// service's failure, never a pass.
func TestICAPFailures(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"down", func(*testing.T) string { return down }},
		{"500", func(t *testing.T) string { return startFakeICAP(t, &fakeICAP{mode: "500", preview: -1}).addr }},
		{"slow", func(t *testing.T) string {
			return startFakeICAP(t, &fakeICAP{mode: "204", preview: -1, delay: 3 * time.Second}).addr
		}},
		// RFC 3507 4.6: 204 outside a preview only when the client sent
		// Allow: 204, which it does not to a server that does not list
		// it. An unasked-for 204 is a broken server, not a clean message.
		{"204 not allowed", func(t *testing.T) string {
			return startFakeICAP(t, &fakeICAP{mode: "204", preview: -1, no204: true}).addr
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestICAP(t, tc.addr(t), func(o *mapping.ICAP) { o.Timeout = 500 * time.Millisecond })
			d, err := s.AdaptMessage(t.Context(), scanTx(), cleanMessage())
			var be *callout.BackendError
			if !errors.As(err, &be) {
				t.Fatalf("decision %+v, err %v; want a *callout.BackendError", d, err)
			}
		})
	}
}

// TestICAPReuseRetry: an exchange on a reused connection that the server
// closed meanwhile is retried once on a fresh one; one on a reused
// connection the server keeps open but does not answer is not retried (the
// timeout is not doubled, the request not sent twice).
func TestICAPReuseRetry(t *testing.T) {
	t.Run("closed", func(t *testing.T) {
		f := &fakeICAP{mode: "204", preview: -1}
		f.closeAfter.Store(true)
		startFakeICAP(t, f)
		s := newTestICAP(t, f.addr, nil)
		if _, err := s.options(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // the server has closed the idle connection
		if _, err := s.AdaptMessage(t.Context(), scanTx(), cleanMessage()); err != nil {
			t.Fatalf("err %v, want the exchange retried on a fresh connection", err)
		}
		if n := f.conns.Load(); n != 2 {
			t.Errorf("%d connections, want 2", n)
		}
	})
	t.Run("silent", func(t *testing.T) {
		f := startFakeICAP(t, &fakeICAP{mode: "hang", preview: -1})
		s := newTestICAP(t, f.addr, func(o *mapping.ICAP) { o.Timeout = 300 * time.Millisecond })
		_, err := s.AdaptMessage(t.Context(), scanTx(), cleanMessage())
		var be *callout.BackendError
		if !errors.As(err, &be) {
			t.Fatalf("err %v, want a *callout.BackendError", err)
		}
		if n := f.requests.Load(); n != 2 {
			t.Errorf("%d requests (OPTIONS and RESPMOD), want 2: a timeout is not retried", n)
		}
	})
}

// TestICAPISTag: OPTIONS are kept for their Options-TTL, and asked again
// as soon as a response carries another ISTag than they did (the service
// changed: RFC 3507 4.7).
func TestICAPISTag(t *testing.T) {
	f := startFakeICAP(t, &fakeICAP{mode: "204", preview: -1})
	s := newTestICAP(t, f.addr, nil)
	scan := func() {
		t.Helper()
		if _, err := s.AdaptMessage(t.Context(), scanTx(), cleanMessage()); err != nil {
			t.Fatal(err)
		}
	}
	scan()
	scan()
	if n := f.options.Load(); n != 1 {
		t.Fatalf("%d OPTIONS for two messages within the Options-TTL, want 1", n)
	}
	tag := "y"
	f.istag.Store(&tag)
	scan() // answered with ISTag y: the OPTIONS are stale
	scan()
	scan()
	if n := f.options.Load(); n != 2 {
		t.Errorf("%d OPTIONS, want 2: asked again once after the ISTag changed", n)
	}
}

// TestReadChunked: a chunked body in a response is read within its bounds:
// extensions and trailers are allowed, a body over max, a chunk without its
// CRLF, a cut body and a body that is mostly chunk overhead are errors.
func TestReadChunked(t *testing.T) {
	overhead := strings.Repeat("1;"+strings.Repeat("x", 1000)+"\r\na\r\n", 100) + "0\r\n\r\n"
	for _, tc := range []struct {
		name, in, want string
		max            int64
		err            bool
	}{
		{"plain", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", 100, false},
		{"extensions and trailer", "5; x=y\r\nhello\r\n0; ieof\r\nX-T: 1\r\n\r\n", "hello", 100, false},
		{"over max", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "", 8, true},
		{"no CRLF after data", "5\r\nhelloX\r\n0\r\n\r\n", "", 100, true},
		{"cut", "5\r\nhel", "", 100, true},
		{"bad size", "zz\r\nhello\r\n0\r\n\r\n", "", 100, true},
		{"mostly overhead", overhead, "", 1 << 20, true},
	} {
		var got bytes.Buffer
		err := readChunked(bufio.NewReader(strings.NewReader(tc.in)), tc.max, func(p []byte) error { got.Write(p); return nil })
		if (err != nil) != tc.err || (!tc.err && got.String() != tc.want) {
			t.Errorf("%s: %q, %v; want %q, error %v", tc.name, got.String(), err, tc.want, tc.err)
		}
	}
}

// TestICAPAdaptedNotMessage: a 2xx whose body is not a mail message (an
// HTML page, with its Content-Type or without one) is never delivered as
// the message: it is the service's failure.
func TestICAPAdaptedNotMessage(t *testing.T) {
	for _, mode := range []string{"page", "garbage"} {
		t.Run(mode, func(t *testing.T) {
			f := startFakeICAP(t, &fakeICAP{mode: mode, preview: -1})
			s := newTestICAP(t, f.addr, nil)
			d, err := s.AdaptMessage(t.Context(), scanTx(), cleanMessage())
			var be *callout.BackendError
			if !errors.As(err, &be) {
				if d.Message != nil {
					d.Message.Close()
				}
				t.Fatalf("decision %v, err %v; want a *callout.BackendError", d.Action, err)
			}
		})
	}
}

// TestICAPQuarantine: a finding with on_virus quarantine keeps the message
// with Advice Quarantine and the reason in the quarantine header.
func TestICAPQuarantine(t *testing.T) {
	f := startFakeICAP(t, &fakeICAP{mode: "virus", preview: -1})
	s := newTestICAP(t, f.addr, func(o *mapping.ICAP) { o.OnVirus = mapping.ScanQuarantine })
	d, err := s.AdaptMessage(t.Context(), scanTx(), cleanMessage())
	if err != nil {
		t.Fatal(err)
	}
	if d.Action != callout.ActionKeep || d.Advice != ocpsmtp.AdviceQuarantine || len(d.Headers) != 2 ||
		d.Headers[1].Name != "X-Quarantine-Reason" || !strings.Contains(d.Headers[1].Value, "Opes.Test.Signature.UNOFFICIAL") {
		t.Fatalf("decision %+v", d)
	}
}

// FuzzICAPResponse: any response is read within the bounds into a
// response or an error, and a reported threat is fit for a reply.
func FuzzICAPResponse(f *testing.F) {
	for _, s := range []string{
		"ICAP/1.0 204 No Content\r\nISTag: x\r\n\r\n",
		"ICAP/1.0 100 Continue\r\n\r\n",
		"ICAP/1.0 200 OK\r\nMethods: RESPMOD, REQMOD\r\nPreview: 1024\r\nAllow: 204\r\nMax-Connections: 8\r\nOptions-TTL: 3600\r\nEncapsulated: null-body=0\r\n\r\n",
		"ICAP/1.0 200 OK\r\nX-Infection-Found: Type=0; Resolution=2; Threat=Eicar;\r\nX-Violations-Found: 1\r\n\ta.bin\r\n\tEicar\r\n\t0\r\n\t2\r\nEncapsulated: res-hdr=0, res-body=38\r\n\r\nHTTP/1.1 403 Forbidden\r\nServer: x\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"ICAP/1.0 200 OK\r\nEncapsulated: res-hdr=0, res-body=19\r\n\r\nHTTP/1.1 200 OK\r\n\r\na; ext\r\n0123456789\r\n0; ieof\r\n\r\n",
		"ICAP/1.0 200 OK\r\nEncapsulated: req-hdr=0, res-body=30\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		resp, err := readICAPResponse(r)
		if err != nil {
			return
		}
		if _, err := parseOptions(resp.Header); err != nil {
			return
		}
		if name := threat(resp.Header); name != "" && !validSignature(name) {
			t.Fatalf("threat %q", name)
		}
		if resp.HasBody {
			readChunked(r, 1<<16, nil)
		}
	})
}

// fakeReadChunked is the fake server's reader of a request's chunked
// body: like readChunked, and it reports whether the last chunk carried
// ICAP's ieof, which net/http's chunked reader does not show.
func fakeReadChunked(r *bufio.Reader, max int64, fn func([]byte) error) (ieof bool, err error) {
	var total int64
	buf := make([]byte, 32<<10)
	for {
		line, err := callout.ReadLine(r, icapMaxLine)
		if err != nil {
			return false, err
		}
		size, ext, _ := strings.Cut(string(line), ";")
		n, err := strconv.ParseInt(strings.TrimSpace(size), 16, 64)
		if err != nil || n < 0 {
			return false, fmt.Errorf("%w: chunk size %q", errICAP, clip(string(line), 40))
		}
		if n == 0 {
			ieof = strings.TrimSpace(ext) == "ieof"
			budget := icapMaxHeaders
			if _, err := readHeaderSection(r, &budget); err != nil { // trailers
				return false, err
			}
			return ieof, nil
		}
		if total += n; total > max {
			return false, fmt.Errorf("%w: body over %d bytes", callout.ErrResponseTooLarge, max)
		}
		for n > 0 {
			k, err := io.ReadFull(r, buf[:min(n, int64(len(buf)))])
			if err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return false, err
			}
			if fn != nil {
				if err := fn(buf[:k]); err != nil {
					return false, err
				}
			}
			n -= int64(k)
		}
		crlf, err := callout.ReadLine(r, 2)
		if err != nil || len(crlf) != 0 {
			return false, fmt.Errorf("%w: chunk without CRLF", errICAP)
		}
	}
}
