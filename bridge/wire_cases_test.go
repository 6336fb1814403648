package bridge_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opes-milter/opes-milter/mapping"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// TestWireNegotiationViolations covers digest cases T44-T47 on the wire: a
// server whose NR breaks the profile rules gets CE {400 ...} (RFC 4037 §5,
// docs/profile.md 2.3), not a bare CE, and the message the failure policy
// (tempfail).
func TestWireNegotiationViolations(t *testing.T) {
	for _, tc := range []struct {
		file   string
		answer ocpsmtp.Profile
	}{
		{"T44-unsupported-part.txt", ocpsmtp.Profile{Adaptive: []ocpsmtp.Part{ocpsmtp.PartVRFY}}},
		{"T45-part-in-both-lists.txt", ocpsmtp.Profile{Adaptive: []ocpsmtp.Part{ocpsmtp.PartRCPT}, Informative: []ocpsmtp.Part{ocpsmtp.PartRCPT}}},
		{"T46-exclusive-parts.txt", ocpsmtp.Profile{Adaptive: []ocpsmtp.Part{ocpsmtp.PartRAWDATA, ocpsmtp.PartBODY}}},
		{"T47-header-list-without-singleheaders.txt", ocpsmtp.Profile{Adaptive: []ocpsmtp.Part{ocpsmtp.PartRCPT}, HeaderList: []string{"From"}}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			answer := tc.answer
			answer.URI = ocpsmtp.ReceiverURI
			p := startWire(t, func(c *wireConn) {
				c.handshake(1, func(sg int64, _ ocpsmtp.Profile) *ocp.Message { return nrFor(sg, answer) })
			})
			m := startMilter(t, testPolicy(p.addr, skeletonAdaptive, skeletonInformative))
			acts, _, final := sendMessage(t, m.session(t), "a@example.org", []string{"b@example.com"}, "x\r\n")
			wantTempfail(t, acts[0])
			wantTempfail(t, final)
			p.wait(t, tc.file, "The server's NR breaks the profile: the processor ends the connection with CE 400.")
		})
	}
}

// receiverFlow plays a receiver transaction: the RCPT is answered with a
// DUY, the message with what answer sends after the bridge's AME (the
// server's AME included); then the bridge's TE is expected.
func receiverFlow(answer func(c *wireConn, data []*ocp.Message)) func(c *wireConn) {
	return func(c *wireConn) {
		c.handshake(1, nil)
		c.note("MAIL and RCPT")
		c.expect(ocp.MsgTS)
		c.expect(ocp.MsgAMS)
		for {
			m := c.expect(ocp.MsgDUM)
			if d, _ := ocpsmtp.ParseData(m); d.Part == ocpsmtp.PartRCPT {
				c.send(simple(ocp.MsgAMS, ocp.Num(1)))
				c.send(duy(m))
				break
			}
		}
		c.note("end of message")
		data := c.dums()
		answer(c, data)
		c.expect(ocp.MsgTE)
		c.note("the bridge closes")
	}
}

