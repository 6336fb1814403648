package bridge_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/opes-milter/opes-milter/bridge"
	"github.com/opes-milter/opes-milter/milter"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// callout is an in-process OCP callout server whose transactions are
// answered by a script, recording every message the processor sent.
type callout struct {
	addr   string
	srv    *ocp.Server
	script func(ctx context.Context, tx *ocp.ServerTx, m *ocp.Message) error

	mu    sync.Mutex
	conns map[*ocp.Group]bool // distinct service groups seen = connections (one group each)
	seen  []*ocp.Message
	ends  []error // how each transaction ended, as the server's Recv saw it
}

// startCallout serves script on a loopback port; the negotiated profile is
// the offer itself (the server takes every part offered).
func startCallout(t *testing.T, script func(ctx context.Context, tx *ocp.ServerTx, m *ocp.Message) error) *callout {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &callout{addr: ln.Addr().String(), script: script}
	c.srv = &ocp.Server{
		Handler: ocp.HandlerFunc(c.serve),
		Negotiate: func(sg *ocp.Group, offer []ocp.Feature) (ocp.Feature, bool) {
			if len(offer) == 0 {
				return ocp.Feature{}, false
			}
			return offer[0], true
		},
		Logger: testLogger(t),
	}
	go c.srv.Serve(ln)
	t.Cleanup(func() { c.srv.Close() })
	return c
}

func (c *callout) serve(ctx context.Context, tx *ocp.ServerTx) {
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

// connections returns how many OCP connections carried transactions (each
// connection of the bridge has one service group per chain).
func (c *callout) connections() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.conns)
}

// messages returns the processor's messages seen so far.
func (c *callout) messages() []*ocp.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*ocp.Message(nil), c.seen...)
}

