package ocp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The conformance transcripts in ../testdata/ocp replay the cases of the
// OCP digest (section h) against one role of this package. The format is
// described in ../testdata/ocp/README.md.

const stepTimeout = 5 * time.Second

type step struct {
	kind byte // 'P', 'S' or 'A'
	text string
	line int
}

type script struct {
	path   string
	role   string // "processor" or "server": the implementation under test
	expect string // "open" or "closed"
	config map[string]string
	steps  []step
}

func parseScript(path string) (*script, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := &script{path: path, config: map[string]string{}}
	s := bufio.NewScanner(f)
	for n := 1; s.Scan(); n++ {
		line := s.Text()
		switch {
		case line == "" || line == "#":
		case strings.HasPrefix(line, "# role: "):
			sc.role = strings.TrimPrefix(line, "# role: ")
		case strings.HasPrefix(line, "# expect: "):
			sc.expect = strings.Fields(strings.TrimPrefix(line, "# expect: "))[0]
		case strings.HasPrefix(line, "# config: "):
			for _, kv := range strings.Fields(strings.TrimPrefix(line, "# config: ")) {
				k, v, _ := strings.Cut(kv, "=")
				sc.config[k] = v
			}
		case strings.HasPrefix(line, "# "):
		case len(line) > 3 && (line[0] == 'P' || line[0] == 'S' || line[0] == 'A') && line[1:3] == ": ":
			sc.steps = append(sc.steps, step{kind: line[0], text: line[3:], line: n})
		default:
			return nil, fmt.Errorf("%s:%d: cannot parse %q", path, n, line)
		}
	}
	if sc.role != "processor" && sc.role != "server" {
		return nil, fmt.Errorf("%s: missing or bad role", path)
	}
	if sc.expect != "open" && sc.expect != "closed" {
		return nil, fmt.Errorf("%s: missing or bad expect", path)
	}
	return sc, s.Err()
}

// unescape turns the \r, \n and \\ escapes of a transcript line into bytes.
func unescape(s string) []byte {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case 'r':
				b = append(b, '\r')
				i++
				continue
			case 'n':
				b = append(b, '\n')
				i++
				continue
			case '\\':
				b = append(b, '\\')
				i++
				continue
			}
		}
		b = append(b, s[i])
	}
	return b
}

// globMatch matches s against pattern, where "..." stands for any text.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "...")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(s, p)
		}
		j := strings.Index(s, p)
		if j < 0 {
			return false
		}
		s = s[j+len(p):]
	}
	return s == ""
}

// txAPI is what both *Tx and *ServerTx offer.
type txAPI interface {
	Xid() int64
	Recv(ctx context.Context) (*Message, error)
	StartMessage(named ...Param) error
	Send(ctx context.Context, named []Param, payload []byte) (int64, error)
	EndMessage(res Result) error
	End(ctx context.Context, res Result) error
	Pause(yourOffset int64) error
	Resume(sizeRequest int64) error
}

type runner struct {
	t      *testing.T
	sc     *script
	ctx    context.Context
	peer   net.Conn
	dec    *Decoder
	dialed chan struct{}
	client *Client
	group  *ServiceGroup
	txs    map[int64]txAPI
	tx     txAPI
	accept chan *ServerTx
	last   *Message
	bg     []chan string
	iut    byte // 'P' or 'S'
}

func TestConformanceTranscripts(t *testing.T) {
	files, err := filepath.Glob("../testdata/ocp/T*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no transcripts found")
	}
	for _, path := range files {
		sc, err := parseScript(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r := &runner{t: t, sc: sc, ctx: ctx, txs: map[int64]txAPI{}}
			r.run()
		})
	}
}

func (r *runner) fatalf(st step, format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("%s:%d: %s", filepath.Base(r.sc.path), st.line, fmt.Sprintf(format, args...))
}