// TestWireInvalidAnswerEndsWithTE400 covers defect 2 of issue 13: an
// answer that cannot be applied ends the transaction with TE 400, and no
// TE 200 goes out before the answer is validated (docs/profile.md 6).
func TestWireInvalidAnswerEndsWithTE400(t *testing.T) {
	const rcptSize = 15 // "<b@example.com>"
	for _, tc := range []struct {
		file, comment string
		headerList    []string
		answer        func(c *wireConn, data []*ocp.Message)
	}{
		{file: "TE-raw-unanswered.txt", comment: "The server's AME leaves the adaptive RAWDATA unanswered: TE 400.",
			answer: func(c *wireConn, data []*ocp.Message) {
				c.send(simple(ocp.MsgAME, ocp.Num(1)))
			}},
		{file: "TE-raw-empty.txt", comment: "An empty adapted RAWDATA never deletes the message: TE 400.",
			answer: func(c *wireConn, data []*ocp.Message) {
				c.send(dum(1, rcptSize, ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA}, ""))
				c.send(simple(ocp.MsgAME, ocp.Num(1)))
			}},
		{file: "TE-raw-bad-header.txt", comment: "The adapted header has a line without a colon: TE 400.",
			answer: func(c *wireConn, data []*ocp.Message) {
				c.send(dum(1, rcptSize, ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA}, "Subject test\r\n\r\nx\r\n"))
				c.send(simple(ocp.MsgAME, ocp.Num(1)))
			}},
		{file: "TE-singleheaders-renamed.txt", comment: "The answer to SINGLEHEADERS field 1 renames it: TE 400.",
			headerList: []string{"Subject"},
			answer: func(c *wireConn, data []*ocp.Message) {
				c.send(dum(1, rcptSize, ocpsmtp.Data{Part: ocpsmtp.PartSINGLEHEADERS, Index: "1"}, "X-Subject: test\r\n"))
				c.send(simple(ocp.MsgAME, ocp.Num(1)))
			}},
		{file: "TE-valid-answer.txt", comment: "A valid answer (DUY of the message) is applied, then TE 200.",
			answer: func(c *wireConn, data []*ocp.Message) {
				c.send(duy(data[0]))
				c.send(simple(ocp.MsgAME, ocp.Num(1)))
			}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			p := startWire(t, receiverFlow(tc.answer))
			adaptive := skeletonAdaptive
			if tc.headerList != nil {
				adaptive = []ocpsmtp.Part{ocpsmtp.PartRCPT, ocpsmtp.PartSINGLEHEADERS}
			}
			pol := testPolicy(p.addr, adaptive, skeletonInformative)
			pol.Routes[0].HeaderList = tc.headerList
			m := startMilter(t, pol)
			_, _, final := sendMessage(t, m.session(t), "a@example.org", []string{"b@example.com"}, "x\r\n")
			if tc.file == "TE-valid-answer.txt" {
				wantFinal(t, final, ActionAccept)
			} else {
				wantTempfail(t, final)
			}
			m.br.Close()
			p.wait(t, tc.file, tc.comment)
		})
	}
}

// TestWireRoutesSharingAChain covers defect 3 of issue 13: a receiver
// route and a sender route on one chain negotiate two service groups, each
// with its own parts, and a message of the sender route runs in the sender
// group with its adaptive MAIL.
func TestWireRoutesSharingAChain(t *testing.T) {
	p := startWire(t, func(c *wireConn) {
		c.handshake(2, nil)
		c.note("a message from a@submit.example on the sender route")
		c.expect(ocp.MsgTS)
		c.expect(ocp.MsgAMS)
		for {
			m := c.expect(ocp.MsgDUM)
			if d, _ := ocpsmtp.ParseData(m); d.Part == ocpsmtp.PartMAIL {
				c.send(simple(ocp.MsgAMS, ocp.Num(1)))
				c.send(duy(m))
				break
			}
		}
		data := c.dums()
		c.send(duy(data[0], ocp.NewParam(ocpsmtp.ParamAddHeader, ocp.Atom("X-Route: sender"))))
		c.send(simple(ocp.MsgAME, ocp.Num(1)))
		c.expect(ocp.MsgTE)
		c.note("the bridge closes")
	})
	pol := testPolicy(p.addr, skeletonAdaptive, skeletonInformative)
	receiver := pol.Routes[0]
	sender := &mapping.Route{Name: "submission", Chain: receiver.Chain, Profile: mapping.Sender,
		Adaptive:    []ocpsmtp.Part{ocpsmtp.PartMAIL, ocpsmtp.PartRAWDATA},
		Informative: []ocpsmtp.Part{ocpsmtp.PartIP, ocpsmtp.PartHELO, ocpsmtp.PartRCPT}}
	pol.Routes = append(pol.Routes, sender)
	pol.Select = func(f mapping.Facts) *mapping.Route {
		if f.SenderDomain == "submit.example" {
			return sender
		}
		return receiver
	}
	m := startMilter(t, pol)
	_, mods, final := sendMessage(t, m.session(t), "a@submit.example", []string{"b@example.com"}, "x\r\n")
	wantFinal(t, final, ActionAccept)
	if h := findMods(mods, ActionAddHeader, "X-Route"); len(h) != 1 {
		t.Errorf("the sender route's answer was not applied: %+v", mods)
	}
	m.br.Close()
	p.wait(t, "routes-sharing-a-chain.txt", `Two routes on one chain, a receiver and a sender profile: two service groups, each with its own parts.
The message of the sender route starts in service group 2 and its MAIL is adaptive.`)
}

