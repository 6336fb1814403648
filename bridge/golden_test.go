package bridge_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/internal/ocptest"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// step is one message of a golden transcript (testdata/profile).
type step = ocpsmtp.Step

// readTranscript parses a golden transcript.
var readTranscript = ocptest.ReadTranscript

// goldenServer plays the server's side of a transcript against the bridge:
// it negotiates what the transcript's NR selects, then walks the
// transaction's messages in order, checking each processor message against
// the transcript (name, offset, AM-Part, Allow, payload) and sending each
// server message through ServerTx.
type goldenServer struct {
	t     *testing.T
	steps []step
	done  chan error
}

func (g *goldenServer) negotiate(*ocp.Group, []ocp.Feature) (ocp.Feature, bool) {
	for _, s := range g.steps {
		if s.FromServer && s.Message.Name == ocp.MsgNR {
			f, err := ocp.ParseFeature(s.Message.Anon[0])
			if err != nil {
				g.t.Errorf("transcript NR: %v", err)
			}
			return f, err == nil
		}
	}
	return ocp.Feature{}, false
}

func (g *goldenServer) serve(ctx context.Context, tx *ocp.ServerTx) {
	g.done <- g.walk(ctx, tx)
}

func (g *goldenServer) walk(ctx context.Context, tx *ocp.ServerTx) error {
	inTx := false
	for i, s := range g.steps {
		name := s.Message.Name
		if name == ocp.MsgTS {
			inTx = true
			continue
		}
		if !inTx {
			continue
		}
		if !s.FromServer {
			got, err := tx.Recv(ctx)
			if err != nil {
				return fmt.Errorf("step %d: want %s, got %v", i, name, err)
			}
			// A splittable part may be cut into DUMs differently: gather
			// the processor's DUMs up to the transcript's payload.
			for got.Name == ocp.MsgDUM && len(got.Payload) < len(s.Message.Payload) {
				more, err := tx.Recv(ctx)
				if err != nil || more.Name != ocp.MsgDUM {
					return fmt.Errorf("step %d: short %s payload, then %v %v", i, name, more, err)
				}
				got = &ocp.Message{Name: got.Name, Anon: got.Anon, Named: got.Named,
					Payload: append(append([]byte(nil), got.Payload...), more.Payload...), HasPayload: true}
			}
			if err := sameProcessorMessage(s.Message, got); err != nil {
				return fmt.Errorf("step %d: %v\nwant %q\n got %q", i, err, ocp.AppendMessage(nil, s.Message), ocp.AppendMessage(nil, got))
			}
			continue
		}
		var err error
		switch name {
		case ocp.MsgAMS:
			err = tx.StartMessage(s.Message.Named...)
		case ocp.MsgDUY:
			off, _ := s.Message.AnonUint(1)
			size, _ := s.Message.AnonUint(2)
			err = tx.SendDUY(off, size, s.Message.Named...)
		case ocp.MsgDUM:
			var off int64
			off, err = tx.Send(ctx, s.Message.Named, s.Message.Payload)
			if want, _ := s.Message.AnonUint(1); err == nil && off != want {
				err = fmt.Errorf("adapted offset %d, transcript says %d", off, want)
			}
		case ocp.MsgAME:
			err = tx.EndMessage(ocp.Result{Code: 200})
		case ocp.MsgTE:
			err = tx.End(ctx, ocp.Result{})
		}
		if err != nil {
			return fmt.Errorf("step %d (%s): %v", i, name, err)
		}
	}
	return nil
}

