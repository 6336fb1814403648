package ocptest

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// Script answers one processor message of a transaction; an error ends the
// transaction with TE 400 carrying the error's text.
type Script func(ctx context.Context, tx *ocp.ServerTx, m *ocp.Message) error

// Server is an in-process OCP callout server whose transactions are
// answered by a Script, recording every message the processor sent.
type Server struct {
	// Addr is the loopback host:port it listens on.
	Addr string

	srv    *ocp.Server
	script Script

	mu    sync.Mutex
	conns map[*ocp.Group]bool // distinct service groups seen
	seen  []*ocp.Message
	ends  []error // how each transaction ended, as the server's Recv saw it
}

// ServerOption changes how StartServer sets the server up.
type ServerOption func(*ocp.Server)

// WithNegotiate replaces the default negotiation (the first feature
// offered, as is).
func WithNegotiate(f func(*ocp.Group, []ocp.Feature) (ocp.Feature, bool)) ServerOption {
	return func(s *ocp.Server) { s.Negotiate = f }
}

// WithLogger logs the server's events to l.
func WithLogger(l *slog.Logger) ServerOption { return func(s *ocp.Server) { s.Logger = l } }

// StartServer serves script on a loopback port until the test ends. By
// default the negotiated profile is the first offer itself (the server
// takes every part offered).
func StartServer(t testing.TB, script Script, opts ...ServerOption) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &Server{Addr: ln.Addr().String(), script: script}
	c.srv = &ocp.Server{
		Handler: ocp.HandlerFunc(c.serve),
		Negotiate: func(sg *ocp.Group, offer []ocp.Feature) (ocp.Feature, bool) {
			if len(offer) == 0 {
				return ocp.Feature{}, false
			}
			return offer[0], true
		},
		Logger: slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(c.srv)
	}
	go c.srv.Serve(ln)
	t.Cleanup(func() { c.srv.Close() })
	return c
}

// Close stops the server.
func (c *Server) Close() error { return c.srv.Close() }

func (c *Server) serve(ctx context.Context, tx *ocp.ServerTx) {
	c.mu.Lock()
	if c.conns == nil {
		c.conns = map[*ocp.Group]bool{}
	}
	c.conns[tx.Group()] = true
	c.mu.Unlock()
	for {
		m, err := tx.Recv(ctx)
		if err != nil {
			c.mu.Lock()
			c.ends = append(c.ends, err)
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		c.seen = append(c.seen, m)
		c.mu.Unlock()
		if err := c.script(ctx, tx, m); err != nil {
			tx.End(ctx, ocp.Failure(err.Error()))
			return
		}
	}
}

// Connections returns how many service groups carried transactions (the
// bridge opens one per chain on each connection).
func (c *Server) Connections() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.conns)
}

// Messages returns the processor's messages seen so far.
func (c *Server) Messages() []*ocp.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*ocp.Message(nil), c.seen...)
}