// waitEnds waits until n transactions ended and returns how.
func (c *callout) waitEnds(t *testing.T, n int) []error {
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

// answers configures scriptServer: how the callout answers each part.
type answers struct {
	// rcpt answers one RCPT payload: "" = DUY (unchanged), "error:<reply>",
	// "replace:<payload>", "delete", "hang" (never answer).
	rcpt func(payload string) string
	// mail answers an adaptive MAIL the same way.
	mail func(payload string) string
	// raw answers the RAWDATA after the processor's AME; nil = DUY.
	raw func(orig []byte) rawAnswer
	// data answers a non-RAWDATA data-part instance after the processor's
	// AME: "" = DUY, "delete", "replace:<bytes>", "none".
	data func(part ocpsmtp.Part, index string, orig []byte) string
	// onDUM runs for every processor DUM (to fail mid-body, for example).
	onDUM func(tx *ocp.ServerTx, part ocpsmtp.Part) error
}

// rawAnswer is the callout's answer to RAWDATA.
type rawAnswer struct {
	data       []byte // adapted RAWDATA; nil = DUY of the original
	addHeaders []string
	smtpError  string
	advice     ocpsmtp.Advice
	none       bool // send no RAWDATA answer at all
}

// scriptServer returns a callout script answering per a.
func scriptServer(a answers) func(ctx context.Context, tx *ocp.ServerTx, m *ocp.Message) error {
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
			d, err := ocpsmtp.ParseData(m)
			if err != nil {
				return err
			}
			if a.onDUM != nil {
				if err := a.onDUM(tx, d.Part); err != nil {
					return err
				}
			}
			off, _ := m.AnonUint(1)
			switch d.Part {
			case ocpsmtp.PartRCPT, ocpsmtp.PartMAIL:
				f := a.rcpt
				if d.Part == ocpsmtp.PartMAIL {
					f = a.mail
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
			case ocpsmtp.PartRAWDATA:
				if st.start < 0 {
					st.start = off
				}
				st.raw = append(st.raw, m.Payload...)
			default:
				if !d.Part.Data() {
					break
				}
				n := len(st.insts)
				if n == 0 || st.insts[n-1].part != d.Part || st.insts[n-1].index != d.Index {
					st.insts = append(st.insts, &inst{part: d.Part, index: d.Index, off: off, adaptive: d.Allows(ocpsmtp.AllowSMTPError)})
					n++
				}
				st.insts[n-1].data = append(st.insts[n-1].data, m.Payload...)
			}
		case ocp.MsgAME:
			if st.start >= 0 {
				ans := rawAnswer{}
				if a.raw != nil {
					ans = a.raw(st.raw)
				}
				for _, h := range ans.addHeaders {
					v, top := strings.CutPrefix(h, "top:") // Add-Header-At: top
					if _, err := tx.Send(ctx, ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA, AddHeader: v, AddHeaderTop: top}.Params(), []byte{}); err != nil {
						return err
					}
				}
				if ans.advice != "" {
					if _, err := tx.Send(ctx, ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA, Advice: ans.advice}.Params(), []byte{}); err != nil {
						return err
					}
				}
				switch {
				case ans.none:
				case ans.smtpError != "":
					if _, err := tx.Send(ctx, ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA, SMTPError: ans.smtpError}.Params(), []byte{}); err != nil {
						return err
					}
				case ans.data != nil:
					if _, err := tx.Send(ctx, ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA}.Params(), ans.data); err != nil {
						return err
					}
				default:
					if err := tx.SendDUY(st.start, int64(len(st.raw))); err != nil {
						return err
					}
				}
			}
			for _, in := range st.insts {
				ans := ""
				if a.data != nil {
					ans = a.data(in.part, in.index, in.data)
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

// standardScript answers like opes-callout's recipient-policy + header-tag:
// a RCPT containing "blocked" gets 550 5.1.1, other RCPTs a DUY; RAWDATA gets
// X-Test: yes and a DUY of the whole original.
func standardScript() func(ctx context.Context, tx *ocp.ServerTx, m *ocp.Message) error {
	return scriptServer(answers{
		rcpt: func(p string) string {
			if strings.Contains(p, "blocked") {
				return "error:550 5.1.1 <blocked@example.com>: Recipient address rejected"
			}
			return ""
		},
		raw: func([]byte) rawAnswer { return rawAnswer{addHeaders: []string{"X-Test: yes"}} },
	})
}

// testPolicy is one receiver route to the callout at addr.
func testPolicy(addr string, adaptive, informative []ocpsmtp.Part) *bridge.Policy {
	set := &bridge.ServerSet{Name: "test", Addresses: []string{addr}, Connections: 1,
		Client: ocp.ClientConfig{HandshakeTimeout: 2 * time.Second}}
	chain := &bridge.Chain{Name: "c", Servers: set, OnFailure: map[bridge.FailureClass]bridge.Action{},
		Services: []ocp.Service{{URI: "urn:test:recipient-policy"}, {URI: "urn:test:header-tag"}}}
	route := &bridge.Route{Name: "inbound", Chain: chain, Profile: ocpsmtp.Profile{
		URI: ocpsmtp.ReceiverURI, Adaptive: adaptive, Informative: informative}}
	return &bridge.Policy{
		Routes:    []*bridge.Route{route},
		Select:    func(bridge.Facts) *bridge.Route { return route },
		SystemURI: "http://opes.example.net/opes-milter",
		TraceVia:  true,
		Timeouts: bridge.Timeouts{Rcpt: 3 * time.Second, EndOfMessage: 10 * time.Second,
			Progress: time.Second},
		MaxHeaderBytes: 1 << 20,
		SpoolMemory:    1 << 20,
	}
}

// mta is a milter server for a bridge, driven by go-milter's client.
type mta struct {
	addr string
	br   *bridge.Bridge
}

func startMilter(t *testing.T, p *bridge.Policy, opts ...bridge.Option) *mta {
	t.Helper()
	p.SpoolDir = t.TempDir()
	br := bridge.New(p, testLogger(t), opts...)
	srv := milter.NewServer(br, milter.Options{Logger: testLogger(t)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		br.Close()
	})
	return &mta{addr: ln.Addr().String(), br: br}
}

// session opens an MTA session that went through connect and HELO.
func (m *mta) session(t *testing.T) *gomilter.ClientSession {
	t.Helper()
	cl := gomilter.NewClient("tcp", m.addr, gomilter.WithReadTimeout(20*time.Second))
	s, err := cl.Session(gomilter.NewMacroBag())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if act, err := s.Conn("client.example", gomilter.FamilyInet, 40000, "192.0.2.10"); err != nil || act.Type != gomilter.ActionContinue {
		t.Fatalf("connect: %v %v", act, err)
	}
	if act, err := s.Helo("client.example"); err != nil || act.Type != gomilter.ActionContinue {
		t.Fatalf("helo: %v %v", act, err)
	}
	return s
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
