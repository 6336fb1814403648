package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/bridge"
	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// subjectTagger needs the header only (ALLHEADERS) and tags the Subject.
type subjectTagger struct{}

func (subjectTagger) Needs() callout.Needs {
	return callout.Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartALLHEADERS}}
}

func (subjectTagger) AdaptMessage(_ context.Context, _ *callout.Tx, msg *callout.Message) (callout.Decision, error) {
	b, err := msg.Bytes(0, msg.Size())
	if err != nil {
		return callout.Decision{}, err
	}
	i := bytes.Index(b, []byte("Subject: "))
	if i < 0 {
		return callout.Keep(), nil
	}
	at := int64(i + len("Subject: "))
	out, err := msg.Splice(callout.Edit{Offset: at, End: at, Data: []byte("[tagged] ")})
	if err != nil {
		return callout.Decision{}, err
	}
	return callout.ReplaceMessage(out), nil
}

// recListener records every octet its connections read, that is what the
// processor sent.
type recListener struct {
	net.Listener
	mu  sync.Mutex
	got bytes.Buffer
}

func (l *recListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recConn{Conn: c, l: l}, nil
}

func (l *recListener) bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.got.Bytes())
}

type recConn struct {
	net.Conn
	l *recListener
}

func (c *recConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.l.mu.Lock()
	c.l.got.Write(p[:n])
	c.l.mu.Unlock()
	return n, err
}

// mods records the milter actions of one message.
type mods struct{ changed []string }

func (m *mods) AddHeader(name, value string) error {
	m.changed = append(m.changed, "add "+name+":"+value)
	return nil
}
func (m *mods) InsertHeader(i int, name, value string) error {
	m.changed = append(m.changed, "insert "+name+":"+value)
	return nil
}
func (m *mods) ChangeHeader(i int, name, value string) error {
	m.changed = append(m.changed, "change "+name+":"+value)
	return nil
}
func (m *mods) ReplaceBody(r io.Reader) error        { m.changed = append(m.changed, "body"); return nil }
func (m *mods) ChangeFrom(from, args string) error   { return nil }
func (m *mods) AddRecipient(rcpt, args string) error { return nil }
func (m *mods) DeleteRecipient(rcpt string) error    { return nil }
func (m *mods) Quarantine(reason string) error       { return nil }
func (m *mods) Progress() error                      { return nil }
func (m *mods) String() string                       { return strings.Join(m.changed, "; ") }

type noMacros struct{}

func (noMacros) Get(string) string { return "" }

// TestHeadersOnlyChainSendsNoBody covers defect 7 of issue 13 end to end:
// opes-milter's bridge offers ALLHEADERS and BODY, opes-callout's chain
// needs only the header, so ALLHEADERS alone is negotiated, not one body
// octet crosses the OCP connection, and the server's ALLHEADERS answer is
// applied.
func TestHeadersOnlyChainSendsNoBody(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl := &recListener{Listener: ln}
	srv := &callout.Server{Services: map[string]callout.Service{"urn:test:subject-tag": subjectTagger{}}}
	go srv.Serve(rl)
	defer srv.Close()

	set := &mapping.ServerSet{Name: "s", Addresses: []string{ln.Addr().String()}, Connections: 1,
		HandshakeTimeout: 2 * time.Second}
	chain := &mapping.Chain{Name: "c", Server: set, Group: []ocp.Service{{URI: "urn:test:subject-tag"}}}
	route := &mapping.Route{Name: "r", Chain: chain, Profile: mapping.Receiver,
		Adaptive:    []ocpsmtp.Part{ocpsmtp.PartRCPT, ocpsmtp.PartALLHEADERS, ocpsmtp.PartBODY},
		Informative: []ocpsmtp.Part{ocpsmtp.PartIP, ocpsmtp.PartHELO, ocpsmtp.PartMAIL}}
	br := bridge.New(&bridge.Policy{
		Routes: []*mapping.Route{route}, Select: func(mapping.Facts) *mapping.Route { return route },
		SystemURI: "http://opes.example.net/opes-milter", MaxHeaderBytes: 1 << 20, SpoolMemory: 1 << 20,
		SpoolDir: t.TempDir(),
		Timeouts: mapping.Timeouts{Rcpt: 3 * time.Second, EndOfMessage: 5 * time.Second, ProgressInterval: time.Second},
	}, nil)
	ctx := context.Background()
	sess, err := br.NewSession(ctx, br.Requirements().Replies&br.Replies())
	if err != nil {
		t.Fatal(err)
	}
	var mac noMacros
	m := &mods{}
	sess.Connect(ctx, mac, bridge.Client{Hostname: "client.example", Family: "tcp4", Addr: "192.0.2.1"})
	sess.Helo(ctx, mac, "client.example")
	sess.Mail(ctx, mac, "<a@example.org>", nil)
	if rep := sess.Rcpt(ctx, mac, "<b@example.com>", nil); rep.Kind != bridge.Continue {
		t.Fatalf("rcpt: %+v", rep)
	}
	sess.Data(ctx, mac)
	sess.Header(ctx, mac, "From", " a@example.org")
	sess.Header(ctx, mac, "Subject", " hello")
	sess.EndOfHeaders(ctx, mac)
	const secret = "BODY-MARKER-that-must-not-cross"
	sess.Body(ctx, mac, []byte(strings.Repeat(secret+"\r\n", 2000)))
	rep := sess.EndOfMessage(ctx, mac, m)
	sess.Close()
	br.Close()
	if rep.Kind != bridge.Accept {
		t.Fatalf("end of message: %+v (%s)", rep, m)
	}
	if got := m.String(); !strings.Contains(got, "change Subject: [tagged] hello") || strings.Contains(got, "body") {
		t.Errorf("modifications: %s", got)
	}
	sent := rl.bytes()
	for _, bad := range []string{secret, "AM-Part: BODY", "AM-Part: RAWDATA"} {
		if bytes.Contains(sent, []byte(bad)) {
			t.Errorf("the processor sent %q over the OCP connection", bad)
		}
	}
	if !bytes.Contains(sent, []byte("AM-Part: ALLHEADERS")) {
		t.Errorf("no ALLHEADERS was sent:\n%s", sent)
	}
}
