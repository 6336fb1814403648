package bridge

import (
	"strings"
	"testing"
)

func TestCheckPathAnswer(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"<a@example.com>", true},
		{"<>", true},
		{"<a@example.com> NOTIFY=FAILURE ORCPT=rfc822;a@example.com", true},
		{"<a@example.com> SMTPUTF8", true},
		{"a@example.com", false},
		{"<a@example.com>\r\nRCPT TO:<b@example.com>", false},
		{"<a@example.com>\x00NOTIFY=NEVER", false},
		{"<a@example.com>  X=1", false},
		{"<a b@example.com>", false},
		{"<" + strings.Repeat("a", 1000) + "@example.com>", false},
		{"<a@example.com> !!", false},
	} {
		if err := checkPathAnswer(tc.in); (err == nil) != tc.ok {
			t.Errorf("%q: err = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestCheckField(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		ok          bool
	}{
		{"X-A", " 1", true},
		{"", " 1", false},
		{"X A", " 1", false},
		{"X:A", " 1", false},
		{"X-A", " a\x00b", false},
		{"X-A", strings.Repeat("a", maxHeaderValue), false},
	} {
		if err := checkField(tc.name, tc.value); (err == nil) != tc.ok {
			t.Errorf("%q %q: err = %v, want ok=%v", tc.name, truncate(tc.value, 20), err, tc.ok)
		}
	}
}
