package callout

import (
	"bytes"
	"context"
	"testing"

	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// rewriter is a test MessageAdapter working on the parts in needs: it
// replaces old with new in the message it is given (nothing when absent)
// and appends footer at its end.
type rewriter struct {
	needs    Needs
	old, new string
	footer   string
}

func (r rewriter) Needs() Needs { return r.needs }

func (r rewriter) AdaptMessage(_ context.Context, _ *Tx, msg *Message) (Decision, error) {
	b, err := msg.Bytes(0, msg.Size())
	if err != nil {
		return Decision{}, err
	}
	var edits []Edit
	if i := bytes.Index(b, []byte(r.old)); r.old != "" && i >= 0 {
		edits = append(edits, Edit{Offset: int64(i), End: int64(i + len(r.old)), Data: []byte(r.new)})
	}
	if r.footer != "" {
		edits = append(edits, Edit{Offset: msg.Size(), End: msg.Size(), Data: []byte(r.footer)})
	}
	if len(edits) == 0 {
		return Keep(), nil
	}
	out, err := msg.Splice(edits...)
	if err != nil {
		return Decision{}, err
	}
	return ReplaceMessage(out), nil
}

// TestWireDataParts covers defect 7 of issue 13: the server negotiates the
// data parts the chain needs (not RAWDATA for all) and answers each as
// that part: ALLHEADERS with the new header section, SINGLEHEADERS by
// AM-Index with the new field, BODY with the new body, SECTIONS by AM-Index
// with the new entity (an unchanged one is not answered).
func TestWireDataParts(t *testing.T) {
	svc := []ocp.Service{{URI: "urn:test:rewrite"}}
	for _, tc := range []struct {
		file, comment string
		service       rewriter
		offer         ocpsmtp.Profile
		send          func(w *wireProc)
	}{
		{file: "allheaders.txt", comment: `A chain that needs only the header (ALLHEADERS): the offer has ALLHEADERS and BODY, the answer
selects ALLHEADERS alone, so no body octet is sent; the new header section is the answer.`,
			service: rewriter{needs: Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartALLHEADERS}}, old: "Subject: hello", new: "Subject: [tagged] hello"},
			offer: ocpsmtp.Profile{URI: ocpsmtp.ReceiverURI, Adaptive: []ocpsmtp.Part{ocpsmtp.PartRCPT, ocpsmtp.PartALLHEADERS, ocpsmtp.PartBODY},
				Informative: []ocpsmtp.Part{ocpsmtp.PartIP, ocpsmtp.PartHELO, ocpsmtp.PartMAIL}},
			send: func(w *wireProc) {
				w.dum(ocpsmtp.Data{Part: ocpsmtp.PartALLHEADERS, Allow: []string{ocpsmtp.AllowSMTPError, ocpsmtp.AllowAddHeader}},
					"From: a@example.org\r\nSubject: hello\r\n\r\n")
			}},
		{file: "singleheaders.txt", comment: `A chain that needs the Subject field only (SINGLEHEADERS, Header-List): the answer narrows the
offered Header-List to Subject; field 2 is answered by AM-Index with the new field.`,
			service: rewriter{needs: Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartSINGLEHEADERS}, HeaderList: []string{"Subject"}},
				old: "Subject: hello", new: "Subject: [tagged] hello"},
			offer: ocpsmtp.Profile{URI: ocpsmtp.ReceiverURI, Adaptive: []ocpsmtp.Part{ocpsmtp.PartSINGLEHEADERS, ocpsmtp.PartBODY},
				HeaderList: []string{"From", "Subject"}},
			send: func(w *wireProc) {
				w.dum(ocpsmtp.Data{Part: ocpsmtp.PartSINGLEHEADERS, Index: "2", Allow: []string{ocpsmtp.AllowSMTPError, ocpsmtp.AllowAddHeader}},
					"Subject: hello\r\n")
			}},
		{file: "singleheaders-delete-add.txt", comment: `SINGLEHEADERS: the service removes the Subject field and adds another: field 2 is deleted (an
empty DUM with its AM-Index) and the new field goes in with Add-Header.`,
			service: rewriter{needs: Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartSINGLEHEADERS}, HeaderList: []string{"Subject"}},
				old: "Subject: hello\r\n", new: "X-Subject-Removed: yes\r\n"},
			offer: ocpsmtp.Profile{URI: ocpsmtp.ReceiverURI, Adaptive: []ocpsmtp.Part{ocpsmtp.PartSINGLEHEADERS},
				HeaderList: []string{"From", "Subject"}},
			send: func(w *wireProc) {
				w.dum(ocpsmtp.Data{Part: ocpsmtp.PartSINGLEHEADERS, Index: "2", Allow: []string{ocpsmtp.AllowSMTPError, ocpsmtp.AllowAddHeader}},
					"Subject: hello\r\n")
			}},
		{file: "allheaders-unchanged.txt", comment: `ALLHEADERS that the chain leaves unchanged is answered with a DUY of it.`,
			service: rewriter{needs: Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartALLHEADERS}}, old: "not there", new: "x"},
			offer:   ocpsmtp.Profile{URI: ocpsmtp.ReceiverURI, Adaptive: []ocpsmtp.Part{ocpsmtp.PartALLHEADERS}},
			send: func(w *wireProc) {
				w.dum(ocpsmtp.Data{Part: ocpsmtp.PartALLHEADERS, Allow: []string{ocpsmtp.AllowSMTPError}}, "Subject: hello\r\n\r\n")
			}},
		{file: "body.txt", comment: `A chain that needs the body only (BODY): the new body is the answer.`,
			service: rewriter{needs: Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartBODY}}, footer: "-- \r\nscanned\r\n"},
			offer:   ocpsmtp.Profile{URI: ocpsmtp.ReceiverURI, Adaptive: []ocpsmtp.Part{ocpsmtp.PartALLHEADERS, ocpsmtp.PartBODY}},
			send: func(w *wireProc) {
				w.dum(ocpsmtp.Data{Part: ocpsmtp.PartBODY, Allow: []string{ocpsmtp.AllowSMTPError, ocpsmtp.AllowAddHeader}}, "Hello\r\n")
			}},
		{file: "sections.txt", comment: `A chain that works on MIME entities (SECTIONS): each entity is adapted on its own; section 1
changes and is answered by AM-Index, section 2 does not and is not answered (it stays).`,
			service: rewriter{needs: Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartSECTIONS}}, old: "secret", new: "******"},
			offer:   ocpsmtp.Profile{URI: ocpsmtp.ReceiverURI, Adaptive: []ocpsmtp.Part{ocpsmtp.PartSECTIONS}},
			send: func(w *wireProc) {
				allow := []string{ocpsmtp.AllowSMTPError, ocpsmtp.AllowAddHeader}
				w.dum(ocpsmtp.Data{Part: ocpsmtp.PartSECTIONS, Index: "1", Allow: allow}, "Content-Type: text/plain\r\n\r\nthe secret word")
				w.dum(ocpsmtp.Data{Part: ocpsmtp.PartSECTIONS, Index: "2", Allow: allow}, "Content-Type: text/plain\r\n\r\nnothing here")
			}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			w := dialWire(t, &Server{Services: map[string]Service{"urn:test:rewrite": tc.service}})
			ans := w.handshake(svc, tc.offer)
			for _, p := range ans.Parts() {
				if p == ocpsmtp.PartRAWDATA || p == ocpsmtp.PartBODY && tc.file != "body.txt" {
					t.Errorf("negotiated %s: %v", p, ans.Parts())
				}
			}
			w.note("one message")
			w.send(&ocp.Message{Name: ocp.MsgTS, Anon: []ocp.Value{ocp.Num(1), ocp.Num(1)}})
			w.send(&ocp.Message{Name: ocp.MsgAMS, Anon: []ocp.Value{ocp.Num(1)}})
			tc.send(w)
			w.send(&ocp.Message{Name: ocp.MsgAME, Anon: []ocp.Value{ocp.Num(1)}})
			w.until(ocp.MsgTE)
			w.compare(tc.file, tc.comment)
		})
	}
}

