package ocpsmtp

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestCheckAgentID(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"http://mail.example.com/opes?id=33W9WIMC", true},
		{"https://opes.example.net/policy#p1", true},
		{"urn:example:opes:antivirus", true},
		{"http://www.srvcs-4u.example.com/cat/?sid=123", true},
		{"x+y.z-w:rest", true},
		{"", false},
		{"no-scheme", false},
		{":nothing", false},
		{"http:", false},
		{"1http://x", false},
		{"ht tp://x", false},
		{"http://x/a b", false},
		{"http://x/a,b", false},
		{"http://x/a;b", false},
		{"http://x/\"q\"", false},
		{"http://x/<a>", false},
		{"http://x/\u00e9", false},
	}
	for _, tt := range tests {
		err := CheckAgentID(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("CheckAgentID(%q) = %v, want ok %v", tt.in, err, tt.ok)
		}
	}
}

func TestTraceEntry(t *testing.T) {
	tests := []struct {
		uri    string
		params [][2]string
		want   string
	}{
		{"http://mail.example.com/opes", nil, "http://mail.example.com/opes"},
		{"http://a.example/opes", [][2]string{{"mode", "A"}}, "http://a.example/opes; mode=A"},
		{"http://a.example/opes", [][2]string{{"mode", "A"}, {"id", "33W9WIMC"}},
			"http://a.example/opes; mode=A; id=33W9WIMC"},
		{"http://a.example/opes", [][2]string{{"note", "two words"}}, `http://a.example/opes; note="two words"`},
		{"http://a.example/opes", [][2]string{{"q", `a"b\c`}}, `http://a.example/opes; q="a\"b\\c"`},
		{"http://a.example/opes", [][2]string{{"e", ""}}, `http://a.example/opes; e=""`},
	}
	for _, tt := range tests {
		if got := TraceEntry(tt.uri, tt.params...); got != tt.want {
			t.Errorf("TraceEntry(%q, %q) = %q, want %q", tt.uri, tt.params, got, tt.want)
		}
	}
}

func TestParseBypass(t *testing.T) {
	many := strings.TrimSuffix(strings.Repeat("urn:x:a,", MaxBypassEntries), ",")
	tests := []struct {
		in   string
		ok   bool
		all  bool
		uris []string
	}{
		{" *", true, true, nil},
		{"*", true, true, nil},
		{"\t* ", true, true, nil},
		{" http://a.example/av", true, false, []string{"http://a.example/av"}},
		{" http://a.example/av, urn:x:spam", true, false, []string{"http://a.example/av", "urn:x:spam"}},
		{" http://a.example/av,urn:x:spam", true, false, []string{"http://a.example/av", "urn:x:spam"}},
		{" http://a.example/av,\r\n urn:x:spam", true, false, []string{"http://a.example/av", "urn:x:spam"}},
		{" ,http://a.example/av,,", true, false, []string{"http://a.example/av"}},
		{many, true, false, nil},
		{many + ",urn:x:b", false, false, nil},
		{"", false, false, nil},
		{" ", false, false, nil},
		{" , ,", false, false, nil},
		{" *, http://a.example/av", false, false, nil},
		{" **", false, false, nil},
		{" not a uri", false, false, nil},
		{" http://a.example/av\r\nX: y", false, false, nil},
		{" http://a.example/av\n", false, false, nil},
		{" http://a.example/\x00", false, false, nil},
	}
	for _, tt := range tests {
		all, uris, err := ParseBypass(tt.in)
		if !tt.ok {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("ParseBypass(%q) = %v, %q, %v; want *SyntaxError", tt.in, all, uris, err)
			}
			continue
		}
		if err != nil || all != tt.all || (tt.uris != nil && !slices.Equal(uris, tt.uris)) {
			t.Errorf("ParseBypass(%q) = %v, %q, %v", tt.in, all, uris, err)
		}
	}
}
