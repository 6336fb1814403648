package milter

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/opes-milter/opes-milter/bridge"
	"github.com/opes-milter/opes-milter/internal/syncbuf"
)

// allEvents wants every event, every action and a few macros.
var allEvents = bridge.Requirements{
	Connect: true, Helo: true, Mail: true, Rcpt: true, Data: true,
	Headers: true, EndOfHeaders: true, Body: true,
	Actions: bridge.ActAddHeader | bridge.ActChangeHeader | bridge.ActReplaceBody |
		bridge.ActAddRcpt | bridge.ActDelRcpt | bridge.ActChangeFrom | bridge.ActQuarantine,
	Macros: map[bridge.Stage][]string{
		bridge.StageConnect: {"{daemon_name}"},
		bridge.StageMail:    {"{auth_authen}"},
		bridge.StageEOM:     {"i"},
	},
}

// fakeHandler records every bridge call as one line.
type fakeHandler struct {
	req    bridge.Requirements
	newErr error
	// reply answers an event ("connect", "rcpt", ...); nil means Continue.
	reply func(ev, arg string) bridge.Reply
	// eom runs at end of message; nil means Continue.
	eom func(ctx context.Context, mod bridge.Modifier) bridge.Reply
	// now answers Replies; nil means every reply of req.
	now func() bridge.Events

	mu      sync.Mutex
	calls   []string
	replies []bridge.Events // what each NewSession was told
}

func (h *fakeHandler) Requirements() bridge.Requirements { return h.req }

func (h *fakeHandler) Replies() bridge.Events {
	switch {
	case h.now != nil:
		return h.now()
	case h.req.Replies == 0:
		return ^bridge.Events(0)
	}
	return h.req.Replies
}

func (h *fakeHandler) NewSession(_ context.Context, replies bridge.Events) (bridge.Session, error) {
	h.mu.Lock()
	h.replies = append(h.replies, replies)
	h.mu.Unlock()
	h.record("new")
	if h.newErr != nil {
		return nil, h.newErr
	}
	return &fakeSession{h: h}, nil
}

func (h *fakeHandler) record(s string) {
	h.mu.Lock()
	h.calls = append(h.calls, s)
	h.mu.Unlock()
}

// log returns the calls so far.
func (h *fakeHandler) log() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.calls...)
}

// waitLog waits until the last call recorded is last (bridge calls
// without a reply, like Abort and Close, race with the client).
func (h *fakeHandler) waitLog(t *testing.T, last string) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l := h.log()
		if len(l) > 0 && l[len(l)-1] == last {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("last call never became %q; calls:\n%s", last, strings.Join(l, "\n"))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (h *fakeHandler) answer(ev, arg string) bridge.Reply {
	h.record(strings.TrimSpace(ev + " " + arg))
	if h.reply == nil {
		return bridge.Reply{}
	}
	return h.reply(ev, arg)
}

type fakeSession struct{ h *fakeHandler }

func (s *fakeSession) Connect(_ context.Context, mac bridge.Macros, c bridge.Client) bridge.Reply {
	return s.h.answer("connect", fmt.Sprintf("%s %s %s %d v=%q daemon=%q", c.Hostname, c.Family, c.Addr, c.Port,
		mac.Get("v"), mac.Get("daemon_name")))
}

func (s *fakeSession) Helo(_ context.Context, _ bridge.Macros, name string) bridge.Reply {
	return s.h.answer("helo", name)
}

func (s *fakeSession) Mail(_ context.Context, mac bridge.Macros, from string, args []string) bridge.Reply {
	return s.h.answer("mail", fmt.Sprintf("%s %q auth=%q", from, args, mac.Get("{auth_authen}")))
}

func (s *fakeSession) Rcpt(_ context.Context, _ bridge.Macros, rcpt string, args []string) bridge.Reply {
	return s.h.answer("rcpt", fmt.Sprintf("%s %q", rcpt, args))
}

func (s *fakeSession) Data(context.Context, bridge.Macros) bridge.Reply {
	return s.h.answer("data", "")
}

func (s *fakeSession) Header(_ context.Context, _ bridge.Macros, name, value string) bridge.Reply {
	return s.h.answer("header", fmt.Sprintf("%s %q", name, value))
}

func (s *fakeSession) EndOfHeaders(context.Context, bridge.Macros) bridge.Reply {
	return s.h.answer("eoh", "")
}

func (s *fakeSession) Body(_ context.Context, _ bridge.Macros, chunk []byte) bridge.Reply {
	return s.h.answer("body", fmt.Sprintf("%q", chunk))
}

func (s *fakeSession) EndOfMessage(ctx context.Context, mac bridge.Macros, mod bridge.Modifier) bridge.Reply {
	r := s.h.answer("eom", "i="+mac.Get("i"))
	if s.h.eom != nil {
		return s.h.eom(ctx, mod)
	}
	return r
}

func (s *fakeSession) Abort(context.Context, bridge.Macros) { s.h.record("abort") }

func (s *fakeSession) Close() { s.h.record("close") }

// logBuf is a slog handler target that tests can search.
type logBuf struct{ syncbuf.Buffer }

func (l *logBuf) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startServer serves h on a loopback port; the server is closed when the
// test ends and Serve must then return ErrServerClosed.
func startServer(t *testing.T, h bridge.Handler, opts Options) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = (&logBuf{}).logger()
	}
	srv := NewServer(h, opts)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		select {
		case err := <-served:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return srv, ln.Addr().String()
}

