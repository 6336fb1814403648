package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"
	mtextproto "github.com/emersion/go-message/textproto"

	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// hostileRSSLimit bounds opes-milter's peak RSS through every hostile test:
// the largest thing it may hold is one OCP message at the decoder's 16 MiB
// payload limit, next to a few MiB of runtime.
const hostileRSSLimit = 64 << 20

// ---------------------------------------------------------------------------
// A hand-written callout server.

// rogue is a callout server written by hand for the tests. It speaks just
// enough OCP to negotiate the OCP/SMTP profile (it takes whatever the
// processor offers) and to answer transactions correctly, and a script per
// connection can break any step: close early, stay silent, or write any
// bytes at all.
type rogue struct {
	Addr string
	ln   net.Listener

	mu     sync.Mutex
	script func(c *rogueConn)
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup

	accepted atomic.Int64 // connections accepted so far
}

// startRogue listens on a free loopback port; every connection is served
// correctly until setScript says otherwise. It stops at cleanup.
func startRogue(t testing.TB) *rogue {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &rogue{Addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]struct{}{}, script: serveCorrectly}
	r.wg.Add(1)
	go r.acceptLoop()
	t.Cleanup(r.close)
	return r
}

func (r *rogue) acceptLoop() {
	defer r.wg.Done()
	for {
		nc, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.accepted.Add(1)
		r.mu.Lock()
		r.conns[nc] = struct{}{}
		script := r.script
		r.mu.Unlock()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer func() {
				nc.Close()
				r.mu.Lock()
				delete(r.conns, nc)
				r.mu.Unlock()
			}()
			script(newRogueConn(nc))
		}()
	}
}

// setScript serves every new connection with script and closes the open
// ones, so that the processor's next transaction dials anew.
func (r *rogue) setScript(script func(c *rogueConn)) {
	r.mu.Lock()
	r.script = script
	r.mu.Unlock()
	r.dropAll()
}

// dropAll closes every open connection.
func (r *rogue) dropAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for nc := range r.conns {
		nc.Close()
	}
}

func (r *rogue) close() {
	r.ln.Close()
	r.dropAll()
	r.wg.Wait()
}

// rogueConn is one OCP connection of a rogue server.
type rogueConn struct {
	nc  net.Conn
	dec *ocp.Decoder
	txs map[int64]*rogueTx
}

// rogueTx is what a rogue server remembers of one transaction: where the
// processor's data parts start and how long they are, to answer with a DUY,
// and the offset of its own next adapted octet.
type rogueTx struct {
	dataStart, dataSize int64
	dataAdaptive        bool
	out                 int64
}

func newRogueConn(nc net.Conn) *rogueConn {
	return &rogueConn{nc: nc, dec: ocp.NewDecoder(nc, ocp.Limits{MaxPayload: 64 << 20}), txs: map[int64]*rogueTx{}}
}

// raw writes s as it is.
func (c *rogueConn) raw(s string) error {
	_, err := io.WriteString(c.nc, s)
	return err
}

// send writes one well-formed message.
func (c *rogueConn) send(m *ocp.Message) error {
	_, err := c.nc.Write(ocp.AppendMessage(nil, m))
	return err
}

// handshake reads the processor's CS and connection-scope NO and answers
// with CS and an NR selecting nothing (RFC 4037 §6).
func (c *rogueConn) handshake() error {
	for range 2 {
		if _, err := c.dec.Decode(); err != nil {
			return err
		}
	}
	return c.raw("CS;\r\nNR;\r\n")
}

// rogueHook sees each processor message before the default answer; done
// skips the default answer, an error ends the connection.
type rogueHook func(c *rogueConn, m *ocp.Message) (done bool, err error)

// serve answers the processor until the connection ends, asking hook
// first.
func (c *rogueConn) serve(hook rogueHook) error {
	for {
		m, err := c.dec.Decode()
		if err != nil {
			return err
		}
		if hook != nil {
			done, err := hook(c, m)
			if err != nil {
				return err
			}
			if done {
				continue
			}
		}
		if err := c.answer(m); err != nil {
			return err
		}
	}
}