func (r *runner) duration(key string, def time.Duration) time.Duration {
	if v, ok := r.sc.config[key]; ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			r.t.Fatalf("config %s: %v", key, err)
		}
		return d
	}
	return def
}

func (r *runner) run() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.t.Fatal(err)
	}
	defer ln.Close()
	if r.sc.role == "processor" {
		r.iut = 'P'
		r.dialed = make(chan struct{})
		accepted := make(chan net.Conn, 1)
		go func() {
			nc, err := ln.Accept()
			if err == nil {
				accepted <- nc
			}
		}()
		bg := make(chan string, 1)
		r.bg = append(r.bg, bg)
		go func() {
			defer close(r.dialed)
			cl, err := Dial(r.ctx, ln.Addr().String(), ClientConfig{
				HandshakeTimeout: r.duration("handshake", 5*time.Second),
				TxIdleTimeout:    r.duration("tx-idle", -1),
				Known:            strings.FieldsFunc(r.sc.config["known"], func(c rune) bool { return c == ',' }),
			})
			r.client = cl
			bg <- r.outcome(err, strings.ReplaceAll(r.sc.config["dial"], "-", " "))
		}()
		select {
		case r.peer = <-accepted:
		case <-time.After(stepTimeout):
			r.t.Fatal("client did not connect")
		}
		defer func() {
			<-r.dialed
			if r.client != nil {
				r.client.Close(context.Background(), Result{})
			}
		}()
	} else {
		r.iut = 'S'
		r.accept = make(chan *ServerTx, 16)
		srv := &Server{
			Handler: HandlerFunc(func(ctx context.Context, tx *ServerTx) {
				r.accept <- tx
				select {
				case <-tx.Done():
				case <-ctx.Done():
				}
			}),
			Negotiate:   acceptProfile,
			IdleTimeout: r.duration("idle", 0),
		}
		go srv.Serve(ln)
		defer srv.Close()
		if r.peer, err = net.Dial("tcp", ln.Addr().String()); err != nil {
			r.t.Fatal(err)
		}
	}
	defer r.peer.Close()
	r.dec = NewDecoder(r.peer, Limits{})
	for _, st := range r.sc.steps {
		switch {
		case st.kind == 'A':
			r.action(st)
		case st.kind == r.iut:
			r.expectIUT(st)
		default:
			r.write(st)
		}
	}
	r.waitBackground(step{line: 0})
	r.finish()
}

// write sends a scripted peer line.
func (r *runner) write(st step) {
	if st.text == "<EOF>" {
		if tc, ok := r.peer.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		return
	}
	if _, err := r.peer.Write(unescape(st.text)); err != nil {
		r.fatalf(st, "write: %v", err)
	}
}

// readIUT reads the next message the implementation under test sent.
func (r *runner) readIUT(timeout time.Duration) (*Message, error) {
	r.peer.SetReadDeadline(time.Now().Add(timeout))
	return r.dec.Decode()
}

func (r *runner) expectIUT(st step) {
	m, err := r.readIUT(stepTimeout)
	if st.text == "<EOF>" {
		if err == nil {
			r.fatalf(st, "expected the connection to close, got %q", AppendMessage(nil, m))
		}
		return
	}
	if err != nil {
		r.fatalf(st, "expected %s, got error %v", st.text, err)
	}
	got := string(AppendMessage(nil, m))
	if want := string(unescape(st.text)); !globMatch(want, got) {
		r.fatalf(st, "IUT sent\n  %q\nwant\n  %q", got, want)
	}
}

func (r *runner) finish() {
	switch r.sc.expect {
	case "open":
		probe := "PQ;\r\n"
		if _, err := r.peer.Write([]byte(probe)); err != nil {
			r.t.Fatalf("expect open: write probe: %v", err)
		}
		m, err := r.readIUT(stepTimeout)
		if err != nil {
			r.t.Fatalf("expect open: no answer to PQ: %v", err)
		}
		if got := string(AppendMessage(nil, m)); got != "PA;\r\n" {
			r.t.Fatalf("expect open: answer to PQ is %q, want PA", got)
		}
	case "closed":
		m, err := r.readIUT(stepTimeout)
		if err == nil {
			r.t.Fatalf("expect closed: IUT sent %q", AppendMessage(nil, m))
		}
		if isTimeout(err) {
			r.t.Fatal("expect closed: connection still open")
		}
	}
}

