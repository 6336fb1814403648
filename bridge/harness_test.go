package bridge_test

import (
	"context"
	"log/slog"
	"net"
	"os"
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

	mu   sync.Mutex
	seen []*ocp.Message
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
	for {
		m, err := tx.Recv(ctx)
		if err != nil {
			return
		}
		c.mu.Lock()
		c.seen = append(c.seen, m)
		c.mu.Unlock()
		if err := c.script(ctx, tx, m); err != nil {
			tx.End(ocp.Failure(err.Error()))
			return
		}
	}
}

// messages returns the processor's messages seen so far.
func (c *callout) messages() []*ocp.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*ocp.Message(nil), c.seen...)
}

// rawTracker follows the processor's RAWDATA range of one transaction.
type rawTracker struct{ start, size int64 }

// standardScript answers like opes-callout's recipient-policy + header-tag:
// a RCPT containing "blocked" gets 550 5.1.1, other RCPTs a DUY; RAWDATA is
// answered after the processor's AME with an annotation DUM adding
// X-Test: yes and a DUY of the whole original.
func standardScript() func(ctx context.Context, tx *ocp.ServerTx, m *ocp.Message) error {
	raws := map[int64]*rawTracker{}
	var mu sync.Mutex
	return func(ctx context.Context, tx *ocp.ServerTx, m *ocp.Message) error {
		mu.Lock()
		rt := raws[tx.Xid()]
		if rt == nil {
			rt = &rawTracker{start: -1}
			raws[tx.Xid()] = rt
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
			off, _ := m.AnonUint(1)
			switch d.Part {
			case ocpsmtp.PartRCPT:
				if contains(m.Payload, "blocked") {
					_, err := tx.Send(ctx, ocpsmtp.Data{Part: ocpsmtp.PartRCPT, SMTPError: "550 5.1.1 <blocked@example.com>: Recipient address rejected"}.Params(), []byte{})
					return err
				}
				return tx.SendDUY(off, int64(len(m.Payload)))
			case ocpsmtp.PartRAWDATA:
				if rt.start < 0 {
					rt.start = off
				}
				rt.size += int64(len(m.Payload))
			}
		case ocp.MsgAME:
			if rt.start >= 0 {
				if _, err := tx.Send(ctx, ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA, AddHeader: "X-Test: yes"}.Params(), []byte{}); err != nil {
					return err
				}
				if err := tx.SendDUY(rt.start, rt.size); err != nil {
					return err
				}
			}
			return tx.EndMessage(ocp.Result{Code: 200})
		}
		return nil
	}
}

func contains(b []byte, s string) bool {
	return len(s) == 0 || len(b) >= len(s) && (string(b) == s || indexOf(string(b), s) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
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

func startMilter(t *testing.T, p *bridge.Policy) *mta {
	t.Helper()
	p.SpoolDir = t.TempDir()
	br := bridge.New(p, testLogger(t))
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