// answer is the correct answer of a callout server that changes nothing:
// it selects the offered profile, echoes AMS, answers every adaptive part
// with a DUY of it and ends its adapted message after the processor's.
func (c *rogueConn) answer(m *ocp.Message) error {
	switch m.Name {
	case ocp.MsgNO:
		nr := &ocp.Message{Name: ocp.MsgNR}
		if len(m.Anon) > 0 {
			if fs, err := ocp.ParseFeatures(m.Anon[0]); err == nil && len(fs) > 0 {
				nr.Anon = []ocp.Value{fs[0].Value()}
			}
		}
		if p, ok := m.Param(ocp.ParamSG); ok {
			nr.Named = []ocp.Param{p}
		}
		return c.send(nr)
	case ocp.MsgTS:
		xid, _ := m.AnonUint(0)
		c.txs[xid] = &rogueTx{dataStart: -1}
	case ocp.MsgAMS:
		return c.send(&ocp.Message{Name: ocp.MsgAMS, Anon: m.Anon[:1]})
	case ocp.MsgDUM:
		xid, _ := m.AnonUint(0)
		off, _ := m.AnonUint(1)
		tx := c.txs[xid]
		d, err := ocpsmtp.ParseData(m)
		if tx == nil || err != nil {
			return fmt.Errorf("rogue: bad DUM: %v", err)
		}
		if d.Part.Data() {
			if tx.dataStart < 0 {
				tx.dataStart, tx.dataAdaptive = off, d.Allows(ocpsmtp.AllowSMTPError)
			}
			tx.dataSize += int64(len(m.Payload))
			return nil
		}
		if d.Allows(ocpsmtp.AllowSMTPError) {
			return c.duy(xid, off, int64(len(m.Payload)))
		}
	case ocp.MsgAME:
		xid, _ := m.AnonUint(0)
		if tx := c.txs[xid]; tx != nil && tx.dataStart >= 0 && tx.dataAdaptive {
			if err := c.duy(xid, tx.dataStart, tx.dataSize); err != nil {
				return err
			}
		}
		return c.raw(c.ame(xid))
	case ocp.MsgTE:
		xid, _ := m.AnonUint(0)
		delete(c.txs, xid)
	case ocp.MsgCE:
		return io.EOF
	}
	return nil
}

func (c *rogueConn) duy(xid, off, size int64) error {
	return c.raw(c.duyWire(xid, off, size))
}

// tx returns the state of transaction xid (a fresh one for an xid never
// started, so that hooks may lie about xids).
func (c *rogueConn) tx(xid int64) *rogueTx {
	if tx := c.txs[xid]; tx != nil {
		return tx
	}
	return &rogueTx{dataStart: -1}
}

// duyWire encodes a DUY and advances the adapted offset by size.
func (c *rogueConn) duyWire(xid, off, size int64) string {
	c.tx(xid).out += size
	return wire(ocp.MsgDUY, []ocp.Value{ocp.Num(xid), ocp.Num(off), ocp.Num(size)}, nil, nil)
}

// dum encodes a DUM at the transaction's next adapted offset, with the
// profile parameters d, and advances the offset by the payload.
func (c *rogueConn) dum(xid int64, d ocpsmtp.Data, payload string) string {
	tx := c.tx(xid)
	off := tx.out
	tx.out += int64(len(payload))
	return wire(ocp.MsgDUM, []ocp.Value{ocp.Num(xid), ocp.Num(off)}, d.Params(), []byte(payload))
}

// ame encodes the server's AME.
func (c *rogueConn) ame(xid int64) string {
	return wire(ocp.MsgAME, []ocp.Value{ocp.Num(xid)}, nil, nil)
}

// serveCorrectly is the default script: a callout server that changes
// nothing.
func serveCorrectly(c *rogueConn) {
	if c.handshake() == nil {
		_ = c.serve(nil)
	}
}

// serveWith returns a script that handshakes and serves with hook.
func serveWith(hook rogueHook) func(c *rogueConn) {
	return func(c *rogueConn) {
		if c.handshake() == nil {
			_ = c.serve(hook)
		}
	}
}

// dumPart returns the AM-Part of a processor DUM, "" for anything else.
func dumPart(m *ocp.Message) ocpsmtp.Part {
	if m.Name != ocp.MsgDUM {
		return ""
	}
	d, err := ocpsmtp.ParseData(m)
	if err != nil {
		return ""
	}
	return d.Part
}

// onRcpt returns a hook that answers the adaptive RCPT with what reply
// writes (given the connection, the xid and the RCPT's offset and payload)
// instead of a DUY.
func onRcpt(reply func(c *rogueConn, xid, off int64, payload []byte) string) rogueHook {
	return func(c *rogueConn, m *ocp.Message) (bool, error) {
		if dumPart(m) != ocpsmtp.PartRCPT {
			return false, nil
		}
		xid, _ := m.AnonUint(0)
		off, _ := m.AnonUint(1)
		return true, c.raw(reply(c, xid, off, m.Payload))
	}
}