// outcome checks err against an expectation ("", "ok", "eof", "err conn",
// "err tx 400", "err negotiation", "err state") and returns a complaint
// or "".
func (r *runner) outcome(err error, want string) string {
	f := strings.Fields(want)
	if len(f) == 0 || f[0] == "ok" {
		if err != nil {
			return fmt.Sprintf("unexpected error %v", err)
		}
		return ""
	}
	if f[0] == "eof" {
		if err != io.EOF {
			return fmt.Sprintf("got %v, want io.EOF", err)
		}
		return ""
	}
	if f[0] != "err" || len(f) < 2 {
		return fmt.Sprintf("bad expectation %q", want)
	}
	var (
		te *TxError
		ce *ConnError
		ne *NegotiationError
	)
	ok := false
	code := 0
	switch f[1] {
	case "tx":
		ok = errors.As(err, &te)
		if ok {
			code = te.Result.Code
		}
	case "conn":
		ok = errors.As(err, &ce)
		if ok {
			code = ce.Result.Code
		}
	case "negotiation":
		ok = errors.As(err, &ne)
	case "state":
		ok = errors.Is(err, ErrState)
	case "closed":
		ok = errors.Is(err, ErrClosed)
	}
	if !ok {
		return fmt.Sprintf("got %v, want %s", err, want)
	}
	if len(f) > 2 && strconv.Itoa(code) != f[2] {
		return fmt.Sprintf("got %v, want %s", err, want)
	}
	return ""
}

func (r *runner) waitBackground(st step) {
	for _, ch := range r.bg {
		select {
		case msg := <-ch:
			if msg != "" {
				r.fatalf(st, "background action: %s", msg)
			}
		case <-time.After(stepTimeout):
			r.fatalf(st, "background action did not finish")
		}
	}
	r.bg = nil
}

// action runs an application step on the implementation under test.
func (r *runner) action(st step) {
	text, want, _ := strings.Cut(st.text, " => ")
	text, async1 := strings.CutSuffix(text, " &")
	want, async2 := strings.CutSuffix(want, " &")
	async := async1 || async2
	verb, arg, _ := strings.Cut(text, " ")
	switch verb {
	case "wait":
		r.waitBackground(st)
		return
	case "quiet":
		d, err := time.ParseDuration(arg)
		if err != nil {
			r.fatalf(st, "quiet: %v", err)
		}
		m, err := r.readIUT(d)
		if err == nil {
			r.fatalf(st, "expected silence, IUT sent %q", AppendMessage(nil, m))
		}
		if !isTimeout(err) || r.dec.partial {
			r.fatalf(st, "expected silence, got %v", err)
		}
		return
	case "failed", "succeeded":
		if r.last == nil {
			r.fatalf(st, "%s: no message received", verb)
		}
		res, err := resultOf(r.last, 1)
		if err != nil {
			r.fatalf(st, "%s: %v", verb, err)
		}
		if res.Failed() != (verb == "failed") {
			r.fatalf(st, "result %v: Failed() = %v", res, res.Failed())
		}
		return
	}
	if r.iut == 'P' {
		<-r.dialed
		if r.client == nil {
			r.fatalf(st, "%s: no client (dial failed)", verb)
		}
	}
	do := func() string { return r.do(st, verb, arg, want) }
	if async {
		ch := make(chan string, 1)
		r.bg = append(r.bg, ch)
		go func() { ch <- do() }()
		return
	}
	if msg := do(); msg != "" {
		r.fatalf(st, "%s", msg)
	}
}

