package ocpsmtp

import (
	"errors"
	"strings"
	"testing"
)

func TestParseHeaderField(t *testing.T) {
	tests := []struct {
		in          string
		ok          bool
		name, value string
	}{
		{"X-Spam-Flag: YES", true, "X-Spam-Flag", " YES"},
		{"X-Original-User: paul@example.com", true, "X-Original-User", " paul@example.com"},
		{"X-Empty:", true, "X-Empty", ""},
		{"X-Tab:\tvalue", true, "X-Tab", "\tvalue"},
		{"X-Fold: first\r\n second", true, "X-Fold", " first\r\n second"},
		{"X-Fold: first\r\n\tsecond\r\n third", true, "X-Fold", " first\r\n\tsecond\r\n third"},
		{"X-Colon: a:b", true, "X-Colon", " a:b"},
		{"Subject: caf\u00e9", true, "Subject", " caf\u00e9"},
		{"X-Long: " + strings.Repeat("v", MaxHeaderLine-8), true, "X-Long", " " + strings.Repeat("v", MaxHeaderLine-8)},
		{"X-Long: " + strings.Repeat("v", MaxHeaderLine-7), false, "", ""},
		{"", false, "", ""},
		{": no name", false, "", ""},
		{"No colon", false, "", ""},
		{"X Sp: name with space", false, "", ""},
		{"X-Sp : space before colon", false, "", ""},
		{"X-\u00e9: non-ASCII name", false, "", ""},
		{"X-A: trailing\r\n", false, "", ""},
		{"X-A: fold\r\nnot-wsp", false, "", ""},
		{"X-A: fold\r\n \r\n x", false, "", ""},
		{"X-A: fold\r\n\t ", false, "", ""},
		{"X-A: bare\nLF", false, "", ""},
		{"X-A: bare\rCR", false, "", ""},
		{"X-A: nul\x00", false, "", ""},
		{"X-A: esc\x1b", false, "", ""},
		{"X-A: bad \xfe", false, "", ""},
		{"X-A: a\r\n\r\nBody: injected", false, "", ""},
	}
	for _, tt := range tests {
		name, value, err := ParseHeaderField(tt.in)
		if !tt.ok {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("ParseHeaderField(%q) = %q, %q, %v; want *SyntaxError", tt.in, name, value, err)
			}
			continue
		}
		if err != nil || name != tt.name || value != tt.value {
			t.Errorf("ParseHeaderField(%q) = %q, %q, %v", tt.in, name, value, err)
		}
	}
}

func TestIsOPESHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"OPES-System": true, "opes-via": true, "OPES-BYPASS": true,
		"OPES-Systems": false, "X-OPES-Via": false, "Received": false,
	} {
		if got := IsOPESHeader(name); got != want {
			t.Errorf("IsOPESHeader(%q) = %v", name, got)
		}
	}
}