// onAME returns a hook that answers the processor's AME with what reply
// writes (given the connection, the xid, and the data part's offset and
// size) instead of the DUY of the data and the AME.
func onAME(reply func(c *rogueConn, xid, dataOff, dataSize int64) string) rogueHook {
	return func(c *rogueConn, m *ocp.Message) (bool, error) {
		if m.Name != ocp.MsgAME {
			return false, nil
		}
		xid, _ := m.AnonUint(0)
		tx := c.txs[xid]
		if tx == nil {
			return false, nil
		}
		return true, c.raw(reply(c, xid, tx.dataStart, tx.dataSize))
	}
}

// wire encodes one message.
func wire(name string, anon []ocp.Value, named []ocp.Param, payload []byte) string {
	return string(ocp.AppendMessage(nil, &ocp.Message{Name: name, Anon: anon, Named: named, Payload: payload, HasPayload: payload != nil}))
}

// ---------------------------------------------------------------------------
// Configurations and milter sessions.

// configEdit replaces the first occurrence of Old in a configuration by
// New, or appends New when Old is empty; applyEdits fails the test when
// Old is not there, so an edit cannot silently miss after
// contrib/opes-milter.toml changes. Old = addressesLine replaces the
// server set's address list, whatever its port.
type configEdit struct{ Old, New string }

// addressesLine stands for the line `addresses = ["127.0.0.1:PORT"]` of
// the server set in a configEdit (its port differs per test).
const addressesLine = "\x00addresses line"

// serverAddresses matches the address list of the server set local.
var serverAddresses = regexp.MustCompile(`(?m)^addresses = \["127\.0\.0\.1:\d+"\]$`)

// calloutAt points the server set at addrs.
func calloutAt(addrs ...string) configEdit {
	return configEdit{Old: addressesLine, New: `addresses = ["` + strings.Join(addrs, `", "`) + `"]`}
}

// metricsAt serves opes-milter's metrics on addr.
func metricsAt(addr string) configEdit {
	return configEdit{Old: `metrics_listen = ""`, New: fmt.Sprintf("metrics_listen = %q", addr)}
}

// startOpesEdited starts opes-milter (and opes-callout unless noCallout)
// with the edits applied to the generated configuration.
func startOpesEdited(t *testing.T, noCallout bool, edits ...configEdit) *Opes {
	t.Helper()
	return StartOpes(t, OpesOptions{NoCallout: noCallout, Edit: func(cfg string) string {
		return applyEdits(t, cfg, edits)
	}})
}

// applyEdits applies the edits to cfg in order.
func applyEdits(t testing.TB, cfg string, edits []configEdit) string {
	t.Helper()
	for _, e := range edits {
		switch e.Old {
		case addressesLine:
			if !serverAddresses.MatchString(cfg) {
				t.Fatalf("e2e: configuration has no line matching %s", serverAddresses)
			}
			cfg = serverAddresses.ReplaceAllLiteralString(cfg, e.New)
			continue
		case "":
			cfg += "\n" + e.New
			continue
		}
		if !strings.Contains(cfg, e.Old) {
			t.Fatalf("e2e: configuration lacks %q to replace", e.Old)
		}
		cfg = strings.Replace(cfg, e.Old, e.New, 1)
	}
	return cfg
}