func (r *runner) do(st step, verb, arg, want string) string {
	ctx, cancel := context.WithTimeout(r.ctx, stepTimeout)
	defer cancel()
	switch verb {
	case "group":
		uri := testProfile
		if arg != "" {
			uri = arg
		}
		sg, _, err := r.client.NewServiceGroup(ctx, []Service{{URI: "urn:test"}}, []Feature{{URI: uri}})
		if sg != nil {
			r.group = sg
		}
		return r.outcome(err, want)
	case "ungroup":
		return r.outcome(r.client.DestroyServiceGroup(r.group), want)
	case "start":
		tx, err := r.client.Start(ctx, r.group)
		if err == nil {
			r.tx = tx
			r.txs[tx.Xid()] = tx
		}
		return r.outcome(err, want)
	case "accept":
		select {
		case tx := <-r.accept:
			r.tx = tx
			r.txs[tx.Xid()] = tx
			return ""
		case <-ctx.Done():
			return "no transaction accepted"
		}
	case "close":
		res := Result{}
		if arg != "" {
			res = Failure(arg)
		}
		return r.outcome(r.client.Close(ctx, res), want)
	case "recv":
		tx, err := r.txFor(arg)
		if err != nil {
			return err.Error()
		}
		m, err := tx.Recv(ctx)
		if err != nil || want != "" {
			return r.outcome(err, want)
		}
		r.last = m
		got := string(AppendMessage(nil, m))
		if w := string(unescape(arg)); !globMatch(w, got) {
			return fmt.Sprintf("Recv returned %q, want %q", got, w)
		}
		return ""
	case "send":
		return r.outcome(r.send(ctx, arg), want)
	}
	return fmt.Sprintf("unknown action %q", verb)
}

// txFor returns the transaction a message pattern names by its xid, or the
// current one.
func (r *runner) txFor(pattern string) (txAPI, error) {
	f := strings.Fields(string(unescape(pattern)))
	if len(f) > 1 {
		if xid, err := strconv.ParseInt(strings.TrimRight(f[1], ";\r\n"), 10, 64); err == nil {
			if tx := r.txs[xid]; tx != nil {
				return tx, nil
			}
		}
	}
	if r.tx == nil {
		return nil, errors.New("no current transaction")
	}
	return r.tx, nil
}

// send maps an OCP message written in the transcript to the API call
// producing it.
func (r *runner) send(ctx context.Context, text string) error {
	m, err := NewDecoder(strings.NewReader(string(unescape(text))), Limits{}).Decode()
	if err != nil {
		return fmt.Errorf("transcript message: %w", err)
	}
	tx, err := r.txFor(text)
	if err != nil {
		return err
	}
	res, _ := resultOf(m, 1)
	switch m.Name {
	case MsgAMS:
		return tx.StartMessage(m.Named...)
	case MsgDUM:
		_, err := tx.Send(ctx, m.Named, m.Payload)
		return err
	case MsgAME:
		return tx.EndMessage(res)
	case MsgTE:
		return tx.End(ctx, res)
	case MsgDWP:
		off, _ := m.AnonUint(1)
		return tx.Pause(off)
	case MsgDWM:
		n, _, _ := m.Uint(ParamSizeRequest)
		return tx.Resume(n)
	}
	switch tx := tx.(type) {
	case *Tx:
		if m.Name == MsgDSS {
			return tx.SendDSS()
		}
	case *ServerTx:
		switch m.Name {
		case MsgDUY:
			off, _ := m.AnonUint(1)
			size, _ := m.AnonUint(2)
			return tx.SendDUY(off, size, m.Named...)
		case MsgDWSS:
			return tx.SendDWSS()
		case MsgDWSR:
			n, _ := m.AnonUint(1)
			return tx.SendDWSR(n)
		case MsgDPI:
			off, _ := m.AnonUint(1)
			size, _ := m.AnonUint(2)
			return tx.SendDPI(off, size)
		}
	}
	return fmt.Errorf("cannot send %s in this role", m.Name)
}
