package ocp_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/opes-milter/opes-milter/ocp"
)

// TestRFCExamples decodes the published examples of RFC 4037, RFC 4236 and
// draft-ietf-opes-smtp-00 in their wire form (CRLF, no rendering breaks),
// and their known errors as ocp-digest.md says they must be handled: a
// wrong size prefix or stray white space is a syntax error, a one-value
// Kept or an unknown message name (CSE) is valid syntax for the semantic
// layers to judge.
func TestRFCExamples(t *testing.T) {
	for _, tc := range []struct {
		name    string
		wire    string
		wantErr bool
		check   func(t *testing.T, m *ocp.Message)
	}{
		{"4037 PQ", "PQ;\r\n", false, nil},
		{"4037 TS", "TS 1 2;\r\n", false, nil},
		{"4037 DWM Size-request", "DWM 1\r\nSize-request: 16384\r\n;\r\n", false, func(t *testing.T, m *ocp.Message) {
			if p, ok := m.Param("Size-request"); !ok || string(p.Value().(ocp.Atom)) != "16384" {
				t.Errorf("Size-request = %v", p)
			}
		}},
		{"4037 erratum Size-Request spelling parses", "DWM 1\r\nSize-Request: 16384\r\n;\r\n", false, nil},
		{"4037 DUM with Modp", "DUM 1 13\r\nModp: 75\r\n\r\n5:hello\r\n;\r\n", false, func(t *testing.T, m *ocp.Message) {
			if !m.HasPayload || string(m.Payload) != "hello" {
				t.Errorf("payload %q", m.Payload)
			}
		}},
		{"4037 NO empty", "NO ();\r\n", false, nil},
		{"4037 NR with Offer-Pending", "NR\r\nOffer-Pending: true\r\n;\r\n", false, nil},
		{"4037 erratum CSE is an unknown message name", "CSE {400 \"4:oops\"};\r\n", false, func(t *testing.T, m *ocp.Message) {
			if m.Name != "CSE" {
				t.Errorf("name %q", m.Name)
			}
		}},
		{"4037 erratum wrong URI size 32 for a 44-octet URI", `NO ({"32:http://www.iana.org/assignments/opes/ocp/tls"});` + "\r\n", true, nil},
		{"4037 rendering { 200 OK } is not wire syntax", "TE 1 { 200 OK };\r\n", true, nil},
		{"4236 NO for the response profile", "NO ({\"54:http://www.iana.org/assignments/opes/ocp/http/response\"\r\nAux-Parts: (request-header,request-body)\r\n})\r\nSG: 5\r\n;\r\n", false, func(t *testing.T, m *ocp.Message) {
			f, err := ocp.ParseFeature(m.Anon[0].(ocp.List)[0])
			if err != nil || f.URI != "http://www.iana.org/assignments/opes/ocp/http/response" {
				t.Errorf("feature %v %v", f, err)
			}
		}},
		{"4236 NR", "NR {\"54:http://www.iana.org/assignments/opes/ocp/http/response\"\r\nAux-Parts: (request-header)\r\nPause-At-Body: 30\r\nPreservation-Interest-Body: 0\r\nContent-Encodings: (gzip)\r\n}\r\nSG: 5\r\n;\r\n", false, nil},
		{"4236 SGC", "SGC 11 ({\"31:ocp-test.example.com/url-filter\"});\r\n", false, nil},
		{"4236 erratum Kept with one value parses", "DUM 55 0\r\nKept: 0\r\nAM-Part: request-header\r\n\r\n3:GET\r\n;\r\n", false, func(t *testing.T, m *ocp.Message) {
			if p, _ := m.Param("Kept"); len(p.Values) != 1 {
				t.Errorf("Kept = %v", p)
			}
		}},
		{"4236 Kept with two values", "DUM 88 0\r\nKept: 65 64\r\n\r\n0:\r\n;\r\n", false, func(t *testing.T, m *ocp.Message) {
			if p, _ := m.Param("Kept"); len(p.Values) != 2 {
				t.Errorf("Kept = %v", p)
			}
		}},
		{"4236 erratum DUY without its terminator", "DUY 88 65 64\r\nDUM 88 0", true, nil},
		{"draft RCPT DUM (pre-RFC three anonymous parameters)", "DUM 72 1 0\r\nKept: 0\r\nAM-Part: RCPT\r\nAllow: (SMTP-Error)\r\n\r\n18:<paul@example.com>\r\n;\r\n", false, func(t *testing.T, m *ocp.Message) {
			// Core reads the second value as my-offset and ignores the third.
			if off, err := m.AnonUint(1); err != nil || off != 1 || len(m.Anon) != 3 {
				t.Errorf("offset %d %v, anon %d", off, err, len(m.Anon))
			}
		}},
		{"draft SMTP-Error answer", "DUM 72 1 0\r\nAM-Part: RCPT\r\nSMTP-Error: \"21:550 No such user here\"\r\n\r\n0:\r\n;\r\n", false, nil},
		{"draft Adaptive-Commands negotiation", "NO ({\"38:http://iana.org/opes/ocp/SMTP/receiver\"\r\nAdaptive-Commands: (RCPT,DATA)\r\nInformative-Commands: (IP,HELO,MAIL)\r\n})\r\nSG: 25\r\n;\r\n", false, nil},
		{"draft bare * in Header-List is not an atom", "NR {\"38:http://iana.org/opes/ocp/SMTP/receiver\"\r\nHeader-List: (*)\r\n};\r\n", true, nil},
		{"draft wrong size 49 for LF-only RAWDATA (51 with CRLF)", "DUM 72 1 37\r\nAM-Part: RAWDATA\r\n\r\n49:From: steve@example.org\r\nTo: sandra@example.com\r\n\r\n\r\n;\r\n", true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ocp.NewDecoder(strings.NewReader(tc.wire), ocp.Limits{}).Decode()
			if tc.wantErr {
				if err == nil {
					t.Fatalf("decoded %q without error", ocp.AppendMessage(nil, m))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, m)
			}
			// Canonical re-encoding decodes to the same message.
			again, err := ocp.NewDecoder(bytes.NewReader(ocp.AppendMessage(nil, m)), ocp.Limits{}).Decode()
			if err != nil || !bytes.Equal(ocp.AppendMessage(nil, again), ocp.AppendMessage(nil, m)) {
				t.Fatalf("round trip: %v", err)
			}
		})
	}
}

// TestBareStarOption: the draft's Header-List (*) parses with the named
// decoder option, and the canonical encoder quotes it.
func TestBareStarOption(t *testing.T) {
	d := ocp.NewDecoder(strings.NewReader("NR {\"38:http://iana.org/opes/ocp/SMTP/receiver\"\r\nHeader-List: (*)\r\n};\r\n"), ocp.Limits{})
	d.AllowBareStar = true
	m, err := d.Decode()
	if err != nil {
		t.Fatal(err)
	}
	if out := string(ocp.AppendMessage(nil, m)); !strings.Contains(out, `Header-List: ("1:*")`) {
		t.Fatalf("re-encoded %q", out)
	}
}