// milterClient opens a go-milter client session to opes-milter, as an MTA
// would, through connect and HELO.
func milterClient(t *testing.T, addr string) *gomilter.ClientSession {
	t.Helper()
	cl := gomilter.NewClient("tcp", addr, gomilter.WithReadTimeout(30*time.Second), gomilter.WithWriteTimeout(30*time.Second))
	s, err := cl.Session(gomilter.NewMacroBag())
	if err != nil {
		t.Fatalf("milter session: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	for _, step := range []func() (*gomilter.Action, error){
		func() (*gomilter.Action, error) {
			return s.Conn("client.example", gomilter.FamilyInet, 40000, "192.0.2.1")
		},
		func() (*gomilter.Action, error) { return s.Helo("client.example") },
	} {
		if act, err := step(); err != nil || act.Type != gomilter.ActionContinue {
			t.Fatalf("milter session start: %+v %v", act, err)
		}
	}
	return s
}

// milterOutcome is how opes-milter answered one message.
type milterOutcome struct {
	rcpt  *gomilter.Action // the answer to RCPT
	final *gomilter.Action // the answer at end of message, nil when refused at RCPT
	mods  []gomilter.ModifyAction
	took  time.Duration
}

// tempfailed reports whether the message was answered 4xx, at RCPT or at
// end of message.
func (o milterOutcome) tempfailed() bool {
	is4xx := func(a *gomilter.Action) bool {
		return a != nil && (a.Type == gomilter.ActionTempFail || a.Type == gomilter.ActionRejectWithCode && a.SMTPCode/100 == 4)
	}
	return is4xx(o.rcpt) || is4xx(o.final)
}

func (o milterOutcome) String() string {
	return fmt.Sprintf("rcpt %+v, final %+v, %d modifications, in %v", o.rcpt, o.final, len(o.mods), o.took.Round(time.Millisecond))
}

// hostileSubject and hostileBody are the content of the messages the
// hostile tests send; no log may repeat them.
const (
	hostileSubject = "Subject-3b7d15a0"
	hostileBody    = "Body-8c2e4f91"
)

// sendViaMilter runs one message (MAIL, one RCPT, a header, body, end of
// message) through a milter session.
func sendViaMilter(t *testing.T, s *gomilter.ClientSession, body string) milterOutcome {
	t.Helper()
	start := time.Now()
	var o milterOutcome
	if act, err := s.Mail("<sender@example.org>", ""); err != nil || act.Type != gomilter.ActionContinue {
		t.Fatalf("MAIL: %+v %v", act, err)
	}
	act, err := s.Rcpt("<rcpt@example.com>", "")
	if err != nil {
		t.Fatalf("RCPT: %v", err)
	}
	o.rcpt = act
	if act.Type != gomilter.ActionContinue {
		o.took = time.Since(start)
		if err := s.Abort(nil); err != nil {
			t.Fatalf("abort: %v", err)
		}
		return o
	}
	var h mtextproto.Header
	h.Add("Subject", hostileSubject)
	h.Add("From", "<sender@example.org>")
	if act, err := s.Header(h); err != nil || act.Type != gomilter.ActionContinue {
		t.Fatalf("header: %+v %v", act, err)
	}
	o.mods, o.final, err = s.BodyReadFrom(strings.NewReader(body))
	if err != nil {
		t.Fatalf("body/end of message: %v", err)
	}
	o.took = time.Since(start)
	return o
}

// ---------------------------------------------------------------------------
// Hostile callout servers.

// TestHostileCalloutServer lets a hand-written callout server answer with
// malformed or malicious OCP: bad sizes, 2 GB payload claims, nesting bombs,
// unknown xids, SMTP-Error replies with a 2xx code or CR/LF inside,
// Add-Header fields with CR/LF or without a colon, recipients with CR/LF or
// NUL, 100,000 header fields. Each ends at most its transaction with the
// failure policy's outcome (tempfail), found as a protocol failure at once
// rather than by a deadline; opes-milter keeps serving, and its peak RSS
// stays under hostileRSSLimit.
func TestHostileCalloutServer(t *testing.T) {
	r := startRogue(t)
	metrics := FreeAddr(t)
	op := startOpesEdited(t, true, calloutAt(r.Addr), metricsAt(metrics),
		configEdit{`rcpt = "8s"`, `rcpt = "6s"`},
		configEdit{`end_of_message = "240s"`, `end_of_message = "10s"`},
		configEdit{`failure_limit = 5`, `failure_limit = 1000`})
	// quickly is well under the deadlines: a hostile answer must be
	// recognised as such, not waited out.
	const quickly = 4 * time.Second
	rcptHook := func(f func(c *rogueConn, xid, off int64, payload []byte) string) func(*rogueConn) {
		return serveWith(onRcpt(f))
	}
	ameHook := func(f func(c *rogueConn, xid, off, size int64) string) func(*rogueConn) {
		return serveWith(onAME(f))
	}
	raw := ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA}
	rcpt := ocpsmtp.Data{Part: ocpsmtp.PartRCPT}
	flood := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "X-Flood-%d: %d\r\n", i, i)
		}
		return b.String()
	}
	const protocol = "protocol"
	tests := []struct {
		name   string
		script func(*rogueConn)
		stage  string // where the failure shows: "RCPT", "end of message" or "" (either)
		class  string // the failure class counted; "" = any
	}{
		{"payload shorter than its size", rcptHook(func(c *rogueConn, xid, off int64, p []byte) string {
			return fmt.Sprintf("DUM %d 0\r\nAM-Part: RCPT\r\n\r\n3:<a@example.com>\r\n;\r\n", xid)
		}), "RCPT", protocol},
		{"size with a leading zero", rcptHook(func(c *rogueConn, xid, off int64, p []byte) string {
			return fmt.Sprintf("DUY %d 0%d %d;\r\n", xid, off, len(p))
		}), "RCPT", protocol},
		{"size beyond 2147483647", rcptHook(func(c *rogueConn, xid, off int64, p []byte) string {
			return fmt.Sprintf("DUY %d %d 99999999999;\r\n", xid, off)
		}), "RCPT", protocol},
		{"2 GB payload claim", rcptHook(func(c *rogueConn, xid, off int64, p []byte) string {
			return fmt.Sprintf("DUM %d 0\r\nAM-Part: RCPT\r\n\r\n2147483647:", xid) + strings.Repeat("A", 64<<10)
		}), "RCPT", protocol},
		{"2 GB quoted atom claim", rcptHook(func(c *rogueConn, xid, off int64, p []byte) string {
			return fmt.Sprintf("DUM %d 0\r\nAM-Part: \"2147483647:RCPT", xid) + strings.Repeat("A", 64<<10)
		}), "RCPT", protocol},
		{"nesting bomb", rcptHook(func(c *rogueConn, xid, off int64, p []byte) string {
			return fmt.Sprintf("DUM %d 0\r\nX-Bomb: ", xid) + strings.Repeat("({", 100000)
		}), "RCPT", protocol},
		{"unknown xid", rcptHook(func(c *rogueConn, xid, off int64, p []byte) string {
			return c.duyWire(xid+1000, off, int64(len(p)))
		}), "RCPT", protocol},
		{"DUY of octets never sent", rcptHook(func(c *rogueConn, xid, off int64, p []byte) string {
			return c.duyWire(xid, off+1000, int64(len(p)))
		}), "RCPT", protocol},
		{"SMTP-Error with a 2xx code", rcptHook(func(c *rogueConn, xid, off int64, p []byte) string {
			return c.dum(xid, ocpsmtp.Data{Part: ocpsmtp.PartRCPT, SMTPError: "250 2.0.0 fine"}, "")
		}), "RCPT", protocol},
		{"SMTP-Error with CR/LF inside", rcptHook(func(c *rogueConn, xid, off int64, p []byte) string {
			return c.dum(xid, ocpsmtp.Data{Part: ocpsmtp.PartRCPT, SMTPError: "550 5.7.1 no\r\nX-Injected: yes"}, "")
		}), "RCPT", protocol},
		{"SMTP-Error 421 (would end the session)", rcptHook(func(c *rogueConn, xid, off int64, p []byte) string {
			return c.dum(xid, ocpsmtp.Data{Part: ocpsmtp.PartRCPT, SMTPError: "421 4.3.0 closing"}, "")
		}), "RCPT", protocol},
		{"recipient replaced with CR/LF inside", rcptHook(func(c *rogueConn, xid, off int64, p []byte) string {
			return c.dum(xid, rcpt, "<a@example.com>\r\nRCPT TO:<b@example.com>")
		}), "", protocol},
		{"recipient replaced with a NUL inside", rcptHook(func(c *rogueConn, xid, off int64, p []byte) string {
			return c.dum(xid, rcpt, "<a@example.com>\x00NOTIFY=NEVER")
		}), "", protocol},
		{"recipient replaced with 1 MiB", rcptHook(func(c *rogueConn, xid, off int64, p []byte) string {
			return c.dum(xid, rcpt, "<"+strings.Repeat("a", 1<<20)+"@example.com>")
		}), "", protocol},
		{"Add-Header with CR/LF inside", ameHook(func(c *rogueConn, xid, off, size int64) string {
			return c.dum(xid, ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA, AddHeader: "X-A: 1\r\nX-B: 2"}, "") + c.duyWire(xid, off, size) + c.ame(xid)
		}), "end of message", protocol},
		{"Add-Header without a colon", ameHook(func(c *rogueConn, xid, off, size int64) string {
			return c.dum(xid, ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA, AddHeader: "X-No-Colon"}, "") + c.duyWire(xid, off, size) + c.ame(xid)
		}), "end of message", protocol},
		{"adapted RAWDATA with 100,000 header fields", ameHook(func(c *rogueConn, xid, off, size int64) string {
			return c.dum(xid, raw, flood(100000)+"Subject: flooded\r\n\r\nbody\r\n") + c.ame(xid)
		}), "end of message", protocol},
		{"adapted RAWDATA without a header/body separator", ameHook(func(c *rogueConn, xid, off, size int64) string {
			return c.dum(xid, raw, strings.Repeat("no colon and no empty line ", 1000)) + c.ame(xid)
		}), "end of message", protocol},
		{"empty RAWDATA answer", ameHook(func(c *rogueConn, xid, off, size int64) string {
			return c.dum(xid, raw, "") + c.ame(xid)
		}), "end of message", protocol},
		{"AME with an unknown result", ameHook(func(c *rogueConn, xid, off, size int64) string {
			return c.duyWire(xid, off, size) + fmt.Sprintf("AME %d {299 odd};\r\n", xid)
		}), "end of message", ""},
		{"garbage after the handshake", func(c *rogueConn) {
			if c.handshake() == nil {
				_ = c.raw("\x00\xff\r\n;;;garbage\r\n")
				_ = c.serve(nil)
			}
		}, "RCPT", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := scrape(t, metrics)
			r.setScript(tt.script)
			s := milterClient(t, op.MilterAddr)
			o := sendViaMilter(t, s, hostileBody+"\r\n")
			if !o.tempfailed() {
				t.Fatalf("want the tempfail policy outcome, got %v: %+v", o, o.mods)
			}
			if stage := map[bool]string{true: "RCPT", false: "end of message"}[o.final == nil]; tt.stage != "" && stage != tt.stage {
				t.Errorf("failure seen at %s, want %s: %v", stage, tt.stage, o)
			}
			if len(o.mods) != 0 {
				t.Errorf("modifications applied with a tempfail: %+v", o.mods)
			}
			if o.took > quickly {
				t.Errorf("the failure took %v: it was waited out, not recognised", o.took)
			}
			after := scrape(t, metrics)
			counted := func(labels ...string) float64 {
				return after.Sum("opes_milter_adaptation_failures_total", labels...) - before.Sum("opes_milter_adaptation_failures_total", labels...)
			}
			if all := counted(); all != 1 {
				t.Errorf("%v failures counted, want 1", all)
			}
			if tt.class != "" && counted(`class="`+tt.class+`"`) != 1 {
				t.Errorf("the failure was not counted as %s", tt.class)
			}
			// The daemon keeps serving: the same session, a correct server.
			// A transaction started on a connection the server has just
			// closed fails (the pool does not retry it), so wait until
			// opes-milter has seen the old connections go.
			r.setScript(serveCorrectly)
			if !Eventually(5*time.Second, func() bool { return scrape(t, metrics).Sum("opes_milter_ocp_connections") == 0 }) {
				t.Fatal("opes-milter still counts OCP connections the server closed")
			}
			if o := sendViaMilter(t, s, "after the storm\r\n"); o.final == nil || o.final.Type != gomilter.ActionAccept {
				t.Fatalf("next message on the same MTA session: %v\nopes-milter log:\n%s", o, op.Milter.Output())
			}
		})
	}
	st, err := ReadProcStatus(op.Milter.Pid())
	if err != nil {
		t.Fatal(err)
	}
	checkLogsClean(t, map[string]string{"opes-milter": op.Milter.Output()}, []string{hostileSubject, hostileBody}, nil)
	t.Logf("opes-milter peak RSS through %d hostile callout servers: %s", len(tests), MiB(st.HWM))
	if st.HWM > hostileRSSLimit {
		t.Errorf("opes-milter peak RSS %s, want at most %s", MiB(st.HWM), MiB(hostileRSSLimit))
	}
}