// mta opens a go-milter client session (an MTA offering everything) with
// the macros a Postfix would send.
func mta(t *testing.T, addr string, opts ...gomilter.Option) *gomilter.ClientSession {
	t.Helper()
	opts = append([]gomilter.Option{gomilter.WithReadTimeout(5 * time.Second)}, opts...)
	macros := gomilter.NewMacroBag()
	macros.Set(gomilter.MacroMTAVersion, "Postfix 3.7.11")
	macros.Set(gomilter.MacroDaemonName, "smtpd")
	macros.Set(gomilter.MacroQueueId, "QID1")
	macros.Set(gomilter.MacroAuthAuthen, "alice")
	s, err := gomilter.NewClient("tcp", addr, opts...).Session(macros)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// must returns a function that fails the test on an error and returns
// the action: must(t)(s.Helo("x")).
func must(t *testing.T) func(*gomilter.Action, error) *gomilter.Action {
	return func(a *gomilter.Action, err error) *gomilter.Action {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
}

// rawMTA speaks milter frames by hand, for hostile input.
type rawMTA struct {
	t *testing.T
	c net.Conn
}

func dialRaw(t *testing.T, addr string) *rawMTA {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawMTA{t: t, c: c}
}

// send writes one frame: length, command, data.
func (r *rawMTA) send(cmd byte, data ...byte) {
	r.t.Helper()
	r.sendLen(uint32(len(data)+1), append([]byte{cmd}, data...))
}

// sendLen writes a frame header announcing n bytes, then body.
func (r *rawMTA) sendLen(n uint32, body []byte) {
	r.t.Helper()
	var b []byte
	b = binary.BigEndian.AppendUint32(b, n)
	if _, err := r.c.Write(append(b, body...)); err != nil {
		r.t.Fatal(err)
	}
}

// recv reads one frame.
func (r *rawMTA) recv() (byte, []byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r.c, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > 1<<20 {
		return 0, nil, fmt.Errorf("bad reply length %d", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.c, b); err != nil {
		return 0, nil, err
	}
	return b[0], b[1:], nil
}

// negotiate offers everything at version 6 and reads the answer.
func (r *rawMTA) negotiate() {
	r.t.Helper()
	var d []byte
	d = binary.BigEndian.AppendUint32(d, 6)
	d = binary.BigEndian.AppendUint32(d, 0x1ff)
	d = binary.BigEndian.AppendUint32(d, 0x1fffff)
	r.send('O', d...)
	if cmd, _, err := r.recv(); err != nil || cmd != 'O' {
		r.t.Fatalf("negotiation answer %q, %v", cmd, err)
	}
}

// expectClosed checks that the server closes the connection (EOF or reset).
func (r *rawMTA) expectClosed() {
	r.t.Helper()
	for {
		_, _, err := r.recv()
		if err == nil {
			continue // a reply sent before the close
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			r.t.Fatal("server did not close the connection")
		}
		return
	}
}