// bigBody is a message body larger than the bridge's 32 KiB data queue,
// so that it crosses the OCP connection before end of message.
func bigBody() string {
	var b strings.Builder
	for i := 0; b.Len() < 40<<10; i++ {
		fmt.Fprintf(&b, "line %05d: the quick brown fox jumps over the lazy dog\r\n", i)
	}
	return b.String()
}

// TestWireStopEarly covers defect 4 of issue 13 (digest T35, T36, T38):
// the bridge honours the server's DWSR and DWSS, and the answers given
// before a flow stopped early are completed with the original rest, byte
// for byte (docs/profile.md 6). The message is larger than the bridge's
// data queue; the server sends DWSS/DWSR with its RCPT answer, before the
// bridge's AME.
func TestWireStopEarly(t *testing.T) {
	body := bigBody()
	firstLine := strings.Index(body, "\r\n") + 2
	for _, tc := range []struct {
		file, comment string
		early         []*ocp.Message // sent before the RCPT's DUY
		flow          func(c *wireConn)
		wantBody      string
		wantHeader    bool // X-Prefix added
	}{
		{file: "T35-dwsr.txt", comment: `T35: DWSR 0 with the RCPT answer. The bridge ends its original flow with AME 206 at its first data
and sends no data; the server's RAWDATA answer (a new header line) is completed with the whole original.`,
			early: []*ocp.Message{simple(ocp.MsgDWSR, ocp.Num(1), ocp.Num(0))},
			flow: func(c *wireConn) {
				c.expect(ocp.MsgAME)
				c.send(dum(1, 15, ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA}, "X-Prefix: yes\r\n"))
				c.send(simple(ocp.MsgAME, ocp.Num(1)))
			},
			wantBody: body, wantHeader: true},
		{file: "T36-dwss-dss.txt", comment: `T36: DWSS with the RCPT answer; the bridge allows it at once (DSS) and sends the message. The
server's adapted prefix (the header by DUY, a new first line, ten original octets by DUY) then AME 206:
the bridge delivers the prefix and the original after the last octet the prefix reused.`,
			early: []*ocp.Message{simple(ocp.MsgDWSS, ocp.Num(1))},
			flow: func(c *wireConn) {
				c.expect(ocp.MsgDSS)
				data := c.dums()
				hdr := data[0]
				hoff, _ := hdr.AnonUint(1)
				bodyOff := hoff + int64(len(hdr.Payload))
				c.send(duy(hdr))
				c.send(dum(1, 15+int64(len(hdr.Payload)), ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA}, "Changed first line\r\n"))
				c.send(simple(ocp.MsgDUY, ocp.Num(1), ocp.Num(bodyOff+int64(firstLine)), ocp.Num(10)))
				c.send(simple(ocp.MsgAME, ocp.Num(1), ocp.Result{Code: ocp.CodePartial}.Value()))
			},
			wantBody: "Changed first line\r\n" + body[firstLine:]},
		{file: "T38-dwss-then-dwsr.txt", comment: `T38: DWSS then DWSR 0 with the RCPT answer: the bridge sends DSS before its AME 206, and no data.
The server's RAWDATA answer (a new header line) then AME 206: delivered with the whole original after it.`,
			early: []*ocp.Message{simple(ocp.MsgDWSS, ocp.Num(1)), simple(ocp.MsgDWSR, ocp.Num(1), ocp.Num(0))},
			flow: func(c *wireConn) {
				c.expect(ocp.MsgDSS)
				c.expect(ocp.MsgAME)
				c.send(dum(1, 15, ocpsmtp.Data{Part: ocpsmtp.PartRAWDATA}, "X-Prefix: yes\r\n"))
				c.send(simple(ocp.MsgAME, ocp.Num(1), ocp.Result{Code: ocp.CodePartial}.Value()))
			},
			wantBody: body, wantHeader: true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			p := startWire(t, func(c *wireConn) {
				c.handshake(1, nil)
				c.note("MAIL and RCPT")
				c.expect(ocp.MsgTS)
				c.expect(ocp.MsgAMS)
				for {
					m := c.expect(ocp.MsgDUM)
					if d, _ := ocpsmtp.ParseData(m); d.Part == ocpsmtp.PartRCPT {
						c.send(simple(ocp.MsgAMS, ocp.Num(1)))
						for _, e := range tc.early {
							c.send(e)
						}
						c.send(duy(m))
						break
					}
				}
				c.note("the message (%d octets of body)", len(body))
				tc.flow(c)
				c.expect(ocp.MsgTE)
				c.note("the bridge closes")
			})
			m := startMilter(t, testPolicy(p.addr, skeletonAdaptive, skeletonInformative))
			_, mods, final := sendMessage(t, m.session(t), "a@example.org", []string{"b@example.com"}, body)
			wantFinal(t, final, ActionAccept)
			got, replaced := bodyOf(mods)
			if !replaced {
				got = body
			}
			if got != tc.wantBody {
				t.Errorf("delivered body differs (%d octets, want %d):\n%.200q\nwant\n%.200q", len(got), len(tc.wantBody), got, tc.wantBody)
			}
			var added []string
			for _, md := range mods {
				if md.Type == ActionAddHeader || md.Type == ActionInsertHeader || md.Type == ActionChangeHeader {
					added = append(added, md.HeaderName+":"+md.HeaderValue)
				}
			}
			if x := strings.Contains(strings.Join(added, "\n"), "X-Prefix: yes"); x != tc.wantHeader {
				t.Errorf("header changes %q, want X-Prefix: %v", added, tc.wantHeader)
			}
			m.br.Close()
			p.wait(t, tc.file, tc.comment)
		})
	}
}

