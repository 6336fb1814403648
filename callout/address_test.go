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