// scrape fetches opes-milter's metrics or fails the test.
func scrape(t testing.TB, addr string) Metrics {
	t.Helper()
	m, err := ScrapeMetrics(context.Background(), addr)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	return m
}

// ---------------------------------------------------------------------------
// Hostile MTAs.

// rawMilter is an MTA side that writes milter packets by hand.
type rawMilter struct {
	t  *testing.T
	nc net.Conn
}

func dialMilter(t *testing.T, addr string) *rawMilter {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawMilter{t: t, nc: nc}
}

// packet writes one packet announcing length n (the command byte plus
// data, as libmilter counts) and then data as given.
func (r *rawMilter) packet(n uint32, data []byte) {
	r.t.Helper()
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], n)
	if _, err := r.nc.Write(append(hdr[:], data...)); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// cmd writes a well-framed command.
func (r *rawMilter) cmd(c byte, data string) {
	r.t.Helper()
	r.packet(uint32(1+len(data)), append([]byte{c}, data...))
}

// reply reads one packet and returns its command byte.
func (r *rawMilter) reply() (byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r.nc, hdr[:]); err != nil {
		return 0, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > 1<<20 {
		return 0, fmt.Errorf("reply length %d", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.nc, b); err != nil {
		return 0, err
	}
	return b[0], nil
}

// negotiate sends OPTNEG for milter protocol 6 with every action and
// every event, as Postfix does, and reads the answer.
func (r *rawMilter) negotiate() {
	r.t.Helper()
	var b [12]byte
	binary.BigEndian.PutUint32(b[0:], 6)
	binary.BigEndian.PutUint32(b[4:], 0x1ff)
	binary.BigEndian.PutUint32(b[8:], 0x1fffff) // every protocol step Postfix offers
	r.cmd('O', string(b[:]))
	if c, err := r.reply(); err != nil || c != 'O' {
		r.t.Fatalf("OPTNEG answered %q, %v", c, err)
	}
}

// closed waits until opes-milter ends the connection, skipping replies.
func (r *rawMilter) closed() error {
	_ = r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, err := r.reply(); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") {
				return nil
			}
			return err
		}
	}
}

