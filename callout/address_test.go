package callout

import (
	"slices"
	"strings"
	"testing"
)

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in     string
		addr   string
		args   []string
		domain string
		err    bool
	}{
		{"<paul@example.com>", "paul@example.com", nil, "example.com", false},
		{"<steve@Example.ORG> SIZE=232 BODY=8BITMIME", "steve@Example.ORG", []string{"SIZE=232", "BODY=8BITMIME"}, "example.org", false},
		{"<>", "", nil, "", false},
		{"bare@example.net", "bare@example.net", nil, "example.net", false},
		{"<\"a b\"@example.com> NOTIFY=NEVER", "\"a b\"@example.com", []string{"NOTIFY=NEVER"}, "example.com", false},
		{"<broken@example.com", "", nil, "", true},
		{"", "", nil, "", true},
	}
	for _, tt := range tests {
		a, err := ParseAddress([]byte(tt.in))
		if (err != nil) != tt.err {
			t.Errorf("%q: err %v", tt.in, err)
			continue
		}
		if err != nil {
			continue
		}
		if a.Addr != tt.addr || !slices.Equal(a.Args, tt.args) || a.Domain() != tt.domain {
			t.Errorf("%q: got %q %q %q", tt.in, a.Addr, a.Args, a.Domain())
		}
		if strings.HasPrefix(tt.in, "<") && a.String() != tt.in {
			t.Errorf("%q: String() = %q", tt.in, a.String())
		}
	}
	a, _ := ParseAddress([]byte("<x@y> SIZE=10 SMTPUTF8"))
	if v, ok := a.Arg("size"); !ok || v != "10" {
		t.Errorf("Arg(size) = %q %v", v, ok)
	}
	if v, ok := a.Arg("SMTPUTF8"); !ok || v != "" {
		t.Errorf("Arg(SMTPUTF8) = %q %v", v, ok)
	}
}

func TestReply(t *testing.T) {
	tests := []struct {
		r    Reply
		want string
		ok   bool
	}{
		{Reply{550, "5.1.1 no such user"}, "550 5.1.1 no such user", true},
		{Reply{451, "4.7.1 first\nsecond"}, "451-4.7.1 first\r\n451 second", true},
		{Reply{550, "5.7.1 a\r\n5.7.1 b"}, "550-5.7.1 a\r\n550 5.7.1 b", true},
		{Reply{421, "4.3.0 closing"}, "421 4.3.0 closing", false},
		{Reply{250, "ok"}, "250 ok", false},
		{Reply{550, "4.1.1 class mismatch"}, "550 4.1.1 class mismatch", false},
		{Reply{550, "bad\x00"}, "550 bad\x00", false},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%+v: String() = %q, want %q", tt.r, got, tt.want)
		}
		if err := tt.r.Validate(); (err == nil) != tt.ok {
			t.Errorf("%+v: Validate() = %v", tt.r, err)
		}
	}
	r, err := ParseReply("550-5.7.1 a\r\n550 5.7.1 b")
	if err != nil || r.Code != 550 || r.Text != "5.7.1 a\n5.7.1 b" {
		t.Errorf("ParseReply: %+v %v", r, err)
	}
}
