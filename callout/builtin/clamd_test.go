package builtin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// testVirus is the bytes the fake clamd (and the e2e tests' real one, by
// its .hdb signature) finds as Opes.Test.Signature.UNOFFICIAL.
const testVirus = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$OPES-TEST-SIGNATURE-FILE!$H+H*"

// fakeClamd serves clamd's z-commands on a unix socket: PING, VERSION and
// INSTREAM, which finds testVirus, answers "size limit exceeded" past
// limit bytes, and answers reply verbatim when set.
type fakeClamd struct {
	addr  string
	limit int
	reply string        // a fixed INSTREAM reply, when set
	delay time.Duration // before answering INSTREAM
	scans atomic.Int32  // zINSTREAM scans
	// fildes counts zFILDES scans.
	fildes atomic.Int32
	ln     net.Listener
	// version is the zVERSION reply, without its NUL ("ClamAV 1.4.6/..."
	// when empty).
	version string
	// noFD makes zFILDES fail as in a clamd that gets no descriptor (a
	// forwarded socket, a MAC policy refusing the passed file).
	noFD bool
}

func startFakeClamd(t *testing.T, f *fakeClamd) *fakeClamd {
	t.Helper()
	path := filepath.Join(t.TempDir(), "clamd.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	f.ln, f.addr = ln, "unix:"+path
	return f.serveOn(t, ln)
}

// startFakeClamdTCP is startFakeClamd on a loopback TCP port.
func startFakeClamdTCP(t *testing.T, f *fakeClamd) *fakeClamd {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.ln, f.addr = ln, ln.Addr().String()
	return f.serveOn(t, ln)
}

func (f *fakeClamd) serveOn(t *testing.T, ln net.Listener) *fakeClamd {
	if f.limit == 0 {
		f.limit = 1 << 20
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f
}

func (f *fakeClamd) serve(c net.Conn) {
	defer c.Close()
	// The command is read byte by byte, with room for a descriptor: a
	// buffered read could swallow the byte that carries zFILDES's
	// descriptor, which may come with the command's first byte (as the
	// clamd service sends it) or with the byte after the command (as
	// clamav-milter does).
	var cmd string
	fd := -1
	readByte := func() (byte, error) {
		b, oob := make([]byte, 1), make([]byte, syscall.CmsgSpace(4))
		uc, ok := c.(*net.UnixConn)
		if !ok {
			_, err := io.ReadFull(c, b)
			return b[0], err
		}
		_, oobn, _, _, err := uc.ReadMsgUnix(b, oob)
		if err != nil {
			return 0, err
		}
		if oobn > 0 {
			msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
			if err == nil && len(msgs) == 1 {
				if fds, err := syscall.ParseUnixRights(&msgs[0]); err == nil && len(fds) == 1 {
					fd = fds[0]
				}
			}
		}
		return b[0], nil
	}
	for !strings.HasSuffix(cmd, "\x00") && len(cmd) < 32 {
		b, err := readByte()
		if err != nil {
			return
		}
		cmd += string(b)
	}
	r := bufio.NewReader(c)
	switch cmd {
	case "zPING\x00":
		io.WriteString(c, "PONG\x00")
	case "zVERSION\x00":
		v := f.version
		if v == "" {
			v = "ClamAV 1.4.6/27000/Mon Dec  7 08:00:00 2026"
		}
		io.WriteString(c, v+"\x00")
	case "zFILDES\x00":
		f.fildes.Add(1)
		if _, err := readByte(); err != nil { // the byte the descriptor comes with
			return
		}
		if f.noFD && fd >= 0 {
			syscall.Close(fd)
			fd = -1
		}
		if fd < 0 {
			io.WriteString(c, "No file descriptor received. ERROR\x00") // clamd 1.4's words
			return
		}
		// clamd scans from offset 0 whatever the descriptor's offset.
		f := os.NewFile(uintptr(fd), "passed")
		data, _ := io.ReadAll(io.NewSectionReader(f, 0, 1<<30))
		f.Close()
		f2 := fmt.Sprintf("fd[%d]: ", fd)
		switch {
		case bytes.Contains(data, []byte(testVirus)):
			io.WriteString(c, f2+"Opes.Test.Signature.UNOFFICIAL FOUND\x00")
		default:
			io.WriteString(c, f2+"OK\x00")
		}
	case "zINSTREAM\x00":
		f.scans.Add(1)
		var data []byte
		for {
			var n uint32
			if err := binary.Read(r, binary.BigEndian, &n); err != nil {
				return
			}
			if n == 0 {
				break
			}
			if len(data)+int(n) > f.limit {
				io.WriteString(c, "INSTREAM size limit exceeded. ERROR\x00")
				return
			}
			chunk := make([]byte, n)
			if _, err := io.ReadFull(r, chunk); err != nil {
				return
			}
			data = append(data, chunk...)
		}
		time.Sleep(f.delay)
		switch {
		case f.reply != "":
			io.WriteString(c, f.reply)
		case bytes.Contains(data, []byte(testVirus)):
			io.WriteString(c, "stream: Opes.Test.Signature.UNOFFICIAL FOUND\x00")
		default:
			io.WriteString(c, "stream: OK\x00")
		}
	default:
		io.WriteString(c, "UNKNOWN COMMAND\x00")
	}
}

func clamdOpts(addr string, edit func(*mapping.Clamd)) *mapping.Clamd {
	o := &mapping.Clamd{
		Address: addr, Timeout: 2 * time.Second, MaxConnections: 4, Chunk: 1024,
		ScanPolicy: mapping.ScanPolicy{
			OnVirus: mapping.ScanReject, OnOversize: mapping.ScanReject,
			Reply:         ocpsmtp.Reply{Code: 554, Text: "5.7.1 Message refused: {signature} found"},
			VerdictHeader: "X-Virus-Scanned", QuarantineHeader: "X-Quarantine-Reason",
		},
	}
	if edit != nil {
		edit(o)
	}
	return o
}

func newTestClamd(t *testing.T, addr string, edit func(*mapping.Clamd)) *Clamd {
	t.Helper()
	c, err := NewClamd("clamd", clamdOpts(addr, edit))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func scanTx() *callout.Tx {
	return &callout.Tx{ID: "t1", Service: "http://opes-milter.example/services/antivirus",
		Opts: []ocpsmtp.Opt{{Key: ocpsmtp.OptQueueID, Value: "4ABC123"}}}
}

func virusMessage(filler int) *callout.Message {
	var b strings.Builder
	b.WriteString("From: a@example.org\r\nTo: b@example.com\r\nSubject: test\r\n\r\n")
	b.WriteString(strings.Repeat("filler line of text\r\n", filler/21+1))
	b.WriteString(testVirus + "\r\n")
	return callout.NewMessage([]byte(b.String()))
}

func cleanMessage() *callout.Message {
	return callout.NewMessage([]byte("From: a@example.org\r\nSubject: hi\r\n\r\n" + strings.Repeat("clean text\r\n", 500)))
}

func TestClamdVerdicts(t *testing.T) {
	f := startFakeClamd(t, &fakeClamd{limit: 64 << 10})
	reason := "virus Opes.Test.Signature.UNOFFICIAL found by ClamAV (service http://opes-milter.example/services/antivirus)"
	for _, tc := range []struct {
		name    string
		outcome string
		msg     *callout.Message
		want    callout.Decision
	}{
		{"clean", mapping.ScanReject, cleanMessage(),
			callout.Keep().WithHeader("X-Virus-Scanned", "clean (ClamAV)")},
		// The signature is past the first chunks: the whole stream counts.
		{"reject", mapping.ScanReject, virusMessage(5000),
			callout.Refuse(554, "5.7.1 Message refused: Opes.Test.Signature.UNOFFICIAL found")},
		{"quarantine", mapping.ScanQuarantine, virusMessage(0),
			callout.Keep().WithHeader("X-Virus-Scanned", "infected: Opes.Test.Signature.UNOFFICIAL (ClamAV)").
				WithAdvice(ocpsmtp.AdviceQuarantine).WithHeader("X-Quarantine-Reason", reason)},
		{"discard", mapping.ScanDiscard, virusMessage(0), callout.Keep().WithAdvice(ocpsmtp.AdviceDiscard)},
		{"tag", mapping.ScanTag, virusMessage(0),
			callout.Keep().WithHeader("X-Virus-Scanned", "infected: Opes.Test.Signature.UNOFFICIAL (ClamAV)")},
		{"oversize", mapping.ScanReject, callout.NewMessage(bytes.Repeat([]byte("x"), 100<<10)),
			callout.Refuse(554, "5.7.1 Message refused: Heuristics.Limits.Exceeded.StreamMaxLength found")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClamd(t, f.addr, func(o *mapping.Clamd) { o.OnVirus = tc.outcome })
			d, err := c.AdaptMessage(t.Context(), scanTx(), tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			checkDecision(t, d, tc.want)
		})
	}
}

// checkDecision compares the parts of a decision a scanner sets.
func checkDecision(t *testing.T, got, want callout.Decision) {
	t.Helper()
	if got.Action != want.Action || got.Reply != want.Reply || got.Advice != want.Advice ||
		len(got.Headers) != len(want.Headers) {
		t.Fatalf("decision %+v, want %+v", got, want)
	}
	for i := range got.Headers {
		if got.Headers[i] != want.Headers[i] {
			t.Fatalf("header %d %q, want %q", i, got.Headers[i], want.Headers[i])
		}
	}
}

// TestClamdOversizeOutcome: limit findings take on_oversize, not on_virus.
func TestClamdOversizeOutcome(t *testing.T) {
	f := startFakeClamd(t, &fakeClamd{reply: "stream: Heuristics.Limits.Exceeded.MaxRecursion FOUND\x00"})
	c := newTestClamd(t, f.addr, func(o *mapping.Clamd) { o.OnVirus, o.OnOversize = mapping.ScanReject, mapping.ScanQuarantine })
	d, err := c.AdaptMessage(t.Context(), scanTx(), cleanMessage())
	if err != nil {
		t.Fatal(err)
	}
	if d.Advice != ocpsmtp.AdviceQuarantine || d.Action != callout.ActionKeep {
		t.Fatalf("decision %+v, want the quarantine of on_oversize", d)
	}
}

// TestClamdFailures: clamd down, too slow, or answering an error is the
// service's failure, a *callout.BackendError, and never a verdict.
func TestClamdFailures(t *testing.T) {
	down := filepath.Join(t.TempDir(), "none.sock")
	for _, tc := range []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"down", func(t *testing.T) string { return "unix:" + down }},
		{"slow", func(t *testing.T) string { return startFakeClamd(t, &fakeClamd{delay: 3 * time.Second}).addr }},
		{"error reply", func(t *testing.T) string {
			return startFakeClamd(t, &fakeClamd{reply: "stream: Can't allocate memory ERROR\x00"}).addr
		}},
		{"garbage", func(t *testing.T) string { return startFakeClamd(t, &fakeClamd{reply: "HELLO\x00"}).addr }},
		{"no reply", func(t *testing.T) string { return startFakeClamd(t, &fakeClamd{reply: "\x00"}).addr }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClamd(t, tc.addr(t), func(o *mapping.Clamd) { o.Timeout = 500 * time.Millisecond })
			start := time.Now()
			d, err := c.AdaptMessage(context.Background(), scanTx(), cleanMessage())
			var be *callout.BackendError
			if !errors.As(err, &be) {
				t.Fatalf("decision %+v, err %v; want a *callout.BackendError", d, err)
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("took %v past the 500ms deadline", el)
			}
			if h := c.CheckHealth(t.Context()); len(h) != 1 || (tc.name == "down" && h[0].Up) {
				t.Errorf("health %+v", h)
			}
		})
	}
}