// TestHostileMilterPackets sends malformed milter packets to opes-milter:
// zero length, strings without their NUL, lengths up to 2 GB, commands out
// of order. Each ends at most its own MTA connection; opes-milter keeps
// serving real messages, and its peak RSS stays under hostileRSSLimit.
func TestHostileMilterPackets(t *testing.T) {
	op := StartOpes(t, OpesOptions{})
	connect := "client\x004\x9c\x40192.0.2.1\x00"
	tests := []struct {
		name  string
		send  func(r *rawMilter)
		kills bool // the connection must end
	}{
		{"zero length before negotiation", func(r *rawMilter) { r.packet(0, nil) }, true},
		{"zero length", func(r *rawMilter) { r.negotiate(); r.packet(0, nil) }, true},
		{"2 GB length", func(r *rawMilter) { r.negotiate(); r.packet(2<<30, []byte("B")) }, true},
		{"4 GB - 1 length", func(r *rawMilter) { r.negotiate(); r.packet(1<<32-1, []byte("B")) }, true},
		{"2 GB length before negotiation", func(r *rawMilter) { r.packet(2<<30, []byte("O")) }, true},
		{"connect without NUL", func(r *rawMilter) { r.negotiate(); r.cmd('C', "hostname") }, true},
		{"helo without NUL", func(r *rawMilter) { r.negotiate(); r.cmd('C', connect); r.cmd('H', "client") }, true},
		{"mail without NUL", func(r *rawMilter) { r.negotiate(); r.cmd('C', connect); r.cmd('M', "<a@example.org>") }, true},
		{"header without its value", func(r *rawMilter) { r.negotiate(); r.cmd('C', connect); r.cmd('L', "Subject\x00") }, true},
		{"macro without NUL", func(r *rawMilter) { r.negotiate(); r.cmd('D', "Cv\x00Postfix") }, true},
		{"unknown command", func(r *rawMilter) { r.negotiate(); r.cmd('Z', "") }, true},
		{"second negotiation", func(r *rawMilter) { r.negotiate(); r.cmd('O', strings.Repeat("\x00", 12)) }, true},
		{"end of message first", func(r *rawMilter) { r.negotiate(); r.cmd('E', "") }, false},
		{"body before connect", func(r *rawMilter) { r.negotiate(); r.cmd('B', "body\r\n") }, false},
		{"recipient before sender", func(r *rawMilter) {
			r.negotiate()
			r.cmd('C', connect)
			r.cmd('R', "<b@example.com>\x00")
		}, false},
		{"header and body without a transaction", func(r *rawMilter) {
			r.negotiate()
			r.cmd('C', connect)
			r.cmd('L', "Subject\x00 x\x00")
			r.cmd('N', "")
			r.cmd('B', strings.Repeat("x", 60000))
			r.cmd('E', "")
		}, false},
		{"abort and quit in the middle", func(r *rawMilter) {
			r.negotiate()
			r.cmd('C', connect)
			r.cmd('M', "<a@example.org>\x00")
			r.cmd('R', "<b@example.com>\x00")
			r.cmd('A', "")
			r.cmd('A', "")
			r.cmd('Q', "")
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := dialMilter(t, op.MilterAddr)
			tt.send(r)
			if tt.kills {
				if err := r.closed(); err != nil {
					t.Fatalf("the connection did not end: %v", err)
				}
			} else {
				r.cmd('Q', "")
				if err := r.closed(); err != nil {
					t.Fatalf("the connection did not end after QUIT: %v", err)
				}
			}
			s := milterClient(t, op.MilterAddr)
			if o := sendViaMilter(t, s, "after a hostile MTA\r\n"); o.final == nil || o.final.Type != gomilter.ActionAccept {
				t.Fatalf("a proper message after the hostile packet: %v\nopes-milter log:\n%s", o, op.Milter.Output())
			}
		})
	}
	select {
	case <-op.Milter.Done():
		t.Fatalf("opes-milter exited:\n%s", op.Milter.Output())
	default:
	}
	st, err := ReadProcStatus(op.Milter.Pid())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("opes-milter peak RSS through %d hostile MTA connections: %s", len(tests), MiB(st.HWM))
	if st.HWM > hostileRSSLimit {
		t.Errorf("opes-milter peak RSS %s, want at most %s", MiB(st.HWM), MiB(hostileRSSLimit))
	}
}

