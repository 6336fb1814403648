package bridge_test

import (
	"context"
	"strings"
	"testing"

	"github.com/opes-milter/opes-milter/internal/ocptest"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// TestNegotiationViolations covers digest cases T44-T47: a server whose NR
// breaks the profile rules is not used; the message gets the connect
// failure policy (tempfail), and nothing is adapted.
func TestNegotiationViolations(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer ocpsmtp.Profile
	}{
		{"T44 unsupported part", ocpsmtp.Profile{Adaptive: []ocpsmtp.Part{ocpsmtp.PartVRFY}}},
		{"T45 part in both lists", ocpsmtp.Profile{Adaptive: []ocpsmtp.Part{ocpsmtp.PartRCPT}, Informative: []ocpsmtp.Part{ocpsmtp.PartRCPT}}},
		{"T46 mutually exclusive parts", ocpsmtp.Profile{Adaptive: []ocpsmtp.Part{ocpsmtp.PartRAWDATA, ocpsmtp.PartBODY}}},
		{"T47 Header-List without SINGLEHEADERS", ocpsmtp.Profile{Adaptive: []ocpsmtp.Part{ocpsmtp.PartRCPT}, HeaderList: []string{"From"}}},
		{"profile not offered", ocpsmtp.Profile{URI: ocpsmtp.SenderURI, Adaptive: []ocpsmtp.Part{ocpsmtp.PartRCPT}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer := tc.answer
			if answer.URI == "" {
				answer.URI = ocpsmtp.ReceiverURI
			}
			co := ocptest.StartServer(t, func(context.Context, *ocp.ServerTx, *ocp.Message) error {
				t.Error("a transaction started on a connection with a broken negotiation")
				return nil
			}, ocptest.WithLogger(testLogger(t)),
				ocptest.WithNegotiate(func(*ocp.Group, []ocp.Feature) (ocp.Feature, bool) { return answer.Feature(), true }))
			m := startMilter(t, testPolicy(co.Addr, skeletonAdaptive, skeletonInformative))
			s := m.session(t)
			acts, mods, final := sendMessage(t, s, "a@example.org", []string{"b@example.com"}, "x\r\n")
			wantTempfail(t, acts[0])
			wantTempfail(t, final)
			if len(mods) != 0 {
				t.Fatalf("modifications: %+v", mods)
			}
		})
	}
}

// TestServerOverstepsAllow covers T49 and T51: a server that refuses or
// changes an informative part (which the processor did not allow) breaks
// the profile: transaction error, failure policy (tempfail), nothing
// applied.
func TestServerOverstepsAllow(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    ocpsmtp.Data
		body []byte
	}{
		{"T49 SMTP-Error on informative MAIL", ocpsmtp.Data{Part: ocpsmtp.PartMAIL, SMTPError: "550 5.1.0 no"}, []byte{}},
		{"T51 informative MAIL changed", ocpsmtp.Data{Part: ocpsmtp.PartMAIL}, []byte("<other@example.org>")},
		{"part never negotiated", ocpsmtp.Data{Part: ocpsmtp.PartBODY}, []byte("x")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := standardScript()
			co := startCallout(t, func(ctx context.Context, tx *ocp.ServerTx, m *ocp.Message) error {
				if err := base(ctx, tx, m); err != nil {
					return err
				}
				if d, err := ocpsmtp.ParseData(m); err == nil && m.Name == ocp.MsgDUM && d.Part == ocpsmtp.PartMAIL {
					_, err := tx.Send(ctx, tc.d.Params(), tc.body)
					return err
				}
				return nil
			})
			m := startMilter(t, testPolicy(co.Addr, skeletonAdaptive, skeletonInformative))
			s := m.session(t)
			_, mods, final := sendMessage(t, s, "a@example.org", []string{"b@example.com"}, "x\r\n")
			wantTempfail(t, final)
			if len(mods) != 0 || strings.Contains(final.SMTPReply, "5.1.0") {
				t.Fatalf("the overstepping answer was used: %+v %+v", mods, final)
			}
		})
	}
}