// TestWireOPESViaNamesActingServices covers defect 6 of issue 13 on the
// processor's side: the server's AMS names the services that act
// (Services), and OPES-Via names exactly those; a service outside the
// group is a protocol error (TE 400, nothing applied).
func TestWireOPESViaNamesActingServices(t *testing.T) {
	for _, tc := range []struct {
		file, comment string
		services      []ocp.Service
		wantVia       string // "" = tempfail
	}{
		{"opes-via-acting.txt", "The AMS names one of the two services: OPES-Via names that one.",
			[]ocp.Service{{URI: "urn:test:recipient-policy"}},
			" http://opes.example.net/opes-milter,\n\turn:test:recipient-policy"},
		{"opes-via-unknown-service.txt", "The AMS names a service outside the service group: TE 400.",
			[]ocp.Service{{URI: "urn:test:other"}}, ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			p := startWire(t, func(c *wireConn) {
				c.handshake(1, nil)
				c.note("MAIL and RCPT")
				c.expect(ocp.MsgTS)
				c.expect(ocp.MsgAMS)
				for {
					m := c.expect(ocp.MsgDUM)
					if d, _ := ocpsmtp.ParseData(m); d.Part == ocpsmtp.PartRCPT {
						c.send(ocpsmtp.AMS{Xid: 1, Services: tc.services, HasServices: true}.Message())
						c.send(duy(m))
						break
					}
				}
				c.note("end of message")
				if tc.wantVia != "" {
					data := c.dums()
					c.send(duy(data[0]))
					c.send(simple(ocp.MsgAME, ocp.Num(1)))
				}
				c.expect(ocp.MsgTE)
				c.note("the bridge closes")
			})
			m := startMilter(t, testPolicy(p.addr, skeletonAdaptive, skeletonInformative))
			acts, mods, final := sendMessage(t, m.session(t), "a@example.org", []string{"b@example.com"}, "x\r\n")
			if tc.wantVia == "" {
				wantTempfail(t, acts[0])
			} else {
				wantFinal(t, final, ActionAccept)
				via := findMods(mods, ActionInsertHeader, "OPES-Via")
				if len(via) != 1 || via[0].HeaderValue != tc.wantVia {
					t.Errorf("OPES-Via %+v, want %q", via, tc.wantVia)
				}
			}
			m.br.Close()
			p.wait(t, tc.file, tc.comment)
		})
	}
}