func TestClamdHealth(t *testing.T) {
	f := startFakeClamd(t, &fakeClamd{})
	c := newTestClamd(t, f.addr, nil)
	h := c.CheckHealth(t.Context())
	if len(h) != 1 || !h[0].Up || h[0].Name != "clamd" {
		t.Fatalf("health %+v", h)
	}
	d, err := c.AdaptMessage(t.Context(), scanTx(), cleanMessage())
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Headers[0].Value; got != "clean (ClamAV 1.4.6/27000/Mon Dec  7 08:00:00 2026)" {
		t.Errorf("verdict %q names the engine zVERSION reported", got)
	}
	f.ln.Close()
	if h := c.CheckHealth(t.Context()); h[0].Up {
		t.Errorf("health %+v after clamd stopped, want down", h)
	}
}

// TestClamdVersionInHeader: what zVERSION answers goes into the verdict
// header only as printable ASCII on one line, at most 100 bytes.
func TestClamdVersionInHeader(t *testing.T) {
	f := startFakeClamd(t, &fakeClamd{version: "ClamAV 1.4.6\r\nBcc: everyone@example.org\r\n" + strings.Repeat("x", 300)})
	c := newTestClamd(t, f.addr, nil)
	c.CheckHealth(t.Context())
	d, err := c.AdaptMessage(t.Context(), scanTx(), cleanMessage())
	if err != nil {
		t.Fatal(err)
	}
	got := d.Headers[0].Value
	if strings.ContainsAny(got, "\r\n") || len(got) > 120 || !strings.HasPrefix(got, "clean (ClamAV 1.4.6") {
		t.Errorf("verdict header %q", got)
	}
}