// WaitEnds waits until n transactions ended (at most 5 s) and returns how.
func (c *Server) WaitEnds(t testing.TB, n int) []error {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		ends := append([]error(nil), c.ends...)
		c.mu.Unlock()
		if len(ends) >= n || time.Now().After(deadline) {
			return ends
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Answers says how a scripted callout server answers each part.
type Answers struct {
	// RCPT answers one RCPT payload: "" = DUY (unchanged),
	// "error:<reply>", "replace:<payload>", "delete", "hang" (never
	// answer).
	RCPT func(payload string) string
	// MAIL answers an adaptive MAIL the same way.
	MAIL func(payload string) string
	// Raw answers the RAWDATA after the processor's AME; nil = DUY.
	Raw func(orig []byte) RawAnswer
	// Data answers a non-RAWDATA data-part instance after the processor's
	// AME: "" = DUY, "delete", "replace:<bytes>", "none".
	Data func(part ocpsmtp.Part, index string, orig []byte) string
	// OnDUM runs for every processor DUM (to fail mid-body, for example).
	OnDUM func(tx *ocp.ServerTx, part ocpsmtp.Part) error
}

// RawAnswer is a scripted answer to RAWDATA.
type RawAnswer struct {
	Data []byte // adapted RAWDATA; nil = DUY of the original
	// AddHeaders are Add-Header values; "top:" before one asks for
	// Add-Header-At: top.
	AddHeaders []string
	SMTPError  string
	Advice     ocpsmtp.Advice
	None       bool // send no RAWDATA answer at all
}

// Script returns the script that answers per a.
func (a Answers) Script() Script {
	type inst struct {
		part  ocpsmtp.Part
		index string
		off   int64
		data  []byte
		// adaptive: the processor allowed SMTP-Error on it.
		adaptive bool
	}
	type state struct {
		start int64
		raw   []byte
		insts []*inst
	}
	states := map[*ocp.ServerTx]*state{}
	var mu sync.Mutex
	return func(ctx context.Context, tx *ocp.ServerTx, m *ocp.Message) error {
		mu.Lock()
		st := states[tx]
		if st == nil {
			st = &state{start: -1}
			states[tx] = st
		}
		mu.Unlock()
		switch m.Name {
		case ocp.MsgAMS:
			return tx.StartMessage()
		case ocp.MsgDUM:
			return a.dum(ctx, tx, m, func(off int64, d ocpsmtp.Data) {
				switch {
				case d.Part == ocpsmtp.PartRAWDATA:
					if st.start < 0 {
						st.start = off
					}
					st.raw = append(st.raw, m.Payload...)
				case d.Part.Data():
					n := len(st.insts)
					if n == 0 || st.insts[n-1].part != d.Part || st.insts[n-1].index != d.Index {
						st.insts = append(st.insts, &inst{part: d.Part, index: d.Index, off: off, adaptive: d.Allows(ocpsmtp.AllowSMTPError)})
						n++
					}
					st.insts[n-1].data = append(st.insts[n-1].data, m.Payload...)
				}
			})
		case ocp.MsgAME:
			if st.start >= 0 {
				if err := a.answerRaw(ctx, tx, st.start, st.raw); err != nil {
					return err
				}
			}
			for _, in := range st.insts {
				ans := ""
				if a.Data != nil {
					ans = a.Data(in.part, in.index, in.data)
				}
				params := ocpsmtp.Data{Part: in.part, Index: in.index}.Params()
				var err error
				switch {
				case !in.adaptive || ans == "none":
				case ans == "":
					err = tx.SendDUY(in.off, int64(len(in.data)))
				case ans == "delete":
					_, err = tx.Send(ctx, params, []byte{})
				case strings.HasPrefix(ans, "replace:"):
					_, err = tx.Send(ctx, params, []byte(strings.TrimPrefix(ans, "replace:")))
				}
				if err != nil {
					return err
				}
			}
			return tx.EndMessage(ocp.Result{Code: 200})
		}
		return nil
	}
}

// dum answers an envelope DUM (MAIL, RCPT) at once and hands a data DUM
// to keep.
func (a Answers) dum(ctx context.Context, tx *ocp.ServerTx, m *ocp.Message, keep func(off int64, d ocpsmtp.Data)) error {
	d, err := ocpsmtp.ParseData(m)
	if err != nil {
		return err
	}
	if a.OnDUM != nil {
		if err := a.OnDUM(tx, d.Part); err != nil {
			return err
		}
	}
	off, _ := m.AnonUint(1)
	if d.Part != ocpsmtp.PartRCPT && d.Part != ocpsmtp.PartMAIL {
		keep(off, d)
		return nil
	}
	f := a.RCPT
	if d.Part == ocpsmtp.PartMAIL {
		f = a.MAIL
	}
	if !d.Allows(ocpsmtp.AllowSMTPError) {
		return nil // informative
	}
	ans := ""
	if f != nil {
		ans = f(string(m.Payload))
	}
	switch {
	case ans == "":
		return tx.SendDUY(off, int64(len(m.Payload)))
	case ans == "hang":
		return nil
	case ans == "delete":
		_, err := tx.Send(ctx, ocpsmtp.Data{Part: d.Part}.Params(), []byte{})
		return err
	case strings.HasPrefix(ans, "error:"):
		_, err := tx.Send(ctx, ocpsmtp.Data{Part: d.Part, SMTPError: strings.TrimPrefix(ans, "error:")}.Params(), []byte{})
		return err
	case strings.HasPrefix(ans, "replace:"):
		_, err := tx.Send(ctx, ocpsmtp.Data{Part: d.Part}.Params(), []byte(strings.TrimPrefix(ans, "replace:")))
		return err
	}
	return nil
}

// answerRaw sends the answer to the RAWDATA that started at start.
func (a Answers) answerRaw(ctx context.Context, tx *ocp.ServerTx, start int64, raw []byte) error {
	ans := RawAnswer{}
	if a.Raw != nil {
		ans = a.Raw(raw)
	}
	send := func(d ocpsmtp.Data, payload []byte) error {
		_, err := tx.Send(ctx, d.Params(), payload)
		return err
	}
	for _, h := range ans.AddHeaders {
		v, top := strings.CutPrefix(h, "top:") // Add-Header-At: top
		if err := send(ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA, AddHeader: v, AddHeaderTop: top}, []byte{}); err != nil {
			return err
		}
	}
	if ans.Advice != "" {
		if err := send(ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA, Advice: ans.Advice}, []byte{}); err != nil {
			return err
		}
	}
	switch {
	case ans.None:
		return nil
	case ans.SMTPError != "":
		return send(ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA, SMTPError: ans.SMTPError}, []byte{})
	case ans.Data != nil:
		return send(ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA}, ans.Data)
	}
	return tx.SendDUY(start, int64(len(raw)))
}
