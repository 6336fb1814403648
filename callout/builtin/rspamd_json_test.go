package builtin

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestRspamdMembers: the exact object handed to encoding/json, and the
// answers it does not split (decoded whole).
func TestRspamdMembers(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{`{"action":"no action","symbols":{"A":{"name":"A","description":"a \"}\" in {braces]"}},"score":1.5}`,
			`{"action":"no action","score":1.5}`},
		{" {\r\n \"is_skipped\" : false ,\t\"urls\":[\"x\",[],{}], \"Action\":\"reject\"}\n",
			`{"is_skipped" : false,"Action":"reject"}`},
		{`{"milter":{"add_headers":{"X":{"value":"v","order":1}}},"messages":{"smtp_message":"no"},"time_real":0.2}`,
			`{"milter":{"add_headers":{"X":{"value":"v","order":1}}},"messages":{"smtp_message":"no"}}`},
		{`{"\u0061ction":"reject","x":null}`, `{"\u0061ction":"reject"}`},
		{"{\"\u017Fubject\":\"s\",\"required_\u212Acore\":true}", "{\"\u017Fubject\":\"s\"}"},
		{`{}`, `{}`},
		{`{"symbols":{}}`, `{}`},
		// Not split: decoded whole.
		{`[1]`, ""},
		{`{"action":"a",}`, ""},
		{`{"symbols":{"a":[}}`, ""},
		{`{"symbols":{"a":"x}`, ""},
		{`{"action":"a"} x`, ""},
		{`{"symbols":` + strings.Repeat("[", maxRspamdNesting+1) + strings.Repeat("]", maxRspamdNesting+1) + `}`, ""},
		{"{\"a\":\"tab\there\"}", ""},
		{`{"action" "a"}`, ""},
		{`{"score":}`, ""},
	} {
		out, ok := rspamdMembers([]byte(tc.in))
		if ok != (tc.out != "") || string(out) != tc.out {
			t.Errorf("%.60q: %q %v, want %q", tc.in, out, ok, tc.out)
		}
	}
}

// TestRspamdDecodedNames: rspamdDecoded names every field rspamdResult
// decodes.
func TestRspamdDecodedNames(t *testing.T) {
	rt := reflect.TypeFor[rspamdResult]()
	var tags []string
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		tags = append(tags, name)
	}
	if !reflect.DeepEqual(tags, rspamdDecoded[:]) {
		t.Errorf("rspamdResult decodes %q, rspamdDecoded has %q", tags, rspamdDecoded)
	}
}

// FuzzRspamdMembers: whenever rspamdMembers splits an answer that
// encoding/json decodes, the members kept decode to the same result.
func FuzzRspamdMembers(f *testing.F) {
	for _, s := range []string{
		rspamdBenchAnswer,
		`{"action":"add header","score":9,"milter":{"no_action":true,"add_headers":{"X-Spamd-Result":{"value":"default: False [9.00 / 15.00]","order":0}},"remove_headers":{"X-Old":0}}}`,
		`{"action":"rewrite subject","score":9,"subject":"***SPAM*** caf\u00e9"}`,
		`{"\u0061ction":"reject","SCORE":3,"symbols":{"x":"\\\"}"}}`,
		"{\"\u017Fubject\":\"s\",\"required_\u212Acore\":2}",
		`{"action":"no action","score":1,"score":2}`,
		`{"symbols":[1,{"a":[true,false,null]}],"action":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var whole rspamdResult
		if json.Unmarshal(b, &whole) != nil {
			return
		}
		m, ok := rspamdMembers(b)
		if !ok {
			return
		}
		var part rspamdResult
		if err := json.Unmarshal(m, &part); err != nil {
			t.Fatalf("%q split to %q: %v", b, m, err)
		}
		if !reflect.DeepEqual(whole, part) {
			t.Fatalf("%q: whole %+v, split %+v", b, whole, part)
		}
	})
}