// TestWireServerOfferRejected covers defect 5 of issue 13 at the bridge: a
// server that offers the profile itself (a feature the processor knows but
// negotiates per service group) gets it back under Rejects, an unknown
// feature under Unknowns (RFC 4037 §11.19).
func TestWireServerOfferRejected(t *testing.T) {
	rcptSeen := make(chan struct{})
	p := startWire(t, func(c *wireConn) {
		c.expect(ocp.MsgCS)
		c.expect(ocp.MsgNO)
		c.send(&ocp.Message{Name: ocp.MsgCS})
		// Offer-Pending keeps the negotiation phase open for the
		// server's own offer, so the bridge answers it before its SGC.
		c.send(&ocp.Message{Name: ocp.MsgNR, Named: []ocp.Param{ocp.NewParam(ocp.ParamOfferPending, ocp.BoolAtom(true))}})
		c.send(&ocp.Message{Name: ocp.MsgNO, Anon: []ocp.Value{ocp.FeaturesValue([]ocp.Feature{
			{URI: ocpsmtp.ReceiverURI}, {URI: "ocp://feature/example/"}})}})
		c.expect(ocp.MsgNR)
		c.note("the bridge goes on with its service group")
		sgc := c.expect(ocp.MsgSGC)
		sg, _ := sgc.AnonUint(0)
		no := c.expect(ocp.MsgNO)
		f, _ := ocp.ParseFeature(no.Anon[0].(ocp.List)[0])
		offer, _ := ocpsmtp.ParseProfile(f)
		c.send(nrFor(sg, offer))
		c.expect(ocp.MsgTS)
		c.expect(ocp.MsgAMS)
		for {
			m := c.expect(ocp.MsgDUM)
			if d, _ := ocpsmtp.ParseData(m); d.Part == ocpsmtp.PartRCPT {
				break
			}
		}
		close(rcptSeen)
	})
	m := startMilter(t, testPolicy(p.addr, skeletonAdaptive, skeletonInformative))
	s := m.session(t)
	if _, err := s.Mail("a@example.org", ""); err != nil {
		t.Fatal(err)
	}
	// The scripted server does not answer the RCPT; once it arrived the
	// bridge is closed: only the negotiation matters here.
	rcptDone := make(chan struct{})
	go func() {
		defer close(rcptDone)
		s.Rcpt("b@example.com", "")
	}()
	select {
	case <-rcptSeen:
	case <-time.After(10 * time.Second):
		t.Error("no RCPT")
	}
	m.br.Close()
	select {
	case <-rcptDone:
	case <-time.After(10 * time.Second):
		t.Error("the RCPT did not return after Close")
	}
	p.wait(t, "server-offer-rejected.txt", "The server offers the receiver profile and an unknown feature: Rejects for the first, Unknowns for the second.")
}
