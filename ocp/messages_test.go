package ocp

import (
	"testing"
)

// TestAllCoreMessagesRoundTrip checks the exact wire bytes of one example
// of each of the 24 OCP Core messages: they decode, re-encode to the same
// bytes, and decode to the expected name.
func TestAllCoreMessagesRoundTrip(t *testing.T) {
	const rcv = `{"38:http://iana.org/opes/ocp/SMTP/receiver"}`
	tests := []struct {
		name, wire string
	}{
		{MsgCS, "CS;\r\n"},
		{MsgCE, "CE {400 \"9:shut down\"};\r\n"},
		{MsgSGC, "SGC 1 ({\"32:http://example.com/opes/antispam\"\r\nLevel: 5\r\n});\r\n"},
		{MsgSGD, "SGD 1;\r\n"},
		{MsgTS, "TS 1 1;\r\n"},
		{MsgTE, "TE 1 {200 OK};\r\n"},
		{MsgAMS, "AMS 1\r\nServices: ({\"8:urn:test\"})\r\n;\r\n"},
		{MsgAME, "AME 1 {206 partial};\r\n"},
		{MsgDUM, "DUM 1 19\r\nKept: 19 18\r\nAM-Part: RCPT\r\nAllow: (SMTP-Error)\r\n\r\n18:<paul@example.com>\r\n;\r\n"},
		{MsgDUY, "DUY 1 19 18;\r\n"},
		{MsgDPI, "DPI 1 0 2147483647;\r\n"},
		{MsgDWSS, "DWSS 1;\r\n"},
		{MsgDWSR, "DWSR 1 100;\r\n"},
		{MsgDSS, "DSS 1;\r\n"},
		{MsgDWP, "DWP 1 10;\r\n"},
		{MsgDPM, "DPM 1;\r\n"},
		{MsgDWM, "DWM 1\r\nSize-request: 16384\r\n;\r\n"},
		{MsgNO, "NO ({\"38:http://iana.org/opes/ocp/SMTP/receiver\"\r\nAdaptive-Parts: (RCPT,RAWDATA)\r\nInformative-Parts: (EHLO,MAIL)\r\n})\r\nSG: 1\r\nOffer-Pending: false\r\n;\r\n"},
		{MsgNR, "NR " + rcv + "\r\nSG: 1\r\nRejects: ()\r\nUnknowns: ({\"22:ocp://feature/example/\"})\r\n;\r\n"},
		{MsgPQ, "PQ 1;\r\n"},
		{MsgPA, "PA 1\r\nOrg-Data: 37\r\n;\r\n"},
		{MsgPR, "PR\r\nOrg-Data: 0\r\n;\r\n"},
		{MsgAQ, "AQ " + rcv + ";\r\n"},
		{MsgAA, "AA true;\r\n"},
	}
	if len(tests) != 24 {
		t.Fatalf("%d messages, want the 24 of OCP Core", len(tests))
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := roundTrip(t, tt.wire)
			if m.Name != tt.name {
				t.Fatalf("name %q, want %q", m.Name, tt.name)
			}
			if m.DuplicateParam() != "" {
				t.Fatalf("duplicate parameter")
			}
		})
		seen[tt.name] = true
	}
	if len(seen) != 24 {
		t.Fatalf("only %d distinct messages", len(seen))
	}
}

// TestTypedHelpers checks the Core types of RFC 4037 §10 on decoded values.
func TestTypedHelpers(t *testing.T) {
	m := roundTrip(t, "NR {\"38:http://iana.org/opes/ocp/SMTP/receiver\"\r\nAdaptive-Parts: (RAWDATA)\r\n}\r\nSG: 7\r\nOffer-Pending: true\r\n;\r\n")
	f, err := ParseFeature(m.Anon[0])
	if err != nil || f.URI != "http://iana.org/opes/ocp/SMTP/receiver" || len(f.Params) != 1 {
		t.Fatalf("ParseFeature = %+v, %v", f, err)
	}
	if got := string(AppendValue(nil, f.Value())); got != "{\"38:http://iana.org/opes/ocp/SMTP/receiver\"\r\nAdaptive-Parts: (RAWDATA)\r\n}" {
		t.Fatalf("Feature.Value = %q", got)
	}
	if sg, ok, err := m.Uint(ParamSG); sg != 7 || !ok || err != nil {
		t.Fatalf("SG = %d %v %v", sg, ok, err)
	}
	if op, err := offerPending(m); !op || err != nil {
		t.Fatalf("Offer-Pending = %v %v", op, err)
	}

	bad := []Value{Atom("00"), Atom("-1"), Atom("2147483648"), Atom(""), List{}, Atom("1a")}
	for _, v := range bad {
		if _, err := Uint(v); err == nil {
			t.Errorf("Uint(%#v) accepted", v)
		}
	}
	if n, err := Uint(Atom("2147483647")); n != MaxSize || err != nil {
		t.Errorf("Uint(max) = %d, %v", n, err)
	}
	for _, v := range []Value{Atom("TRUE"), Atom("1"), List{}} {
		if _, err := Bool(v); err == nil {
			t.Errorf("Bool(%#v) accepted", v)
		}
	}

	results := []struct {
		wire              string
		ok, partial, fail bool
	}{
		{"{200}", true, false, false},
		{"{206 partial}", false, true, false},
		{"{400 \"8:too busy\"}", false, false, true},
		{"{299 odd}", false, false, true},
	}
	for _, r := range results {
		m := roundTrip(t, "TE 1 "+r.wire+";\r\n")
		res, err := ParseResult(m.Anon[1])
		if err != nil {
			t.Fatal(err)
		}
		if res.OK() != r.ok || res.Partial() != r.partial || res.Failed() != r.fail {
			t.Errorf("%s: OK %v Partial %v Failed %v", r.wire, res.OK(), res.Partial(), res.Failed())
		}
		if got := string(AppendValue(nil, res.Value())); got != r.wire {
			t.Errorf("Result.Value = %q, want %q", got, r.wire)
		}
	}
	if !(Result{}).OK() {
		t.Error("absent result must count as 200")
	}
	for _, v := range []Value{Struct{}, Atom("200"), Struct{Anon: []Value{Atom("20")}}} {
		if _, err := ParseResult(v); err == nil {
			t.Errorf("ParseResult(%#v) accepted", v)
		}
	}
}
