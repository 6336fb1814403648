package callout_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// part is one original part a test processor sends.
type part struct {
	p       ocpsmtp.Part
	payload string
}

// exchange is what a test processor saw of one transaction.
type exchange struct {
	nr       ocp.Feature    // the negotiated profile
	answers  []*ocp.Message // the server's DUM and DUY messages, in order
	adapted  []byte         // the adapted RAWDATA, reassembled
	original []byte         // everything the processor sent
	end      *ocp.TxError   // how the server ended the transaction, if it did
	ame      bool           // the server's AME arrived
}

// serve starts srv on a loopback listener and returns its address.
func serve(t *testing.T, srv *callout.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, ocp.ErrClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// process plays a processor: it negotiates prof for a group of uris and
// sends parts, waiting for the answer to every adaptive MAIL and RCPT as
// opes-milter does, then AME, and collects the server's answers.
func process(t *testing.T, addr string, cfg ocp.ClientConfig, uris []string, prof ocpsmtp.Profile, parts []part) *exchange {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := ocp.Dial(ctx, addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close(context.Background(), ocp.Result{})
	var services []ocp.Service
	for _, u := range uris {
		services = append(services, ocp.Service{URI: u})
	}
	sg, nr, err := cl.NewServiceGroup(ctx, services, []ocp.Feature{prof.Feature()})
	if err != nil {
		t.Fatalf("negotiation: %v", err)
	}
	ans, err := ocpsmtp.ParseProfile(nr)
	if err != nil {
		t.Fatal(err)
	}
	if err := ocpsmtp.CheckAnswer(prof, ans); err != nil {
		t.Fatal(err)
	}
	tx, err := cl.Start(ctx, sg)
	if err != nil {
		t.Fatal(err)
	}
	x := &exchange{nr: nr}
	if err := tx.StartMessage(); err != nil {
		t.Fatal(err)
	}
	// recv reads server messages until one answers a part (or the end).
	recv := func() (*ocp.Message, bool) {
		for {
			m, err := tx.Recv(ctx)
			if err != nil {
				var te *ocp.TxError
				if errors.As(err, &te) {
					x.end = te
				} else if err.Error() != "EOF" {
					t.Logf("recv: %v", err)
				}
				return nil, false
			}
			switch m.Name {
			case ocp.MsgDUM, ocp.MsgDUY:
				x.answers = append(x.answers, m)
				d, _ := ocpsmtp.ParseData(m)
				if m.Name == ocp.MsgDUY || len(m.Payload) > 0 || d.SMTPError != "" || d.AddHeader == "" && d.Advice == "" {
					return m, true
				}
			case ocp.MsgAME:
				x.ame = true
				return m, false
			case ocp.MsgTE:
				return m, false
			}
		}
	}
	for _, p := range parts {
		a, _ := ans.Has(p.p)
		allow := []string{ocpsmtp.AllowAddHeader, ocpsmtp.AllowAdvice}
		if a {
			allow = []string{ocpsmtp.AllowSMTPError, ocpsmtp.AllowAddHeader, ocpsmtp.AllowAdvice}
		}
		params := ocpsmtp.Data{Part: p.p, Allow: allow}.Params()
		if a {
			end := int64(len(x.original) + len(p.payload))
			params = append(params, ocp.Param{Name: ocpsmtp.ParamKept, Values: []ocp.Value{ocp.Num(0), ocp.Num(end)}})
		}
		if _, err := tx.Send(ctx, params, []byte(p.payload)); err != nil {
			t.Fatalf("send %s: %v", p.p, err)
		}
		x.original = append(x.original, p.payload...)
		if a && !p.p.Data() {
			if _, ok := recv(); !ok {
				return x
			}
		}
	}
	if err := tx.EndMessage(ocp.Result{}); err != nil {
		t.Fatal(err)
	}
	for !x.ame && x.end == nil {
		if _, ok := recv(); !ok && !x.ame {
			break
		}
	}
	tx.End(context.Background(), ocp.Result{})
	// Reassemble the adapted RAWDATA.
	for _, m := range x.answers {
		d, _ := ocpsmtp.ParseData(m)
		switch {
		case m.Name == ocp.MsgDUY:
			off, _ := m.AnonUint(1)
			size, _ := m.AnonUint(2)
			if int(off+size) <= len(x.original) && rawPart(parts, off) {
				x.adapted = append(x.adapted, x.original[off:off+size]...)
			}
		case d.Part == ocpsmtp.PartRAWDATA:
			x.adapted = append(x.adapted, m.Payload...)
		}
	}
	return x
}

// rawPart reports whether original offset off lies in the RAWDATA part.
func rawPart(parts []part, off int64) bool {
	var pos int64
	for _, p := range parts {
		if off >= pos && off < pos+int64(len(p.payload)) {
			return p.p == ocpsmtp.PartRAWDATA
		}
		pos += int64(len(p.payload))
	}
	return false
}

// params returns the named parameters of m as "Name=value" strings.
func params(m *ocp.Message) []string {
	var out []string
	for _, p := range m.Named {
		if a, ok := p.Value().(ocp.Atom); ok {
			out = append(out, p.Name+"="+string(a))
		}
	}
	return out
}

var receiverOffer = ocpsmtp.Profile{
	URI:         ocpsmtp.ReceiverURI,
	Adaptive:    []ocpsmtp.Part{ocpsmtp.PartMAIL, ocpsmtp.PartRCPT, ocpsmtp.PartRAWDATA},
	Informative: []ocpsmtp.Part{ocpsmtp.PartIP, ocpsmtp.PartHELO},
}

func envelope(raw string, rcpts ...string) []part {
	ps := []part{{ocpsmtp.PartIP, "192.0.2.1"}, {ocpsmtp.PartHELO, "mail.example.org"},
		{ocpsmtp.PartMAIL, "<alice@example.org> SIZE=100"}}
	for _, r := range rcpts {
		ps = append(ps, part{ocpsmtp.PartRCPT, r})
	}
	// RAWDATA in chunks of 100 octets, as a processor streams it.
	for len(raw) > 100 {
		ps = append(ps, part{ocpsmtp.PartRAWDATA, raw[:100]})
		raw = raw[100:]
	}
	return append(ps, part{ocpsmtp.PartRAWDATA, raw})
}
