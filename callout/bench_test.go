package callout_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/callout"
	"github.com/opes-milter/opes-milter/callout/builtin"
	"github.com/opes-milter/opes-milter/callout/callouttest"
	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

func BenchmarkParse(b *testing.B) {
	raw := callouttest.Bytes(b, callout.NewMessage(callouttest.Sample(b, "nested.eml")))
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := callout.NewMessage(raw).Root(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDisclaimer(b *testing.B) {
	raw := callouttest.Bytes(b, callout.NewMessage(callouttest.Sample(b, "nested.eml")))
	d := builtin.NewDisclaimer(&mapping.Disclaimer{Text: "footer"})
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		dec, err := d.AdaptMessage(context.Background(), &callout.Tx{}, callout.NewMessage(raw))
		if err != nil || dec.Action != callout.ActionReplace {
			b.Fatal(dec.Action, err)
		}
	}
}

// BenchmarkServerTransaction measures one whole transaction over loopback
// OCP: IP, HELO, MAIL informative, one adaptive RCPT (recipient-policy),
// adaptive RAWDATA of 4 KiB (header-tag), answered with DUYs.
func BenchmarkServerTransaction(b *testing.B) {
	policy, _ := builtin.NewRecipientPolicy(&mapping.RecipientPolicy{Deny: []string{"x@example.com"}})
	tag, _ := builtin.NewHeaderTag(&mapping.HeaderTag{Headers: []mapping.Header{{Name: "X-Tag", Value: "yes"}}}, nil)
	srv := &callout.Server{Services: map[string]callout.Service{"urn:p": policy, "urn:t": tag}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	ctx := context.Background()
	cl, err := ocp.Dial(ctx, ln.Addr().String(), ocp.ClientConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close(context.Background(), ocp.Result{})
	offer := ocpsmtp.Profile{URI: ocpsmtp.ReceiverURI, Adaptive: []ocpsmtp.Part{ocpsmtp.PartRCPT, ocpsmtp.PartRAWDATA},
		Informative: []ocpsmtp.Part{ocpsmtp.PartIP, ocpsmtp.PartHELO, ocpsmtp.PartMAIL}}
	sg, _, err := cl.NewServiceGroup(ctx, []ocp.Service{{URI: "urn:p"}, {URI: "urn:t"}}, []ocp.Feature{offer.Feature()})
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 4096)
	for i := range body {
		body[i] = 'a' + byte(i%26)
		if i%78 == 76 {
			body[i], body[i+1] = '\r', '\n'
		}
	}
	raw := append([]byte("Subject: bench\r\n\r\n"), body...)
	adaptive := ocpsmtp.Data{Allow: []string{ocpsmtp.AllowSMTPError, ocpsmtp.AllowAddHeader}}
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		tx, err := cl.Start(ctx, sg)
		if err != nil {
			b.Fatal(err)
		}
		tx.StartMessage()
		var off int64
		send := func(p ocpsmtp.Part, payload []byte, kept bool) {
			d := adaptive
			d.Part = p
			params := d.Params()
			off += int64(len(payload))
			if kept {
				params = append(params, ocp.Param{Name: ocpsmtp.ParamKept, Values: []ocp.Value{ocp.Num(0), ocp.Num(off)}})
			}
			if _, err := tx.Send(ctx, params, payload); err != nil {
				b.Fatal(err)
			}
		}
		next := func(want string) {
			for {
				m, err := tx.Recv(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if m.Name == want {
					return
				}
			}
		}
		send(ocpsmtp.PartIP, []byte("192.0.2.1"), false)
		send(ocpsmtp.PartHELO, []byte("mail.example.org"), false)
		send(ocpsmtp.PartMAIL, []byte("<a@example.org>"), false)
		send(ocpsmtp.PartRCPT, []byte("<b@example.com>"), true)
		next(ocp.MsgDUY)
		send(ocpsmtp.PartRAWDATA, raw, true)
		tx.EndMessage(ocp.Result{})
		next(ocp.MsgAME)
		tx.End(context.Background(), ocp.Result{})
	}
	b.StopTimer()
	time.Sleep(10 * time.Millisecond)
}
