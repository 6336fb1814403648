package ocpsmtp

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/opes-milter/opes-milter/ocp"
)

// decodeFeature decodes one NR message from wire and returns its feature.
func decodeFeature(t *testing.T, wire string) ocp.Feature {
	t.Helper()
	d := ocp.NewDecoder(bytes.NewReader([]byte(wire)), ocp.Limits{})
	d.AllowBareStar = true
	m, err := d.Decode()
	if err != nil {
		t.Fatalf("decode %q: %v", wire, err)
	}
	f, err := ocp.ParseFeature(m.Anon[0])
	if err != nil {
		t.Fatalf("feature of %q: %v", wire, err)
	}
	return f
}

func TestFeatureWire(t *testing.T) {
	p := Profile{URI: ReceiverURI, Adaptive: []Part{PartRCPT, PartRAWDATA}, Informative: []Part{PartIP, PartHELO, PartMAIL}}
	m := &ocp.Message{Name: "NO", Anon: []ocp.Value{ocp.FeaturesValue([]ocp.Feature{p.Feature()})}}
	got := string(ocp.AppendMessage(nil, m))
	want := "NO ({\"38:http://iana.org/opes/ocp/SMTP/receiver\"\r\n" +
		"Adaptive-Parts: (RCPT,RAWDATA)\r\nInformative-Parts: (IP,HELO,MAIL)\r\n});\r\n"
	if got != want {
		t.Errorf("NO =\n%q\nwant\n%q", got, want)
	}
	s := Profile{URI: SenderURI, Informative: []Part{PartSINGLEHEADERS}, HeaderList: []string{AllHeaders},
		Extensions: []string{"SIZE", "8BITMIME"}}
	m = &ocp.Message{Name: "NR", Anon: []ocp.Value{s.Feature().Value()}}
	got = string(ocp.AppendMessage(nil, m))
	want = "NR {\"36:http://iana.org/opes/ocp/SMTP/sender\"\r\n" +
		"Informative-Parts: (SINGLEHEADERS)\r\nHeader-List: (\"1:*\")\r\nExtensions: (SIZE,8BITMIME)\r\n};\r\n"
	if got != want {
		t.Errorf("NR =\n%q\nwant\n%q", got, want)
	}
	back, err := ParseProfile(decodeFeature(t, got))
	if err != nil || !reflect.DeepEqual(back, s) {
		t.Errorf("ParseProfile(Feature()) = %+v, %v", back, err)
	}
	if len((Profile{URI: SenderURI}).Feature().Params) != 0 {
		t.Errorf("empty profile has members")
	}
}

func TestParseProfile(t *testing.T) {
	tests := []struct {
		name string
		wire string
		want Profile
		err  bool
	}{
		{"draft example 1", "NR {\"38:http://iana.org/opes/ocp/SMTP/receiver\"\r\n" +
			"Adaptive-Commands: (DATA)\r\nInformative-Commands: (MAIL,RCPT)\r\n}\r\nSG: 25\r\n;\r\n",
			Profile{URI: ReceiverURI, Adaptive: []Part{"DATA"}, Informative: []Part{PartMAIL, PartRCPT}}, false},
		{"draft example 2, bare star", "NR {\"38:http://iana.org/opes/ocp/SMTP/receiver\"\r\n" +
			"Adaptive-Commands: (MAIL,RCPT)\r\nInformative-Commands: (IP,EHLO,SINGLEHEADERS)\r\n" +
			"Header-List: (From,To,Reply-To,Received,*)\r\n};\r\n",
			Profile{URI: ReceiverURI, Adaptive: []Part{PartMAIL, PartRCPT},
				Informative: []Part{PartIP, PartEHLO, PartSINGLEHEADERS},
				HeaderList:  []string{"From", "To", "Reply-To", "Received", "*"}}, false},
		{"quoted tokens, duplicates, unknown member", "NR {\"36:http://iana.org/opes/ocp/SMTP/sender\"\r\n" +
			"Adaptive-Parts: (\"4:RCPT\",RCPT,X-VIPNAME)\r\nX-Other: (1,2)\r\n};\r\n",
			Profile{URI: SenderURI, Adaptive: []Part{PartRCPT, "X-VIPNAME"}}, false},
		{"empty lists", "NR {\"36:http://iana.org/opes/ocp/SMTP/sender\"\r\nAdaptive-Parts: ()\r\n};\r\n",
			Profile{URI: SenderURI, Adaptive: []Part{}}, false},
		{"other URI", "NR {\"54:http://www.iana.org/assignments/opes/ocp/http/response\"};\r\n", Profile{}, true},
		{"both spellings", "NR {\"36:http://iana.org/opes/ocp/SMTP/sender\"\r\n" +
			"Adaptive-Parts: (RCPT)\r\nAdaptive-Commands: (MAIL)\r\n};\r\n", Profile{}, true},
		{"not a list", "NR {\"36:http://iana.org/opes/ocp/SMTP/sender\"\r\nAdaptive-Parts: RCPT\r\n};\r\n", Profile{}, true},
		{"nested list", "NR {\"36:http://iana.org/opes/ocp/SMTP/sender\"\r\nAdaptive-Parts: ((RCPT))\r\n};\r\n", Profile{}, true},
		{"bad part token", "NR {\"36:http://iana.org/opes/ocp/SMTP/sender\"\r\nAdaptive-Parts: (\"4:R CP\")\r\n};\r\n", Profile{}, true},
		{"bad header name", "NR {\"36:http://iana.org/opes/ocp/SMTP/sender\"\r\n" +
			"Informative-Parts: (SINGLEHEADERS)\r\nHeader-List: (\"3:a:b\")\r\n};\r\n", Profile{}, true},
		{"bad extension", "NR {\"36:http://iana.org/opes/ocp/SMTP/sender\"\r\nExtensions: (\"1:*\")\r\n};\r\n", Profile{}, true},
	}
	for _, tt := range tests {
		p, err := ParseProfile(decodeFeature(t, tt.wire))
		if tt.err {
			var ne *NegotiationError
			if !errors.As(err, &ne) {
				t.Errorf("%s: err = %v, want *NegotiationError", tt.name, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(p, tt.want) {
			t.Errorf("%s: ParseProfile = %+v, %v; want %+v", tt.name, p, err, tt.want)
		}
	}
}

func TestKnown(t *testing.T) {
	p := Profile{URI: ReceiverURI, Adaptive: []Part{PartRCPT, "DATA"}, Informative: []Part{"FOOBAR", PartMAIL}}
	got := p.Known()
	want := Profile{URI: ReceiverURI, Adaptive: []Part{PartRCPT}, Informative: []Part{PartMAIL}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Known() = %+v", got)
	}
}