func TestParseClamdReply(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want clamdVerdict
		err  bool
	}{
		{"stream: OK", clamdVerdict{}, false},
		{"stream: OK\x00", clamdVerdict{}, false},
		{"stream: Win.Test.EICAR_HDB-1 FOUND", clamdVerdict{Signature: "Win.Test.EICAR_HDB-1"}, false},
		{"stream: Heuristics.Limits.Exceeded.MaxRecursion FOUND",
			clamdVerdict{Signature: "Heuristics.Limits.Exceeded.MaxRecursion", Oversize: true}, false},
		{"INSTREAM size limit exceeded. ERROR", clamdVerdict{Signature: ClamdStreamLimit, Oversize: true}, false},
		{"stream: Can't allocate memory ERROR", clamdVerdict{}, true},
		{"1: stream: OK", clamdVerdict{}, true},
		{"stream: two words FOUND", clamdVerdict{}, true},
		{"stream:  FOUND", clamdVerdict{}, true},
		{"", clamdVerdict{}, true},
		{"PONG", clamdVerdict{}, true},
	} {
		got, err := parseClamdReply([]byte(tc.in))
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseClamdReply(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// TestReadClamdReply: a reply is NUL-terminated; one cut short by the end
// of the connection is an error (a verdict never comes from half a reply),
// except clamd's StreamMaxLength answer, after which clamd closes.
func TestReadClamdReply(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{"stream: OK\x00", "stream: OK", false},
		{"stream: OK\x00stream: OK\x00", "stream: OK", false},
		{"stream: OK", "", true},
		{"stream: Eicar FOUND", "", true},
		{"", "", true},
		{"INSTREAM size limit exceeded. ERROR\x00", "INSTREAM size limit exceeded. ERROR", false},
		{"INSTREAM size limit exceeded. ERROR", "INSTREAM size limit exceeded. ERROR", false},
		{strings.Repeat("a", clamdMaxReply+1) + "\x00", "", true},
	} {
		got, err := readClamdReply(bufio.NewReaderSize(strings.NewReader(tc.in), 16))
		if (err != nil) != tc.err || string(got) != tc.want {
			t.Errorf("readClamdReply(%q) = %q, %v; want %q, error %v", clip(tc.in, 40), got, err, tc.want, tc.err)
		}
	}
}

// FuzzParseClamdReply: any reply parses into a verdict or an error; a
// finding's name is always fit for an SMTP reply and a header field.
func FuzzParseClamdReply(f *testing.F) {
	for _, s := range []string{"stream: OK\x00", "stream: Eicar-Test-Signature FOUND\x00",
		"INSTREAM size limit exceeded. ERROR\x00", "stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND\x00",
		"stream: lstat() failed ERROR\x00", "1: stream: OK\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		reply, err := readClamdReply(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			return
		}
		v, err := parseClamdReply(reply)
		if err != nil {
			return
		}
		if !v.Clean() && !validSignature(v.Signature) {
			t.Fatalf("signature %q", v.Signature)
		}
	})
}

