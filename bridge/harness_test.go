package bridge_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/bridge"
	"github.com/opes-milter/opes-milter/internal/ocptest"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// callout is the scripted OCP callout server of the tests (internal/ocptest):
// it answers transactions by a script and records what the processor sent.
type callout = ocptest.Server

// startCallout serves script on a loopback port; the negotiated profile is
// the offer itself (the server takes every part offered).
func startCallout(t *testing.T, script ocptest.Script) *callout {
	t.Helper()
	return ocptest.StartServer(t, script, ocptest.WithLogger(testLogger(t)))
}

// standardScript answers like opes-callout's recipient-policy + header-tag:
// a RCPT containing "blocked" gets 550 5.1.1, other RCPTs a DUY; RAWDATA gets
// X-Test: yes and a DUY of the whole original.
func standardScript() func(ctx context.Context, tx *ocp.ServerTx, m *ocp.Message) error {
	return scriptServer(ocptest.Answers{
		RCPT: func(p string) string {
			if strings.Contains(p, "blocked") {
				return "error:550 5.1.1 <blocked@example.com>: Recipient address rejected"
			}
			return ""
		},
		Raw: func([]byte) ocptest.RawAnswer { return ocptest.RawAnswer{AddHeaders: []string{"X-Test: yes"}} },
	})
}

// testPolicy is one receiver route to the callout at addr.
func testPolicy(addr string, adaptive, informative []ocpsmtp.Part) *bridge.Policy {
	set := &mapping.ServerSet{Name: "test", Addresses: []string{addr}, Connections: 1,
		HandshakeTimeout: 2 * time.Second}
	chain := &mapping.Chain{Name: "c", Server: set,
		Group: []ocp.Service{{URI: "urn:test:recipient-policy"}, {URI: "urn:test:header-tag"}}}
	route := &mapping.Route{Name: "inbound", Chain: chain, Profile: mapping.Receiver,
		Adaptive: adaptive, Informative: informative}
	return &bridge.Policy{
		Routes:    []*mapping.Route{route},
		Select:    func(mapping.Facts) *mapping.Route { return route },
		SystemURI: "http://opes.example.net/opes-milter",
		TraceVia:  true,
		Timeouts: mapping.Timeouts{Rcpt: 3 * time.Second, EndOfMessage: 10 * time.Second,
			ProgressInterval: time.Second},
		MaxHeaderBytes: 1 << 20,
		SpoolMemory:    1 << 20,
	}
}

// mta is a bridge that test sessions drive in process (mta_test.go).
type mta struct {
	br *bridge.Bridge
}

// startMilter starts a bridge for p, closed when the test ends.
func startMilter(t *testing.T, p *bridge.Policy, opts ...bridge.Option) *mta {
	t.Helper()
	p.SpoolDir = t.TempDir()
	br := bridge.New(p, testLogger(t), opts...)
	t.Cleanup(func() { br.Close() })
	return &mta{br: br}
}

// session opens an MTA session that went through connect and HELO.
func (m *mta) session(t *testing.T) *ClientSession {
	t.Helper()
	s, err := m.Session(NewMacroBag())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if act, err := s.Conn("client.example", FamilyInet, 40000, "192.0.2.10"); err != nil || act.Type != ActionContinue {
		t.Fatalf("connect: %v %v", act, err)
	}
	if act, err := s.Helo("client.example"); err != nil || act.Type != ActionContinue {
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

// scriptServer returns the script that answers per a.
func scriptServer(a ocptest.Answers) ocptest.Script { return a.Script() }
