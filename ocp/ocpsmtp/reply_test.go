package ocpsmtp

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseReply(t *testing.T) {
	long := "550 " + strings.Repeat("x", MaxReplyLineSize-4)
	tests := []struct {
		in       string
		ok       bool
		code     int
		enhanced string
		lines    []string
	}{
		{"550 No such user here", true, 550, "", []string{"No such user here"}},
		{"550 5.1.1 No such user here", true, 550, "5.1.1", []string{"5.1.1 No such user here"}},
		{"451 4.7.1 try later", true, 451, "4.7.1", []string{"4.7.1 try later"}},
		{"554", true, 554, "", []string{""}},
		{"554 ", true, 554, "", []string{""}},
		{"550-5.7.1 first\r\n550 5.7.1 second", true, 550, "5.7.1", []string{"5.7.1 first", "5.7.1 second"}},
		{"550-5.7.1 first\r\n550-more\r\n550 last", true, 550, "5.7.1", []string{"5.7.1 first", "more", "last"}},
		{"552 5.3.4 100% too big", true, 552, "5.3.4", []string{"5.3.4 100% too big"}},
		{"550 5.1.10 x", true, 550, "5.1.10", []string{"5.1.10 x"}},
		{"550 tab\there", true, 550, "", []string{"tab\there"}},
		{"550 caf\u00e9", true, 550, "", []string{"caf\u00e9"}},
		{long, true, 550, "", []string{long[4:]}},
		{long + "x", false, 0, "", nil},
		{"", false, 0, "", nil},
		{"250 OK", false, 0, "", nil},
		{"354 go", false, 0, "", nil},
		{"421 4.3.2 bye", false, 0, "", nil},
		{"560 bad second digit", false, 0, "", nil},
		{"55 short", false, 0, "", nil},
		{"5x0 letters", false, 0, "", nil},
		{"550\tx", false, 0, "", nil},
		{"550-only continuation", false, 0, "", nil},
		{"550 first\r\n550 second", false, 0, "", nil},
		{"550-first\r\n551 second", false, 0, "", nil},
		{"550-first\r\n550", true, 550, "", []string{"first", ""}},
		{"550-first\r\n", false, 0, "", nil},
		{"550 x\r\n", false, 0, "", nil},
		{"550 bare\nLF", false, 0, "", nil},
		{"550 bare\rCR", false, 0, "", nil},
		{"550 nul\x00", false, 0, "", nil},
		{"550 del\x7f", false, 0, "", nil},
		{"550 bad \xff utf8", false, 0, "", nil},
		{"550 4.1.1 class mismatch", false, 0, "", nil},
		{"450 5.1.1 class mismatch", false, 0, "", nil},
		{"550 5.1 short enhanced", false, 0, "", nil},
		{"550 5.01.1 leading zero", false, 0, "", nil},
		{"550 5.1.1000 too long", false, 0, "", nil},
		{"550 3.1.1 bad class", false, 0, "", nil},
		{"550 5.1.1x glued", false, 0, "", nil},
		{"550-5.1.1 a\r\n550 5.2.1 b", false, 0, "", nil},
		{strings.Repeat("550-x\r\n", MaxReplyLines-1) + "550 x", true, 550, "", nil},
		{strings.Repeat("550-x\r\n", MaxReplyLines) + "550 x", false, 0, "", nil},
	}
	for _, tt := range tests {
		r, err := ParseReply(tt.in)
		if !tt.ok {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Func != "ParseReply" {
				t.Errorf("ParseReply(%q) = %+v, %v; want *SyntaxError", tt.in, r, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseReply(%q): %v", tt.in, err)
			continue
		}
		if r.Code != tt.code || r.Enhanced() != tt.enhanced || (tt.lines != nil && !slices.Equal(r.Lines(), tt.lines)) {
			t.Errorf("ParseReply(%q) = %+v", tt.in, r)
		}
		if err := r.Validate(); err != nil {
			t.Errorf("%+v.Validate(): %v", r, err)
		}
		if r.Temporary() != (tt.code/100 == 4) {
			t.Errorf("%q.Temporary() = %v", tt.in, r.Temporary())
		}
		// String gives back an equivalent reply.
		r2, err := ParseReply(r.String())
		if err != nil || r2 != r {
			t.Errorf("round trip of %q via %q: %+v, %v", tt.in, r.String(), r2, err)
		}
	}
}

// TestReplyValidate covers the validator on replies built in code (a
// service's refusal, a configuration reply, the processor's own verdicts).
func TestReplyValidate(t *testing.T) {
	tests := []struct {
		r    Reply
		want string // SMTP form; "" when Validate refuses r
	}{
		{Reply{550, "5.1.1 no such user"}, "550 5.1.1 no such user"},
		{Reply{451, "4.7.1 first\r\n4.7.1 second"}, "451-4.7.1 first\r\n451 4.7.1 second"},
		{Reply{550, "5.7.1 a\r\nb"}, "550-5.7.1 a\r\n550 b"},
		{Reply{554, ""}, "554"},
		{Reply{421, "4.3.0 closing"}, ""},
		{Reply{250, "ok"}, ""},
		{Reply{550, "4.1.1 class mismatch"}, ""},
		{Reply{451, "5.1.1 class mismatch"}, ""},
		{Reply{550, "5.7.1 a\r\n5.7.2 b"}, ""},
		{Reply{550, "bad\x00"}, ""},
		{Reply{550, "bare\nLF"}, ""},
		{Reply{550, "bare\rCR"}, ""},
		{Reply{5500, "x"}, ""},
		{Reply{0, "5.0.0 x"}, ""},
		{Reply{}, ""},
	}
	for _, tt := range tests {
		err := tt.r.Validate()
		if (err == nil) != (tt.want != "") {
			t.Errorf("%+v.Validate() = %v", tt.r, err)
			continue
		}
		if err == nil && tt.r.String() != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.r, tt.r.String(), tt.want)
		}
	}
	if (Reply{}).String() != "" {
		t.Errorf("zero Reply String() = %q", Reply{}.String())
	}
}