// TestClamdFildes: transfer = "fildes" passes the message as a descriptor
// (zFILDES) and reads clamd's "fd[N]: ..." replies.
func TestClamdFildes(t *testing.T) {
	f := startFakeClamd(t, &fakeClamd{})
	c := newTestClamd(t, f.addr, func(o *mapping.Clamd) { o.Transfer = mapping.ClamdFildes })
	d, err := c.AdaptMessage(t.Context(), scanTx(), virusMessage(3000))
	if err != nil {
		t.Fatal(err)
	}
	checkDecision(t, d, callout.Refuse(554, "5.7.1 Message refused: Opes.Test.Signature.UNOFFICIAL found"))
	d, err = c.AdaptMessage(t.Context(), scanTx(), cleanMessage())
	if err != nil {
		t.Fatal(err)
	}
	checkDecision(t, d, callout.Keep().WithHeader("X-Virus-Scanned", "clean (ClamAV)"))
}

// TestClamdTransferAuto: transfer = "auto" passes messages up to
// mapping.ClamdAutoFildesMax as a descriptor over a unix socket, streams
// larger ones (so StreamMaxLength still bounds them: here the fake's limit
// makes the finding), and streams everything over TCP.
func TestClamdTransferAuto(t *testing.T) {
	auto := func(o *mapping.Clamd) { o.Transfer = mapping.ClamdAuto }
	large := callout.NewMessage(bytes.Repeat([]byte("x"), mapping.ClamdAutoFildesMax+1))
	t.Run("unix", func(t *testing.T) {
		f := startFakeClamd(t, &fakeClamd{limit: 1 << 20})
		c := newTestClamd(t, f.addr, auto)
		d, err := c.AdaptMessage(t.Context(), scanTx(), virusMessage(3000))
		if err != nil {
			t.Fatal(err)
		}
		checkDecision(t, d, callout.Refuse(554, "5.7.1 Message refused: Opes.Test.Signature.UNOFFICIAL found"))
		if f.fildes.Load() != 1 || f.scans.Load() != 0 {
			t.Fatalf("%d FILDES and %d INSTREAM scans, want the small message by FILDES", f.fildes.Load(), f.scans.Load())
		}
		d, err = c.AdaptMessage(t.Context(), scanTx(), large)
		if err != nil {
			t.Fatal(err)
		}
		checkDecision(t, d, callout.Refuse(554, "5.7.1 Message refused: Heuristics.Limits.Exceeded.StreamMaxLength found"))
		if f.fildes.Load() != 1 || f.scans.Load() != 1 {
			t.Fatalf("%d FILDES and %d INSTREAM scans, want the large message streamed", f.fildes.Load(), f.scans.Load())
		}
	})
	t.Run("tcp", func(t *testing.T) {
		f := startFakeClamdTCP(t, &fakeClamd{})
		c := newTestClamd(t, f.addr, auto)
		d, err := c.AdaptMessage(t.Context(), scanTx(), cleanMessage())
		if err != nil {
			t.Fatal(err)
		}
		checkDecision(t, d, callout.Keep().WithHeader("X-Virus-Scanned", "clean (ClamAV)"))
		// Even an empty message: nothing goes by FILDES over TCP.
		if _, err := c.AdaptMessage(t.Context(), scanTx(), callout.NewMessage(nil)); err != nil {
			t.Fatal(err)
		}
		if f.fildes.Load() != 0 || f.scans.Load() != 2 {
			t.Fatalf("%d FILDES and %d INSTREAM scans over TCP, want two INSTREAM", f.fildes.Load(), f.scans.Load())
		}
	})
}

