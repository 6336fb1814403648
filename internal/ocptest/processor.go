package ocptest

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// Processor plays the processor's side of one OCP transaction against a
// callout server, as opes-milter does: one service group, one transaction,
// one application message.
type Processor struct {
	t   testing.TB
	ctx context.Context
	// Client is the OCP connection, Tx the transaction.
	Client *ocp.Client
	Tx     *ocp.Tx
	// NR is the negotiated feature, Profile its parsed form.
	NR      ocp.Feature
	Profile ocpsmtp.Profile
	// Original is everything sent so far.
	Original []byte
}

// Dial connects to addr, negotiates offer for a service group of uris
// (failing the test when the answer breaks the profile), starts a
// transaction and its application message. Everything is bounded by 10 s
// and closed when the test ends.
func Dial(t testing.TB, addr string, cfg ocp.ClientConfig, uris []string, offer ocpsmtp.Profile) *Processor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	cl, err := ocp.Dial(ctx, addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close(context.Background(), ocp.Result{}) })
	var services []ocp.Service
	for _, u := range uris {
		services = append(services, ocp.Service{URI: u})
	}
	sg, nr, err := cl.NewServiceGroup(ctx, services, []ocp.Feature{offer.Feature()})
	if err != nil {
		t.Fatalf("negotiation: %v", err)
	}
	ans, err := ocpsmtp.ParseProfile(nr)
	if err != nil {
		t.Fatal(err)
	}
	if err := ocpsmtp.CheckAnswer(offer, ans); err != nil {
		t.Fatal(err)
	}
	tx, err := cl.Start(ctx, sg)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.StartMessage(); err != nil {
		t.Fatal(err)
	}
	return &Processor{t: t, ctx: ctx, Client: cl, Tx: tx, NR: nr, Profile: ans}
}

// Adaptive reports whether the negotiated profile has part adaptive.
func (p *Processor) Adaptive(part ocpsmtp.Part) bool {
	a, _ := p.Profile.Has(part)
	return a
}

// Send sends one DUM of part: Allow lists SMTP-Error only for an adaptive
// part, which also carries Kept (everything sent so far may be reused).
func (p *Processor) Send(part ocpsmtp.Part, payload string) {
	p.t.Helper()
	if err := p.send(part, payload); err != nil {
		p.t.Fatalf("send %s: %v", part, err)
	}
}

// send is Send returning the error.
func (p *Processor) send(part ocpsmtp.Part, payload string) error {
	allow := []string{ocpsmtp.AllowAddHeader, ocpsmtp.AllowAdvice}
	a := p.Adaptive(part)
	if a {
		allow = []string{ocpsmtp.AllowSMTPError, ocpsmtp.AllowAddHeader, ocpsmtp.AllowAdvice}
	}
	params := ocpsmtp.Data{Part: part, Allow: allow}.Params()
	if a {
		end := int64(len(p.Original) + len(payload))
		params = append(params, ocp.Param{Name: ocpsmtp.ParamKept, Values: []ocp.Value{ocp.Num(0), ocp.Num(end)}})
	}
	if _, err := p.Tx.Send(p.ctx, params, []byte(payload)); err != nil {
		return err
	}
	p.Original = append(p.Original, payload...)
	return nil
}

// Recv returns the server's next message of the transaction (AMS is
// skipped), or the error that ended it: an *ocp.TxError for the server's
// TE, io.EOF when the transaction is over.
func (p *Processor) Recv() (*ocp.Message, error) {
	for {
		m, err := p.Tx.Recv(p.ctx)
		if err != nil || m.Name != ocp.MsgAMS {
			return m, err
		}
	}
}

// EndMessage sends the processor's AME.
func (p *Processor) EndMessage() {
	p.t.Helper()
	if err := p.Tx.EndMessage(ocp.Result{}); err != nil {
		p.t.Fatal(err)
	}
}

// End ends the transaction with TE 200.
func (p *Processor) End() { p.Tx.End(context.Background(), ocp.Result{}) }

// Close ends the OCP connection (CE).
func (p *Processor) Close() error { return p.Client.Close(context.Background(), ocp.Result{}) }

// Part is one original part a Processor sends.
type Part struct {
	Part    ocpsmtp.Part
	Payload string
}

// Exchange is what a Processor saw of one transaction.
type Exchange struct {
	NR       ocp.Feature    // the negotiated profile
	Answers  []*ocp.Message // the server's DUM and DUY messages, in order
	Adapted  []byte         // the adapted RAWDATA, reassembled
	Original []byte         // everything the processor sent
	End      *ocp.TxError   // how the server ended the transaction, if it did
	AME      bool           // the server's AME arrived
}

// Process plays a whole transaction: it negotiates offer for a group of
// uris and sends parts, waiting for the answer to every adaptive MAIL and
// RCPT as opes-milter does, then AME, and collects the server's answers.
func Process(t testing.TB, addr string, cfg ocp.ClientConfig, uris []string, offer ocpsmtp.Profile, parts []Part) *Exchange {
	t.Helper()
	p := Dial(t, addr, cfg, uris, offer)
	x := &Exchange{NR: p.NR}
	// recv reads server messages until one answers a part (or the end).
	recv := func() bool {
		for {
			m, err := p.Recv()
			if err != nil {
				var te *ocp.TxError
				if errors.As(err, &te) {
					x.End = te
				} else if !errors.Is(err, io.EOF) {
					t.Logf("recv: %v", err)
				}
				return false
			}
			switch m.Name {
			case ocp.MsgDUM, ocp.MsgDUY:
				x.Answers = append(x.Answers, m)
				d, _ := ocpsmtp.ParseData(m)
				if m.Name == ocp.MsgDUY || len(m.Payload) > 0 || d.SMTPError != "" || d.AddHeader == "" && d.Advice == "" {
					return true
				}
			case ocp.MsgAME:
				x.AME = true
				return false
			case ocp.MsgTE:
				return false
			}
		}
	}
	defer func() { x.Original = p.Original }()
	// ended records the server's TE that made a send fail: it may end the
	// transaction (a part out of order) while parts are still going out.
	ended := func(err error) bool {
		if err == nil {
			return false
		}
		var te *ocp.TxError
		if !errors.As(err, &te) {
			t.Fatal(err)
		}
		x.End = te
		return true
	}
	for _, part := range parts {
		if ended(p.send(part.Part, part.Payload)) {
			return x
		}
		if p.Adaptive(part.Part) && !part.Part.Data() {
			if !recv() {
				return x
			}
		}
	}
	if ended(p.Tx.EndMessage(ocp.Result{})) {
		return x
	}
	for !x.AME && x.End == nil {
		if !recv() && !x.AME {
			break
		}
	}
	p.End()
	// Reassemble the adapted RAWDATA.
	for _, m := range x.Answers {
		d, _ := ocpsmtp.ParseData(m)
		switch {
		case m.Name == ocp.MsgDUY:
			off, _ := m.AnonUint(1)
			size, _ := m.AnonUint(2)
			if int(off+size) <= len(p.Original) && rawPart(parts, off) {
				x.Adapted = append(x.Adapted, p.Original[off:off+size]...)
			}
		case d.Part == ocpsmtp.PartRAWDATA:
			x.Adapted = append(x.Adapted, m.Payload...)
		}
	}
	return x
}

// rawPart reports whether original offset off lies in the RAWDATA part.
func rawPart(parts []Part, off int64) bool {
	var pos int64
	for _, p := range parts {
		if off >= pos && off < pos+int64(len(p.Payload)) {
			return p.Part == ocpsmtp.PartRAWDATA
		}
		pos += int64(len(p.Payload))
	}
	return false
}
