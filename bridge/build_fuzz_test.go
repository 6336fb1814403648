package bridge

import (
	"bytes"
	"slices"
	"testing"

	"github.com/opes-milter/opes-milter/internal/ocptest"
	"github.com/opes-milter/opes-milter/ocp"
	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// roundTrip checks m through the strict decoder (ocptest.RoundTrip).
func roundTrip(t *testing.T, m *ocp.Message) *ocp.Message { return ocptest.RoundTrip(t, m) }

// FuzzBuiltMessages sends what the MTA gives the bridge (macro values for
// AM-OPT, header fields, addresses, reasons of failures) through the
// builders of the messages the bridge sends (DUM parameters, the profile
// offer, TE with its reason) and the strict decoder: whatever the MTA
// passes, the bridge sends a valid message that reads back the same.
func FuzzBuiltMessages(f *testing.F) {
	f.Add("RCPT", "", uint8(6), "4ZxQ1k0Hz3z9v", []byte("<b@example.com> NOTIFY=NEVER"), "Subject", " hello", "adaptation failed (protocol): empty adapted RAWDATA", uint32(54))
	f.Add("SECTIONS", "2.1", uint8(4), "alice \"the\" admin\r\n", []byte{}, "X-Fold", " a\r\n\tb", "", uint32(0))
	f.Add("SINGLEHEADERS", "3", uint8(0), "", []byte("Subject: x\r\n"), "From", "", "\x00\xff{}()\"\\;", uint32(1<<31))
	f.Fuzz(func(t *testing.T, part, index string, optKey uint8, optValue string, payload []byte, hname, hvalue, reason string, end uint32) {
		d := ocpsmtp.Data{Part: ocpsmtp.Part(part), Index: index, Allow: allowAdaptive}
		if keys := optMacros(); int(optKey) < len(keys) {
			// The keywords are the profile's; the values are the MTA's.
			d.Opts = []ocpsmtp.Opt{{Key: keys[optKey].key, Value: optValue}}
		}
		if !ocpsmtp.Part(part).Known() {
			d.Part = ocpsmtp.PartRCPT
		}
		if index != "" {
			if _, err := ocpsmtp.ParseIndex(d.Part, index); err != nil {
				d.Index = "" // the bridge only sends indexes it formatted
			}
		}
		if payload == nil {
			payload = []byte{}
		}
		if hname != "" {
			payload = append(payload, headerBlock([]headerField{{name: hname, value: hvalue}})...)
		}
		m := &ocp.Message{Name: ocp.MsgDUM, Anon: []ocp.Value{ocp.Num(1), ocp.Num(int64(end))},
			Named: dumParams(d, true, int64(end)+int64(len(payload))), Payload: payload, HasPayload: true}
		got := roundTrip(t, m)
		back, err := ocpsmtp.ParseData(got)
		if err != nil {
			t.Fatalf("the bridge's DUM does not parse back: %v\n%q", err, ocp.AppendMessage(nil, m))
		}
		if back.Part != d.Part || back.Index != d.Index || !slices.Equal(back.Allow, d.Allow) || !slices.Equal(back.Opts, d.Opts) {
			t.Fatalf("DUM parameters changed: %+v, want %+v", back, d)
		}
		if !bytes.Equal(got.Payload, payload) {
			t.Fatal("payload changed")
		}

		te := &ocp.Message{Name: ocp.MsgTE, Anon: []ocp.Value{ocp.Num(1), ocp.Failure(truncate(reason, 200)).Value()}}
		tb, err := ocpsmtp.ParseTE(roundTrip(t, te))
		if err != nil || tb.Result.Code != ocp.CodeFailure || tb.Result.Reason != truncate(reason, 200) {
			t.Fatalf("TE reason %q came back as %+v, %v", reason, tb, err)
		}

		prof := ocpsmtp.Profile{URI: ocpsmtp.ReceiverURI, Adaptive: []ocpsmtp.Part{ocpsmtp.PartSINGLEHEADERS},
			HeaderList: []string{hname}}
		if !fieldName(hname) {
			// mapping only lets valid field names into header_list.
			prof.HeaderList = nil
			prof.Adaptive = []ocpsmtp.Part{ocpsmtp.PartRAWDATA}
		}
		no := &ocp.Message{Name: ocp.MsgNO, Anon: []ocp.Value{ocp.FeaturesValue([]ocp.Feature{prof.Feature()})},
			Named: []ocp.Param{ocp.NewParam(ocp.ParamSG, ocp.Num(1))}}
		f, err := ocp.ParseFeature(roundTrip(t, no).Anon[0].(ocp.List)[0])
		if err != nil {
			t.Fatal(err)
		}
		back2, err := ocpsmtp.ParseProfile(f)
		if err != nil || !slices.Equal(back2.HeaderList, prof.HeaderList) || !slices.Equal(back2.Adaptive, prof.Adaptive) {
			t.Fatalf("offer %+v came back as %+v, %v", prof, back2, err)
		}
	})
}

// fieldName reports whether s is an RFC 5322 field name.
func fieldName(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 || s[i] == ':' {
			return false
		}
	}
	return s != ""
}