// writeLog records each Write.
type writeLog struct{ writes [][]byte }

func (w *writeLog) Write(p []byte) (int, error) {
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

// TestClamdStreamWrites: the exact writes of zINSTREAM. A message of one
// chunk goes in one write (command, length, data, end chunk); a longer one
// has the command with the first chunk and the end chunk with the last.
func TestClamdStreamWrites(t *testing.T) {
	c := &clamdClient{chunk: 4}
	for _, tc := range []struct {
		msg  string
		want []string
	}{
		{"", []string{"zINSTREAM\x00\x00\x00\x00\x00"}},
		{"abc", []string{"zINSTREAM\x00\x00\x00\x00\x03abc\x00\x00\x00\x00"}},
		{"abcd", []string{"zINSTREAM\x00\x00\x00\x00\x04abcd", "\x00\x00\x00\x00"}},
		{"abcdefghij", []string{"zINSTREAM\x00\x00\x00\x00\x04abcd", "\x00\x00\x00\x04efgh", "\x00\x00\x00\x02ij\x00\x00\x00\x00"}},
	} {
		var w writeLog
		buf := c.buf()
		if err := c.stream(&w, strings.NewReader(tc.msg), *buf); err != nil {
			t.Fatal(err)
		}
		c.putBuf(buf)
		got := make([]string, len(w.writes))
		for i, b := range w.writes {
			got[i] = string(b)
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%q: writes %q, want %q", tc.msg, got, tc.want)
		}
	}
}

// TestClamdFildesRefused: a clamd that answers zFILDES with an error
// (it got no descriptor). With "auto" the message is streamed instead and
// gets that verdict, and later messages are streamed straight away; with
// "fildes" the error is the service's failure. Never a pass.
func TestClamdFildesRefused(t *testing.T) {
	t.Run("auto", func(t *testing.T) {
		f := startFakeClamd(t, &fakeClamd{noFD: true})
		c := newTestClamd(t, f.addr, func(o *mapping.Clamd) { o.Transfer = mapping.ClamdAuto })
		d, err := c.AdaptMessage(t.Context(), scanTx(), virusMessage(3000))
		if err != nil {
			t.Fatal(err)
		}
		checkDecision(t, d, callout.Refuse(554, "5.7.1 Message refused: Opes.Test.Signature.UNOFFICIAL found"))
		if f.fildes.Load() != 1 || f.scans.Load() != 1 {
			t.Fatalf("%d FILDES and %d INSTREAM scans, want one each", f.fildes.Load(), f.scans.Load())
		}
		d, err = c.AdaptMessage(t.Context(), scanTx(), cleanMessage())
		if err != nil {
			t.Fatal(err)
		}
		checkDecision(t, d, callout.Keep().WithHeader("X-Virus-Scanned", "clean (ClamAV)"))
		if f.fildes.Load() != 1 || f.scans.Load() != 2 {
			t.Fatalf("%d FILDES and %d INSTREAM scans, want the second message streamed at once", f.fildes.Load(), f.scans.Load())
		}
		if h := c.CheckHealth(t.Context()); !h[0].Up {
			t.Errorf("health %+v, want up", h)
		}
	})
	t.Run("auto, stream fails too", func(t *testing.T) {
		f := startFakeClamd(t, &fakeClamd{noFD: true, reply: "stream: Can't allocate memory ERROR\x00"})
		c := newTestClamd(t, f.addr, func(o *mapping.Clamd) { o.Transfer = mapping.ClamdAuto })
		d, err := c.AdaptMessage(t.Context(), scanTx(), cleanMessage())
		var be *callout.BackendError
		if !errors.As(err, &be) {
			t.Fatalf("decision %+v, err %v; want a *callout.BackendError", d, err)
		}
		if c.noFildes.Load() {
			t.Error("zFILDES given up although streaming failed too")
		}
	})
	t.Run("fildes", func(t *testing.T) {
		f := startFakeClamd(t, &fakeClamd{noFD: true})
		c := newTestClamd(t, f.addr, func(o *mapping.Clamd) { o.Transfer = mapping.ClamdFildes })
		d, err := c.AdaptMessage(t.Context(), scanTx(), cleanMessage())
		var be *callout.BackendError
		if !errors.As(err, &be) || f.scans.Load() != 0 {
			t.Fatalf("decision %+v, err %v, %d INSTREAM scans; want a *callout.BackendError and no stream", d, err, f.scans.Load())
		}
	})
}
