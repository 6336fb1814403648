package main

import "testing"

func TestCaseByID(t *testing.T) {
	tests := []struct {
		id    string
		ok    bool
		alt   bool
		title string
	}{
		{"a", true, false, "(a) go-milter no-op, every event"},
		{"postfix+b", true, false, "Postfix + (b)"},
		{"b-alt", true, true, "(b) opes-milter + opes-callout, pass-through, alt build"},
		{"postfix+b-alt", true, true, "Postfix + (b), alt build"},
		{"a-alt", false, false, ""},       // no opes-milter in (a)
		{"postfix-alt", false, false, ""}, // nor in Postfix alone
		{"d", true, false, "(d) opes-milter + opes-callout, clamd service"},
		{"postfix+clamav-milter", true, false, "Postfix + clamav-milter"},
		{"postfix+d-alt", true, true, "Postfix + (d), alt build"},
		{"clamd-alt", false, false, ""}, // no opes-milter in clamd directly
		{"postfix+rspamd-alt", true, true, "Postfix + opes-milter + opes-callout, rspamd service, alt build"},
		{"postfix+rspamd-milter-alt", false, false, ""}, // rspamd's own milter
		{"e", false, false, ""},
	}
	for _, tt := range tests {
		c, ok := caseByID(tt.id)
		if ok != tt.ok || c.Alt != tt.alt || c.Title != tt.title || (ok && c.ID != tt.id) {
			t.Errorf("caseByID(%q) = %+v, %v", tt.id, c, ok)
		}
	}
}