// sameProcessorMessage compares what the profile fixes: the message name,
// the offset, AM-Part, AM-Index, Allow and the payload. Kept and AM-OPT may
// differ (the bridge keeps everything from offset 0; the MTA's macros are
// what the test sends).
func sameProcessorMessage(want, got *ocp.Message) error {
	if want.Name != got.Name {
		return fmt.Errorf("message %s, want %s", got.Name, want.Name)
	}
	if want.Name != ocp.MsgDUM {
		return nil
	}
	wo, _ := want.AnonUint(1)
	gotOff, _ := got.AnonUint(1)
	if wo != gotOff {
		return fmt.Errorf("offset %d, want %d", gotOff, wo)
	}
	wd, err1 := ocpsmtp.ParseData(want)
	gd, err2 := ocpsmtp.ParseData(got)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("parameters: %v / %v", err1, err2)
	}
	if wd.Part != gd.Part || wd.Index != gd.Index || strings.Join(wd.Allow, ",") != strings.Join(gd.Allow, ",") {
		return fmt.Errorf("part %s %q allow %v, want %s %q allow %v", gd.Part, gd.Index, gd.Allow, wd.Part, wd.Index, wd.Allow)
	}
	if !bytes.Equal(want.Payload, got.Payload) {
		return fmt.Errorf("payload differs")
	}
	return nil
}