// rcptKeeper adapts RCPT and keeps every recipient.
type rcptKeeper struct{}

func (rcptKeeper) Needs() Needs { return Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartRCPT}} }
func (rcptKeeper) AdaptRcpt(context.Context, *Tx, Address) (Decision, error) {
	return Keep(), nil
}

// mailKeeper adapts MAIL and keeps the sender.
type mailKeeper struct{}

func (mailKeeper) Needs() Needs { return Needs{Adapt: []ocpsmtp.Part{ocpsmtp.PartMAIL}} }
func (mailKeeper) AdaptMail(context.Context, *Tx, Address) (Decision, error) {
	return Keep(), nil
}

// TestWireAMSServices covers defect 6 of issue 13: a service that cannot
// act on what was negotiated (it adapts MAIL, which the processor offered
// informative only) is left out of the AMS's Services, so the processor's
// OPES-Via does not name it (docs/profile.md 12).
func TestWireAMSServices(t *testing.T) {
	w := dialWire(t, &Server{Services: map[string]Service{"urn:test:rcpt": rcptKeeper{}, "urn:test:mail": mailKeeper{}}})
	w.handshake([]ocp.Service{{URI: "urn:test:rcpt"}, {URI: "urn:test:mail"}}, ocpsmtp.Profile{URI: ocpsmtp.ReceiverURI,
		Adaptive: []ocpsmtp.Part{ocpsmtp.PartRCPT}, Informative: []ocpsmtp.Part{ocpsmtp.PartMAIL}})
	w.note("one message: MAIL is informative, so urn:test:mail never acts")
	w.send(&ocp.Message{Name: ocp.MsgTS, Anon: []ocp.Value{ocp.Num(1), ocp.Num(1)}})
	w.send(&ocp.Message{Name: ocp.MsgAMS, Anon: []ocp.Value{ocp.Num(1)}})
	w.dum(ocpsmtp.Data{Part: ocpsmtp.PartMAIL, Allow: []string{ocpsmtp.AllowAddHeader}}, "<a@example.org>")
	w.dum(ocpsmtp.Data{Part: ocpsmtp.PartRCPT, Allow: []string{ocpsmtp.AllowSMTPError, ocpsmtp.AllowAddHeader}}, "<b@example.com>")
	w.until(ocp.MsgDUY)
	w.send(&ocp.Message{Name: ocp.MsgAME, Anon: []ocp.Value{ocp.Num(1)}})
	w.until(ocp.MsgTE)
	w.compare("ams-services.txt", "The AMS names the services that act: urn:test:rcpt, not urn:test:mail.")
}