// ---------------------------------------------------------------------------
// Overload.

// holdSMTP opens an SMTP session to addr and takes it through EHLO, MAIL
// and (when rcpt is set) RCPT, then leaves it open until the test closes
// it; Postfix holds one milter session per SMTP session. It returns the
// session and the reply to the last command.
func holdSMTP(t *testing.T, addr string, rcpt bool) (*smtp.Client, error) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(time.Minute))
	c, err := smtp.NewClient(nc, hostOf(addr))
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("held.client.test"); err != nil {
		return c, err
	}
	if err := c.Mail("held@example.org"); err != nil {
		return c, err
	}
	if rcpt {
		return c, c.Rcpt("held@example.com")
	}
	return c, nil
}

// TestOverload fills opes-milter's session and transaction limits through
// Postfix: the session beyond max_sessions and the transaction beyond
// max_transactions get 451 4.3.2, and service recovers as soon as the load
// drops. Each limit gets its own daemons: a held session counts once it
// reached RCPT (Postfix sends CONNECT, HELO and MAIL, which need no reply,
// together with the first RCPT), and then it holds a transaction too.
func TestOverload(t *testing.T) {
	is432 := func(err error) bool {
		var te *textproto.Error
		return errors.As(err, &te) && te.Code == 451 && strings.Contains(te.Msg, "4.3.2")
	}
	rig := func(t *testing.T, sessions, transactions int) (*Postfix, string, *Opes) {
		metrics := FreeAddr(t)
		op := startOpesEdited(t, false, metricsAt(metrics),
			configEdit{`max_sessions = 500`, fmt.Sprintf("max_sessions = %d", sessions)},
			configEdit{`max_transactions = 1000`, fmt.Sprintf("max_transactions = %d", transactions)})
		return StartPostfix(t, PostfixOptions{Milter: op.PostfixSocket()}), metrics, op
	}
	// afterwards every message goes through, adapted.
	recovers := func(t *testing.T, pf *Postfix, prefix string) {
		rep := RunLoad(context.Background(), LoadOptions{Addr: pf.SMTPAddr, Prefix: prefix, Sessions: 2, Messages: 6})
		got := rep.Delivered(t, pf.Sink, prefix, 30*time.Second)
		if len(got) != 6 {
			t.Errorf("after the overload: %v", rep)
		}
		for id, m := range got {
			if a := adaptation(m); a != "adapted" {
				t.Errorf("%s: %s", id, a)
			}
		}
	}

	t.Run("sessions", func(t *testing.T) {
		const sessions = 3
		pf, metrics, op := rig(t, sessions, 1000)
		var held []*smtp.Client
		for i := range sessions {
			c, err := holdSMTP(t, pf.SMTPAddr, true)
			if err != nil {
				t.Fatalf("session %d within the limit: %v", i+1, err)
			}
			held = append(held, c)
		}
		if !Eventually(10*time.Second, func() bool { return scrape(t, metrics).Sum("opes_milter_sessions") == sessions }) {
			t.Fatalf("opes-milter counts %v sessions, want %d", scrape(t, metrics).Sum("opes_milter_sessions"), sessions)
		}
		rep := RunLoad(context.Background(), LoadOptions{Addr: pf.SMTPAddr, Prefix: "ovs", Sessions: 2, Messages: 2})
		t.Logf("beyond the session limit: %v: %v", rep, rep.Results)
		for _, r := range rep.Results {
			if !r.Refused() || r.Code != 451 || !strings.Contains(r.Reply, "4.3.2") {
				t.Errorf("beyond the session limit: %v", r)
			}
		}
		if n := scrape(t, metrics).Sum("opes_milter_overload_refusals_total", `limit="sessions"`); n < 1 {
			t.Errorf("session refusals not counted: %v", n)
		}
		for _, c := range held {
			c.Quit()
			c.Close()
		}
		recovered := Eventually(10*time.Second, func() bool {
			r := SendSMTP(context.Background(), pf.SMTPAddr, DefaultMail("ovs-recovered", 1))
			return r.Accepted
		})
		if !recovered {
			t.Fatalf("no recovery after the load dropped:\n%s", op.Milter.Output())
		}
		recovers(t, pf, "ovsr")
	})

	t.Run("transactions", func(t *testing.T) {
		const transactions = 2
		pf, metrics, _ := rig(t, 500, transactions)
		var held []*smtp.Client
		for i := range transactions {
			c, err := holdSMTP(t, pf.SMTPAddr, true)
			if err != nil {
				t.Fatalf("transaction %d within the limit: %v", i+1, err)
			}
			held = append(held, c)
		}
		c, err := holdSMTP(t, pf.SMTPAddr, true)
		if !is432(err) {
			t.Fatalf("the transaction beyond the limit: %v, want 451 4.3.2", err)
		}
		c.Close()
		if n := scrape(t, metrics).Sum("opes_milter_overload_refusals_total", `limit="transactions"`); n < 1 {
			t.Errorf("transaction refusals not counted: %v", n)
		}
		for _, c := range held {
			c.Quit()
			c.Close()
		}
		recovers(t, pf, "ovr")
	})
}