// startGolden serves a transcript and a bridge whose route offers what the
// transcript's NO offers.
func startGolden(t *testing.T, name, systemURI string) (*goldenServer, *mta) {
	t.Helper()
	g := &goldenServer{t: t, steps: readTranscript(t, name), done: make(chan error, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &ocp.Server{Handler: ocp.HandlerFunc(g.serve), Negotiate: g.negotiate, Logger: testLogger(t)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	var offer ocpsmtp.Profile
	var services []ocp.Service
	for _, s := range g.steps {
		switch {
		case !s.FromServer && s.Message.Name == ocp.MsgNO:
			f, _ := ocp.ParseFeature(s.Message.Anon[0].(ocp.List)[0])
			offer, err = ocpsmtp.ParseProfile(f)
			if err != nil {
				t.Fatal(err)
			}
		case !s.FromServer && s.Message.Name == ocp.MsgSGC:
			for _, v := range s.Message.Anon[1].(ocp.List) {
				svc, err := ocp.ParseService(v)
				if err != nil {
					t.Fatal(err)
				}
				services = append(services, svc)
			}
		}
	}
	p := testPolicy(ln.Addr().String(), offer.Adaptive, offer.Informative)
	if offer.URI == ocpsmtp.SenderURI {
		p.Routes[0].Profile = mapping.Sender
	}
	p.Routes[0].Chain.Group = services
	p.SystemURI = systemURI
	return g, startMilter(t, p)
}

func (g *goldenServer) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-g.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the transcript's transaction did not finish")
	}
}

// sendFields sends header fields exactly as given (Header takes a
// textproto.Header, which canonicalises the names).
func sendFields(t *testing.T, s *ClientSession, fields [][2]string) {
	t.Helper()
	if _, err := s.DataStart(); err != nil {
		t.Fatal(err)
	}
	for _, f := range fields {
		if _, err := s.HeaderField(f[0], f[1], nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.HeaderEnd(); err != nil {
		t.Fatal(err)
	}
}

func TestGoldenReceiverTranscript(t *testing.T) {
	g, m := startGolden(t, "receiver.txt", "http://mx.example.com/opes")
	macros := NewMacroBag()
	macros.Set("{daemon_name}", "mx.example.com")
	macros.Set("v", "Postfix 3.7.11")
	cl := m
	s, err := cl.Session(macros)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Conn("mail.example.org", FamilyInet, 40000, "192.0.2.1")
	s.Helo("mail.example.org")
	if act, err := s.Mail("steve@example.org", "SIZE=232"); err != nil || act.Type != ActionContinue {
		t.Fatalf("mail: %v %v", act, err)
	}
	if act, err := s.Rcpt("paul@example.com", ""); err != nil || act.Type != ActionContinue {
		t.Fatalf("rcpt 1: %v %v", act, err)
	}
	act, err := s.Rcpt("nobody@example.com", "")
	if err != nil || act.SMTPCode != 550 || !strings.Contains(act.SMTPReply, "5.1.1 <nobody@example.com>: Recipient address rejected: User unknown") {
		t.Fatalf("rcpt 2: %+v %v", act, err)
	}
	macros.Set(MacroQueueId, "4ZxQ1k0Hz3z9v")
	sendFields(t, s, [][2]string{
		{"From", " Steve <steve@example.org>"},
		{"To", " Paul <paul@example.com>, Nobody <nobody@example.com>"},
		{"Subject", " Lunch"},
		{"Date", " Mon, 10 Oct 2005 05:35:50 +0200"},
		{"Message-ID", " <20051010033550.1@mail.example.org>"},
	})
	mods, final, err := s.BodyReadFrom(strings.NewReader("Shall we meet at noon?\r\n--\r\nSteve\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	g.wait(t)
	wantFinal(t, final, ActionAccept)
	var got []string
	for _, m := range mods {
		got = append(got, fmt.Sprintf("%v %s:%s", m.Type, m.HeaderName, m.HeaderValue))
	}
	if sys := findMods(mods, ActionInsertHeader, "OPES-System"); len(sys) != 1 || sys[0].HeaderValue != " http://mx.example.com/opes" {
		t.Fatalf("mods: %q", got)
	}
	flag := findMods(mods, ActionAddHeader, "X-Spam-Flag")
	score := findMods(mods, ActionAddHeader, "X-Spam-Score")
	if len(flag) != 1 || flag[0].HeaderValue != " NO" || len(score) != 1 || score[0].HeaderValue != " 0.1 (threshold 5.0)" {
		t.Fatalf("mods: %q", got)
	}
}

func TestGoldenSenderTranscript(t *testing.T) {
	g, m := startGolden(t, "sender.txt", "http://submit.example.org/opes")
	macros := NewMacroBag()
	macros.Set("{daemon_name}", "ORIGINATING")
	macros.Set("v", "Postfix 3.7.11")
	cl := m
	s, err := cl.Session(macros)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Conn("laptop.example.org", FamilyInet, 40000, "198.51.100.7")
	s.Helo("laptop.example.org")
	if _, err := s.Mail("alice@laptop.example.org", "SIZE=279 BODY=8BITMIME RET=HDRS ENVID=QQ314159"); err != nil {
		t.Fatal(err)
	}
	if act, err := s.Rcpt("bob@example.net", "NOTIFY=FAILURE ORCPT=rfc822;bob@example.net"); err != nil || act.Type != ActionContinue {
		t.Fatalf("rcpt: %v %v", act, err)
	}
	sendFields(t, s, [][2]string{
		{"From", " Alice <alice@laptop.example.org>"},
		{"To", " Bob <bob@example.net>"},
		{"Subject", " Quarterly report"},
		{"Date", " Tue, 11 Oct 2005 09:12:01 +0200"},
		{"Message-ID", " <4a1b@laptop.example.org>"},
		{"MIME-Version", " 1.0"},
		{"Content-Type", " text/plain; charset=utf-8"},
	})
	mods, final, err := s.BodyReadFrom(strings.NewReader("Hello Bob,\r\nthe numbers are fine.\r\n.\r\nAlice\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	g.wait(t)
	wantFinal(t, final, ActionAccept)
	ch := findMods(mods, ActionChangeFrom, "")
	if len(ch) != 1 || ch[0].From != "<alice@example.org>" || ch[0].FromArgs != "RET=HDRS ENVID=QQ314159" {
		t.Fatalf("change-from: %+v", ch)
	}
	if x := findMods(mods, ActionAddHeader, "X-Original-Sender"); len(x) != 1 || x[0].HeaderValue != " alice@laptop.example.org" {
		t.Fatalf("mods: %+v", mods)
	}
	if _, replaced := bodyOf(mods); replaced {
		t.Fatal("body replaced although the transcript leaves it unchanged")
	}
}
