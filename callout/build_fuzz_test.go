package callout

import (
	"log/slog"
	"slices"
	"testing"

	"github.com/opes-milter/opes-milter/internal/ocptest"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// roundTrip checks m through the strict decoder (ocptest.RoundTrip).
func roundTrip(t *testing.T, m *ocp.Message) *ocp.Message { return ocptest.RoundTrip(t, m) }

// FuzzBuiltAnswers sends what services decide (a refusal's code and text,
// header fields to add, advice) and what the processor named (service
// URIs, AM-Index values, Header-List entries) through the builders of the
// server's messages (answer DUMs with SMTP-Error, Add-Header and Advice,
// AMS with Services, the NR profile) and the strict decoder: what the
// server sends after its own checks always reads back the same.
func FuzzBuiltAnswers(f *testing.F) {
	f.Add(550, "5.7.1 Message refused", "X-Spam-Flag", "YES", "Discard", "urn:test:a", "2.1", "Subject")
	f.Add(451, "4.3.0 try later\r\n second line", "X-Fold", "a\r\n\tb", "", "http://x/\"q\"", "", "*")
	f.Add(554, "", "OPES-Via", "x", "Accept;", "", "1", "")
	f.Fuzz(func(t *testing.T, code int, text, fname, fvalue, advice, uri, index, hl string) {
		tx := &txn{tx: &Tx{Logger: slog.New(slog.DiscardHandler)}}
		dec := Refuse(code, text).WithHeader(fname, fvalue).WithAdvice(ocpsmtp.Advice(advice))
		in := ocpsmtp.Data{Part: ocpsmtp.PartSECTIONS, Index: index,
			Allow: []string{ocpsmtp.AllowSMTPError, ocpsmtp.AllowAddHeader, ocpsmtp.AllowAdvice}}
		if _, err := ocpsmtp.ParseIndex(in.Part, index); err != nil {
			in.Index = "1" // only indexes the processor's DUM carried come back
		}
		if dec.validate(ocpsmtp.PartSECTIONS) == nil {
			// A refusal the chain let through is sent as SMTP-Error on
			// the instance, with the advice (refuse).
			params := ocpsmtp.Data{Part: in.Part, Index: in.Index, SMTPError: dec.Reply.String()}.Params()
			if dec.Advice != "" {
				params = append(params, ocp.NewParam(ocpsmtp.ParamAdvice, ocp.Atom(dec.Advice)))
			}
			m := &ocp.Message{Name: ocp.MsgDUM, Anon: []ocp.Value{ocp.Num(1), ocp.Num(0)}, Named: params, HasPayload: true, Payload: []byte{}}
			back, err := ocpsmtp.ParseData(roundTrip(t, m))
			if err != nil || back.SMTPError != dec.Reply.String() || back.Index != in.Index || back.Advice != dec.Advice {
				t.Fatalf("SMTP-Error %q came back as %+v, %v", dec.Reply.String(), back, err)
			}
		}
		keep := Keep().WithHeader(fname, fvalue).WithAdvice(ocpsmtp.Advice(advice))
		if keep.validate(ocpsmtp.PartRAWDATA) == nil {
			first, rest := tx.annotations(in, keep)
			params := append(ocpsmtp.Data{Part: in.Part, Index: in.Index}.Params(), first...)
			m := &ocp.Message{Name: ocp.MsgDUM, Anon: []ocp.Value{ocp.Num(1), ocp.Num(0)}, Named: params, HasPayload: true, Payload: []byte{}}
			back, err := ocpsmtp.ParseData(roundTrip(t, m))
			if err != nil || back.AddHeader != keep.Headers[0].String() || back.Advice != ocpsmtp.Advice(advice) || len(rest) != 0 {
				t.Fatalf("annotation %+v came back as %+v, %v", keep, back, err)
			}
		}

		if uri != "" {
			ss := []ocp.Service{{URI: uri}}
			a, err := ocpsmtp.ParseAMS(roundTrip(t, ocpsmtp.AMS{Xid: 1, Services: ss, HasServices: true}.Message()))
			if err != nil || !a.HasServices || len(a.Services) != 1 || a.Services[0].URI != uri {
				t.Fatalf("AMS Services %q came back as %+v, %v", uri, a, err)
			}
		}

		offer := ocpsmtp.Profile{URI: ocpsmtp.ReceiverURI, Adaptive: []ocpsmtp.Part{ocpsmtp.PartSINGLEHEADERS}, HeaderList: []string{hl}}
		if _, err := ocpsmtp.ParseProfile(offer.Feature()); err != nil {
			return // the processor could not have offered it
		}
		ans := answer(offer, Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartSINGLEHEADERS}})
		nr := &ocp.Message{Name: ocp.MsgNR, Anon: []ocp.Value{ans.Feature().Value()}, Named: []ocp.Param{ocp.NewParam(ocp.ParamSG, ocp.Num(1))}}
		f, err := ocp.ParseFeature(roundTrip(t, nr).Anon[0])
		if err != nil {
			t.Fatal(err)
		}
		back, err := ocpsmtp.ParseProfile(f)
		if err != nil || !slices.Equal(back.HeaderList, ans.HeaderList) || ocpsmtp.CheckAnswer(offer, back) != nil {
			t.Fatalf("NR %+v came back as %+v, %v (check: %v)", ans, back, err, ocpsmtp.CheckAnswer(offer, back))
		}
	})
}
